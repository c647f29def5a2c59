"""`nasfcn benchmark report`: a Markdown page (plus figures and a CSV) to paste into a
paper or a design review, with what is needed to reproduce it."""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from nasfcn.benchmark._config import KINDS, BenchmarkError
from nasfcn.cost import format_count
from nasfcn.results import aggregate_ranks, benchmark_results, plan_labels
from nasfcn.search import UNRECORDED_BEFORE, flat_config
from nasfcn.store import Store, benchmark_runs_frame, get_search, mask_url

METHODS = """\
- Every architecture is trained once per seed (seeds 0..{last}) on every dataset with the
  same recipe, without early stopping; the figure per run is its best validation mIoU.
- mean +- sd: sample standard deviation over seeds. 95% CI: Student's t interval of the mean.
- p vs best / p vs best ref: two-sided paired t-test over shared seeds against the
  architecture with the best mean (resp. the best reference design), Holm-adjusted
  within each family. Groups: the best architecture and every architecture not
  significantly worse than it (adjusted p >= 0.05) form group 1 (marked =); the best of
  the rest opens group 2, and so on. Same group = the runs cannot tell them apart.
- Rank over datasets: the mean of the per-dataset ranks (1 = best mean mIoU)."""


def write_report(store: Store, name: str, out: Path) -> Path:
    """Write ``out`` (Markdown), ``<stem>_results.csv`` and ``<stem>_figures/`` beside it."""
    stored = get_search(store, name)
    if stored is None or stored["kind"] not in KINDS:  # a table is a benchmark of every architecture
        raise BenchmarkError(f"no benchmark named {name!r} in {store.masked_url}")
    config = stored["config"]
    runs = benchmark_runs_frame(store, name)
    results = benchmark_results(runs, plan_labels(config))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = out.parent / f"{out.stem}_figures"
    figures.mkdir(exist_ok=True)
    csv = out.parent / f"{out.stem}_results.csv"
    results.to_csv(csv, index=False)
    figure_files = _figures(results, figures)

    lines = [
        f"# Benchmark `{name}`",
        "",
        f"{len(results['label'].unique()) if not results.empty else 0} architectures x "
        f"{len(config.get('datasets') or runs['dataset'].unique())} datasets x {config.get('seeds')} seeds, "
        f"{config.get('epochs')} epochs each; {len(runs)} runs "
        f"({_counts(runs)}); status {stored['status']}; started {stored['created_at']:%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    for dataset, table in results.groupby("dataset", sort=True):
        lines += [f"## {dataset}", "", *_table(table), ""]
        if dataset in figure_files:
            lines += [
                f"Figure: [{figure_files[dataset].name}]({figures.name}/{figure_files[dataset].name})",
                "",
            ]
    if results["dataset"].nunique() > 1:
        lines += [
            "## Rank over datasets",
            "",
            "| label | mean rank | datasets | mean mIoU |",
            "|---|---|---|---|",
        ]
        for row in aggregate_ranks(results).itertuples():
            lines.append(f"| {row.label} | {row.mean_rank:.2f} | {row.datasets} | {row.miou_mean:.3f} |")
        lines.append("")
    lines += [
        "## Method",
        "",
        METHODS.format(last=max(0, int(config.get("seeds", 1)) - 1)),
        "",
        "## Reproduce",
        "",
        "```bash",
        _command(config),
        f"nasfcn benchmark report {name} --out {out.name}",
        "```",
        "",
        "Software: " + ", ".join(f"{k} {v}" for k, v in sorted(stored["versions"].items())) + ".",
        f"Database: `{mask_url(str(flat_config(config).get('db') or store.url))}`. "
        f"Results as CSV: [{csv.name}]({csv.name}).",
        "",
    ]
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def _counts(runs: pd.DataFrame) -> str:
    return ", ".join(
        f"{count} {status.replace('_', ' ')}" for status, count in runs["status"].value_counts().items()
    )


def _number(value: float, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _count(value: float) -> str:
    return "-" if value is None or value != value else format_count(value)


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _table(table: pd.DataFrame) -> list[str]:
    lines = [
        "| rank | architecture | runs | mIoU mean +- sd | 95% CI | pixel acc. | params | FLOPs | latency ms "
        "| p vs best | p vs best ref | group |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        name = f"{row.label} (ref)" if isinstance(row.reference, str) else str(row.label)
        tie = "=" if row.tied_with_best else ""
        failed = f" ({row.failed} failed)" if row.failed else ""
        lines.append(
            f"| {_number(row.rank, 0)} | {name} | {row.runs}{failed} | {_number(row.miou_mean)} +- "
            f"{_number(row.miou_std)} | [{_number(row.miou_ci_low)}, {_number(row.miou_ci_high)}] | "
            f"{_number(row.pixel_accuracy_mean)} | {_count(row.params)} | {_count(row.flops)} | "
            f"{_number(row.latency_ms, 2)} | "
            f"{_p(row.p_vs_best)} | {_p(row.p_vs_best_reference)} | {row.group or '-'}{tie} |"
        )
    return lines


def _command(config: dict) -> str:
    parts = [
        "nasfcn benchmark",
        f"--name {config.get('name')}",
        f"--archs {','.join(config.get('archs', []))}",
        f"--data {','.join(config.get('datasets', []))}",
        f"--seeds {config.get('seeds')}",
        f"--epochs {config.get('epochs')}",
        f"--image-size {config.get('image_size')}",
        f"--train-samples {config.get('train_samples')}",
    ]
    recipe = config.get("recipe") or {}
    if recipe:
        parts += [f"--lr {recipe.get('lr'):g}", f"--batch-size {recipe.get('batch_size')}"]
    if config.get("ref_width"):
        parts.append(f"--ref-width {config['ref_width']}")
    low, high = config.get("scale_range") or UNRECORDED_BEFORE["scale_range"]
    if (low, high) != (1, 1):
        parts.append(f"--scale-jitter {low:g},{high:g}")
    return " ".join(parts)


def _figures(results: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """One error-bar plot per dataset (mean val mIoU with its 95% CI), readable offline."""
    written = {}
    for index, (dataset, table) in enumerate(results.groupby("dataset", sort=True)):
        table = table.sort_values("miou_mean")
        error = (table["miou_ci_high"] - table["miou_mean"]).fillna(0)
        colors = ["#1f77b4" if tied else "#9aa5b1" for tied in table["tied_with_best"]]
        figure = go.Figure(
            go.Bar(
                x=table["miou_mean"],
                y=[
                    _figure_label(name, ref)
                    for name, ref in zip(table["label"], table["reference"], strict=True)
                ],
                orientation="h",
                marker_color=colors,
                error_x={"type": "data", "array": error.tolist(), "visible": True},
            )
        )
        figure.update_layout(
            title=f"{dataset}: mean val mIoU with 95% CI (blue: tied with the best)",
            xaxis_title="val mIoU",
            height=160 + 28 * len(table),
        )
        path = folder / f"miou_{index}_{_slug(str(dataset))}.html"
        figure.write_html(path, include_plotlyjs="directory", full_html=True)
        written[dataset] = path
    return written


def _figure_label(label: str, reference: object) -> str:
    """Plotly draws a subset of HTML in labels: a label is shown as the text it is."""
    text = f"{label} (ref)" if isinstance(reference, str) else str(label)
    return html.escape(text)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)[:40].strip("-") or "data"
