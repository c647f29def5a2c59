"""An arena into SQL: a search of kind ``arena`` whose trials are the replays' simulated trials.

Every strategy x scheduler x repeat x trial becomes a trial row: the architecture, the table
seed whose run it replayed (``seed``), its status (``stopped_early`` where the scheduler
stopped it), its epochs with the table's val mIoU, pixel accuracy and seconds, and the
architecture's cost. Its start and end are the simulated clock's, counted from the moment
the arena is stored. Its dataset is ``arena:<table>``, so no real search reuses a simulated
result as a cached one or counts it in its cross-search views. ``nasfcn leaderboard --search
NAME`` shows it like any search, with strategy, scheduler and repeat as columns. A confirmation
run (``nasfcn arena --confirm-top``) is a trial like the others whose ``params_json`` also
names the trial of its replay it re-seeds (``confirms``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from nasfcn.arena._run import ArenaRun
from nasfcn.store import Store, write_arena

#: A replay's trial status -> the stored trial status.
STATUSES = {"completed": "completed", "stopped": "stopped_early", "failed": "failed"}


def arena_config(run: ArenaRun) -> dict[str, Any]:
    """The search row's config: what the arena replayed, on which table, measured how."""
    plan = run.plan
    return {
        "table": run.table_name,
        "table_hash": run.table_hash,
        "table_source": run.board.table.source,
        **plan.settings(),
        "target": run.target.value,
        "target_spec": run.target.spec,
        "budget": run.summary.budget,
        "epochs": run.board.table.epochs,
    }


def store_arena(store: Store, run: ArenaRun, replace: bool = False) -> int:
    """Write ``run`` to ``store`` in one transaction (bulk inserts); returns the search id."""
    facts = run.board.table.facts
    trials, epochs = arena_frames(run)
    table = run.board.table
    archs = {a: table.genotype(a).arch_json() for a in set(trials["arch_id"])}
    search = {
        "dataset": f"arena:{run.table_name}",
        "space_name": facts.get("space_name"),
        "space_yaml": facts.get("space_yaml"),
        "config": arena_config(run),
        "recipe": facts.get("recipe") or {},
    }
    return write_arena(store, run.name, search, archs, trials, epochs, replace)


def arena_frames(run: ArenaRun, start: datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials, epochs) as ``write_arena`` takes them; trial numbers run over pairs, repeats, trials."""
    board = run.board
    parts = []
    for result in run.results:
        part = result.trials.rename(columns={"number": "trial"}).assign(
            strategy=result.search.strategy,
            scheduler=result.search.scheduler,
            repeat=result.seed - run.plan.seed,
        )
        parts.append(part)
    trials = pd.concat(parts, ignore_index=True)
    trials["number"] = np.arange(len(trials))
    arch = trials["arch_id"].map(board.index).to_numpy(dtype=int)
    row = trials["table_seed"].map({s: i for i, s in enumerate(board.table.seeds)}).to_numpy(dtype=int)
    counts = trials["epochs"].to_numpy(dtype=int)
    epochs = _epochs(run, trials["number"].to_numpy(), arch, row, counts)
    return _trial_rows(run, trials, epochs, start or datetime.now(timezone.utc)), epochs


def _epochs(
    run: ArenaRun, numbers: np.ndarray, arch: np.ndarray, row: np.ndarray, counts: np.ndarray
) -> pd.DataFrame:
    """Every epoch each trial trained, its values looked up in the table (vectorised)."""
    which = np.repeat(np.arange(len(counts)), counts)
    firsts = np.repeat(np.cumsum(counts) - counts, counts)
    epoch = np.arange(len(which)) - firsts + 1
    values = run.board.values
    a, s, e = arch[which], row[which], epoch - 1
    return pd.DataFrame(
        {
            "number": numbers[which],
            "epoch": epoch,
            "val_miou": values["val_miou"][a, s, e],
            "val_pixel_accuracy": values["val_pixel_accuracy"][a, s, e],
            "seconds": values["seconds"][a, s, e],
        }
    )


def _trial_rows(run: ArenaRun, trials: pd.DataFrame, epochs: pd.DataFrame, start: datetime) -> pd.DataFrame:
    table = run.board.table
    best = epochs.loc[epochs.groupby("number")["val_miou"].idxmax().dropna().astype(int)].set_index("number")
    final = epochs.groupby("number")["val_miou"].last()
    numbers = trials["number"]
    archs = sorted(set(trials["arch_id"]))
    genotypes = {a: table.genotype(a) for a in archs}  # once per architecture, not per trial
    texts = {a: genotypes[a].to_json() for a in archs}
    keys = {a: genotypes[a].trial_key for a in archs}
    costs = {a: table.cost(a) for a in archs}
    failed = trials["status"] == "failed"
    frame = pd.DataFrame(
        {
            "number": numbers,
            "arch_id": trials["arch_id"],
            "trial_key": trials["arch_id"].map(keys),
            "genotype_json": trials["arch_id"].map(texts),
            "params_json": [
                json.dumps({"arena": _replayed(s, k, r, t, c)})
                for s, k, r, t, c in zip(
                    trials["strategy"],
                    trials["scheduler"],
                    trials["repeat"],
                    trials["trial"],
                    trials["confirms"],
                    strict=True,
                )
            ],
            "seed": trials["table_seed"].astype(int),
            "status": trials["status"].map(STATUSES),
            "epochs_trained": trials["epochs"].astype(int),
            "best_epoch": numbers.map(best["epoch"]).astype("Int64"),
            "best_miou": numbers.map(best["val_miou"]),
            "best_pixel_accuracy": numbers.map(best["val_pixel_accuracy"]),
            "final_miou": numbers.map(final),
            "error": [
                (table.error(a, s) or "the run failed in the table") if bad else None
                for a, s, bad in zip(trials["arch_id"], trials["table_seed"], failed, strict=True)
            ],
            "started_at": [_at(start, t) for t in trials["started"]],
            "finished_at": [_at(start, t) for t in trials["ended"]],
        }
    )
    for name in ("params", "flops", "latency_ms", "peak_memory_mb"):
        frame[name] = [getattr(costs[a], name) for a in trials["arch_id"]]
    for name in ("params", "flops"):
        frame[name] = frame[name].round().astype("Int64")
    frame["device"] = [costs[a].device for a in trials["arch_id"]]
    frame["input"] = [costs[a].input for a in trials["arch_id"]]
    return frame


def _replayed(strategy: str, scheduler: str, repeat: int, trial: int, confirms: Any) -> dict[str, Any]:
    """Which replay a stored trial belongs to; a confirmation run also names the trial it re-seeds
    (its number within the replay, as ``trial`` is)."""
    where = {"strategy": strategy, "scheduler": scheduler, "repeat": int(repeat), "trial": int(trial)}
    return where if pd.isna(confirms) else {**where, "confirms": int(confirms)}


def _at(start: datetime, seconds: float) -> datetime | None:
    return None if np.isnan(seconds) else start + timedelta(seconds=float(seconds))
