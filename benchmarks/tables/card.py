"""The shipped tables' card: every figure ``benchmarks/tables/README.md`` quotes, from the files.

For each table: what it is (space, dataset, architectures x seeds x epochs, regime), when and
how long it was built (first run to last, with pauses, and the summed training seconds), the
load time (median of 5 cold ``nasfcn.table.load`` calls), the spread of the architectures' mean
final val mIoU, the intra-class correlation with its CI, each knob's main effect, the fidelity
curve (Spearman of epoch-k means vs final) and the mIoU-latency Pareto front. For every pair of
tables: the rank agreement of the architectures' means (``nasfcn tabulate compare``).

    .venv/bin/python benchmarks/tables/card.py benchmarks/tables/fcn_bench_shapes.parquet \
        benchmarks/tables/fcn_bench_photos.parquet > card.md
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from nasfcn.table import Table, compare_tables, load, table_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="+", type=Path, help="exported .parquet tables")
    args = parser.parse_args()
    tables = [load(path) for path in args.tables]
    for path, table in zip(args.tables, tables, strict=True):
        print("\n".join(_table_section(path, table)))
        print()
    if len(tables) > 1:
        print("\n".join(_agreement_section(tables)))


def _table_section(path: Path, table: Table) -> list[str]:
    facts = table.facts
    report = table_report(table)
    seconds = table.values("seconds")
    runs = len(table.archs()) * len(table.seeds)
    run_seconds = np.nansum(seconds, axis=2).ravel()
    means = np.asarray([m for m in report.means if not math.isnan(m)])
    icc = report.icc
    lines = [
        f"### {facts.get('name')}: {facts.get('dataset')}",
        "",
        f"- {len(table.archs())} architectures of `{facts.get('space_name')}` x {len(table.seeds)} seeds "
        f"x {table.epochs} epochs = {runs} runs ({report.failed_runs} failed); file "
        f"`{path.name}`, {path.stat().st_size / 1024:.0f} KiB, loads in {_load_seconds(path) * 1000:.0f} ms "
        "(median of 5)",
        f"- regime: {_regime(table)}",
        f"- built {facts.get('built_at')} to {facts.get('finished_at')} "
        f"({_hours(facts.get('built_at'), facts.get('finished_at'))} h elapsed, pauses included); "
        f"training seconds summed over runs {run_seconds.sum() / 3600:.2f} h, median run "
        f"{np.median(run_seconds):.1f} s",
        f"- mean final val mIoU per architecture: min {means.min():.3f}, median {np.median(means):.3f}, "
        f"max {means.max():.3f} (sd {means.std(ddof=1):.3f})",
        f"- **ICC(1) = {icc.icc:.3f}** [95% CI {icc.ci_low:.3f}, {icc.ci_high:.3f}] (goal >= 0.6): the share "
        "of the final val mIoU's variance that lies between architectures rather than between seeds",
        "- fidelity (Spearman of epoch-k means vs final): "
        + ", ".join(f"{k}: {rho:.2f}" for k, rho in enumerate(report.fidelity, start=1)),
        "",
        "| knob | value | archs | mean mIoU | 95% CI | Holm p vs best |",
        "|---|---|---:|---:|---|---:|",
    ]
    for effect in report.effects:
        best = max(effect.levels, key=lambda level: effect.levels[level].mean)
        for level, summary in effect.levels.items():
            pair = next((p for p in effect.pairs if {p.a, p.b} == {best, level} and level != best), None)
            p_text = "best" if level == best else (f"{pair.p_adjusted:.2g}" if pair else "n/a")
            lines.append(
                f"| {effect.knob} | {level} | {summary.n} | {summary.mean:.3f} | "
                f"[{summary.ci_low:.3f}, {summary.ci_high:.3f}] | {p_text} |"
            )
    lines += ["", "Pareto front (mean final val mIoU up, latency down):", ""]
    lines += ["| architecture | knobs | mIoU | latency ms |", "|---|---|---:|---:|"]
    front = [i for i, on in enumerate(report.pareto) if on]
    for i in sorted(front, key=lambda i: report.latency_ms[i]):
        knobs = ", ".join(f"{knob}={values[i]}" for knob, values in report.knob_values.items())
        lines.append(f"| {report.archs[i]} | {knobs} | {report.means[i]:.3f} | {report.latency_ms[i]:.2f} |")
    return lines


def _agreement_section(tables: list[Table]) -> list[str]:
    lines = [
        "### Do the tables rank the architectures alike?",
        "",
        "| first | second | archs | Spearman [95% CI] | Kendall | top-10% overlap |",
        "|---|---|---:|---|---:|---:|",
    ]
    for first, second in itertools.combinations(tables, 2):
        a = compare_tables(first, second)
        lines.append(
            f"| {first.facts.get('name')} | {second.facts.get('name')} | {a.n} | {a.spearman:.3f} "
            f"[{a.spearman_low:.3f}, {a.spearman_high:.3f}] | {a.kendall:.3f} | {a.top10_overlap:.2f} |"
        )
    return lines


def _load_seconds(path: Path) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        load(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _regime(table: Table) -> str:
    """Image size and images from the build, the training knobs as the runs trained: a knob the
    space fixes in its ``train`` block (fcn_bench fixes lr and batch size) overrides the recipe's."""
    config, recipe = table.facts.get("config"), table.facts.get("recipe")
    shown = []
    if isinstance(config, dict):
        shown += [f"{k} {config[k]}" for k in ("image_size", "train_samples") if config.get(k) is not None]
    knobs = dict(recipe) if isinstance(recipe, dict) else {}
    for knob in ("lr", "batch_size", "optimizer", "weight_decay"):
        values = {getattr(table.genotype(arch).train, knob, None) for arch in table.archs()}
        if len(values) == 1 and None not in values:
            knobs[knob] = f"{values.pop()} (fixed by the space)"
    listed = ("lr", "batch_size", "optimizer", "schedule", "epochs")
    shown += [f"{k} {knobs[k]}" for k in listed if knobs.get(k)]
    return ", ".join(shown) or "n/a"


def _hours(start: object, end: object) -> str:
    try:
        elapsed = datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
    except ValueError:
        return "n/a"
    return f"{elapsed.total_seconds() / 3600:.2f}"


if __name__ == "__main__":
    main()
