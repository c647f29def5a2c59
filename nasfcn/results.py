"""From stored runs to the numbers a comparison needs: spread, intervals, tests, ties, ranks.

Pure functions of the runs frame (``nasfcn.store.benchmark_runs_frame``); the methods are
those of ``nasfcn.stats``. Only full runs (completed or cached) count; failed runs are
left out of the statistics and counted in ``failed``. Outside ``nasfcn.benchmark`` so the
leaderboard can rank a benchmark without importing the runner (torch, Ray, Optuna).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from nasfcn.genotype import Genotype
from nasfcn.stats import ALPHA, holm, paired_test, summarize, tie_groups
from nasfcn.store import RESULT_STATUSES

RESULT_COLUMNS = (
    "dataset",
    "rank",
    "label",
    "arch_id",
    "reference",
    "runs",
    "failed",
    "miou_mean",
    "miou_std",
    "miou_ci_low",
    "miou_ci_high",
    "pixel_accuracy_mean",
    "pixel_accuracy_std",
    "latency_ms",
    "params",
    "flops",
    "p_vs_best",
    "p_vs_best_reference",
    "tied_with_best",
    "group",
)


def run_label(row: pd.Series) -> str:
    """References by name, everything else by arch_id."""
    reference = row.get("reference")
    return str(reference) if isinstance(reference, str) and reference else str(row["arch_id"])


def benchmark_results(
    runs: pd.DataFrame, labels: Mapping[str, str] | None = None, alpha: float = ALPHA
) -> pd.DataFrame:
    """One row per architecture and dataset, ranked by mean val mIoU within each dataset.

    ``labels`` names architectures by arch_id (a benchmark's --archs labels); others go by
    their reference name or arch_id.
    """
    if runs.empty:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    names = dict(labels or {})
    runs = runs.assign(label=[names.get(row["arch_id"]) or run_label(row) for _, row in runs.iterrows()])
    if "genotype_json" in runs:  # one network run with two sets of training knobs: two rows
        keys = [Genotype.from_json(text).trial_key for text in runs["genotype_json"]]
        runs = runs.assign(trial_key=keys)
        shared = runs.groupby("label")["trial_key"].nunique()
        runs["label"] = [
            f"{label} [{key[:6]}]" if shared[label] > 1 else label
            for label, key in zip(runs["label"], runs["trial_key"], strict=True)
        ]
    rows = []
    for dataset, on_data in runs.groupby("dataset", sort=True):
        full = on_data[on_data["status"].isin(RESULT_STATUSES) & on_data["best_miou"].notna()]
        by_seed = {
            label: dict(zip(group["seed"].astype(int), group["best_miou"].astype(float), strict=True))
            for label, group in full.groupby("label")
        }
        groups, p_best = tie_groups(by_seed, alpha)
        p_reference = _against_best_reference(full, by_seed)
        for label, group in on_data.groupby("label", sort=False):
            done = group[group["status"].isin(RESULT_STATUSES) & group["best_miou"].notna()]
            miou = summarize(done["best_miou"].tolist())
            accuracy = summarize(done["best_pixel_accuracy"].dropna().tolist())
            first = group.iloc[0]
            rows.append(
                {
                    "dataset": dataset,
                    "label": label,
                    "arch_id": first["arch_id"],
                    "reference": first["reference"] if isinstance(first["reference"], str) else None,
                    "runs": miou.n,
                    "failed": int((group["status"] == "failed").sum()),
                    "miou_mean": miou.mean,
                    "miou_std": miou.std,
                    "miou_ci_low": miou.ci_low,
                    "miou_ci_high": miou.ci_high,
                    "pixel_accuracy_mean": accuracy.mean,
                    "pixel_accuracy_std": accuracy.std,
                    "latency_ms": first["latency_ms"],
                    "params": first["params"],
                    "flops": first["flops"],
                    "p_vs_best": p_best.get(label, math.nan),
                    "p_vs_best_reference": p_reference.get(label, math.nan),
                    "group": groups.get(label),
                }
            )
    table = pd.DataFrame(rows)
    table["tied_with_best"] = table["group"] == 1
    table = table.sort_values(
        ["dataset", "miou_mean", "label"], ascending=[True, False, True], na_position="last"
    )
    table["rank"] = table.groupby("dataset")["miou_mean"].rank(ascending=False, method="min")
    return table.loc[:, list(RESULT_COLUMNS)].reset_index(drop=True)


def _against_best_reference(full: pd.DataFrame, by_seed: dict[str, dict[int, float]]) -> dict[str, float]:
    """Holm-adjusted paired p-values of every architecture against the best reference."""
    references = [
        label for label in full.loc[full["reference"].notna(), "label"].unique() if label in by_seed
    ]
    if not references:
        return {}
    best = max(references, key=lambda label: (sum(by_seed[label].values()) / len(by_seed[label]), label))
    others = [label for label in by_seed if label != best]
    adjusted = holm([paired_test(by_seed[label], by_seed[best]).p_value for label in others])
    return dict(zip(others, adjusted, strict=True))


def aggregate_ranks(results: pd.DataFrame) -> pd.DataFrame:
    """Each architecture's mean rank over the datasets it ran on (lower is better)."""
    if results.empty:
        return pd.DataFrame(columns=["label", "arch_id", "mean_rank", "datasets", "miou_mean"])
    grouped = results.groupby(["label", "arch_id"], dropna=False)
    table = pd.DataFrame(
        {
            "mean_rank": grouped["rank"].mean(),
            "datasets": grouped["dataset"].nunique(),
            "miou_mean": grouped["miou_mean"].mean(),
        }
    ).reset_index()
    return table.sort_values(["mean_rank", "miou_mean"], ascending=[True, False], ignore_index=True)


def plan_labels(config: Mapping[str, Any]) -> dict[str, str]:
    """arch_id -> label from a benchmark's stored config (its resolved --archs)."""
    return {Genotype.from_json(a["genotype"]).arch_id: a["label"] for a in config.get("plan_archs", [])}
