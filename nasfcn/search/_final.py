"""The end of a time-budgeted search: its best networks trained again, from scratch, for longer.

A budgeted search's trials train at most ``--epochs`` (16 by default) and most stop at ASHA's
rungs, so the network it finds has seen a fraction of the epochs a fixed design trained for
the whole budget gets: on ``shapes`` at 5 minutes the search's winners were still rising at
their last epoch (``benchmarks/RESULTS.md``, "Final runs"). So a budgeted search keeps
``--final-share`` of its budget and ends by training its best networks once more, one per
worker, each for as many epochs as fill the time kept, at that network's own measured
epoch cost, as NAS methods train the architecture they found from scratch.

Which networks: the best by val mIoU among the search proper's completed trials, one per
network + knobs (``nasfcn.confirm.to_confirm``'s rule), then when fewer completed, the best
trials ASHA or the deadline stopped early. A network whose final run would train no more
epochs than it already did is not run again. Final runs are trials of the search like the
confirmation runs: the same executor and recorder write them, under new numbers, each with
``extends`` = the number of the trial whose network and knobs it trains and the search's seed;
FIFO trains them to the end and no optimizer hears of them. ``nasfcn export`` picks the best
final run by val. Which runs are left is computed from the database every time, so a resumed
search neither repeats a finished final run nor loses one: an interrupted run trains again
under its own number, for the epochs the time left now holds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nasfcn.confirm import is_set, search_proper, to_confirm
from nasfcn.search._confirming import Rerun
from nasfcn.store import FINISHED_STATUSES

#: Of the time kept, the share the epochs are planned to fill. The epoch seconds measured in the
#: search proper are only a guide: on the 2-core VM a final run of 19 planned epochs at 2.7 s
#: took 3.0-3.2 s an epoch (2-minute smoke search: reports, checkpoints, Ray Tune's restart),
#: while in a 15-minute search two runs planned at 7.3 and 3.7 s took 6.2 and 3.1 s, ending
#: 2.5 minutes early at a fill of 0.85. A run that would overrun stops after its last whole
#: epoch, its schedule all but done, which costs less than minutes left unused.
FILL = 0.95


@dataclass(frozen=True)
class FinalPlan:
    """What a driver's final phase runs: the networks it trains again, and for how long."""

    targets: list[Mapping[str, Any]]  # trial rows, best first
    runs: list[Rerun]
    seconds: float  # the time kept for them
    why_none: str = ""  # when there are no runs: why

    def describe(self) -> str:
        parts = [
            f"trial {run.target['number']}'s network for {run.overrides['epochs']} epochs "
            f"(it trained {int(run.target.get('epochs_trained') or 0)})"
            for run in self.runs
        ]
        return f"final runs in the {self.seconds / 60:.1f} min kept: " + "; ".join(parts)


def final_targets(rows: Sequence[Mapping[str, Any]], count: int) -> list[Mapping[str, Any]]:
    """The ``count`` best networks of the search proper: completed trials first, then stopped ones."""
    chosen = list(to_confirm(rows, count))
    keys = {row["trial_key"] for row in chosen}
    stopped = [
        row
        for row in search_proper(rows)
        if row.get("status") == "stopped_early" and is_set(row.get("best_miou"))
    ]
    for row in sorted(stopped, key=lambda row: (-float(row["best_miou"]), int(row["number"]))):
        if len(chosen) >= count:
            break
        if row["trial_key"] not in keys:
            keys.add(row["trial_key"])
            chosen.append(row)
    return chosen


def final_phase_over(rows: Sequence[Mapping[str, Any]]) -> bool:
    """A final run finished and none is left interrupted: nothing for a resume to train again
    (``plan_final``'s rule, read before a driver keeps time for the phase)."""
    earlier = [row for row in rows if is_set(row.get("extends"))]
    finished = any(row.get("status") in FINISHED_STATUSES for row in earlier)
    return finished and not any(row.get("status") == "interrupted" for row in earlier)


def final_epochs(seconds: float, epoch_s: float, overhead_s: float) -> int:
    """Epochs one run can train in ``seconds``: its start-up, then ``FILL`` of the rest in epochs."""
    if epoch_s <= 0 or not math.isfinite(epoch_s):
        return 0
    return max(0, math.floor(FILL * (seconds - overhead_s) / epoch_s))


def plan_final(
    rows: Sequence[Mapping[str, Any]],
    count: int,
    seconds: float,
    seed: int,
    epoch_seconds: Callable[[Mapping[str, Any]], float | None],
    overhead_s: float,
) -> FinalPlan:
    """The final runs left to do, from every trial row of the search (any status).

    ``epoch_seconds(row)``: the measured seconds of one of that trial's epochs (None: unknown).
    Once a final run of the search finished the phase is over: a resume runs only the
    interrupted ones again.
    """
    earlier = [row for row in rows if is_set(row.get("extends"))]
    left = [row for row in earlier if row.get("status") == "interrupted"]
    numbers = {int(row["extends"]): int(row["number"]) for row in left}  # run again under their own
    if any(row.get("status") in FINISHED_STATUSES for row in earlier):
        by_number = {int(row["number"]): row for row in rows}
        targets = [by_number[number] for number in numbers if number in by_number]
        if not targets:
            return FinalPlan([], [], seconds, "every final run finished before")
    else:
        targets = final_targets(rows, count)
        if not targets:
            return FinalPlan([], [], seconds, "no trial of the search trained to its first rung")
    runs = []
    for target in targets:
        epoch_s = epoch_seconds(target)
        epochs = final_epochs(seconds, epoch_s, overhead_s) if epoch_s else 0
        if epochs > int(target.get("epochs_trained") or 0):
            number = int(target["number"])
            overrides = {"seed": seed, "epochs": epochs}
            runs.append(Rerun(target, overrides, {"extends": number}, numbers.get(number)))
    if not runs:
        return FinalPlan(targets, [], seconds, "the time left holds no more epochs than the trials trained")
    return FinalPlan(targets, runs, seconds)


def median_epoch_s(seconds: Sequence[float]) -> float | None:
    """The median of a trial's epoch seconds (None when it has none)."""
    finite = [float(s) for s in seconds if is_set(s) and float(s) > 0]
    return statistics.median(finite) if finite else None
