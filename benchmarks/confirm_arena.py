"""Confirmation in the arena (issue 24, item 4): does confirming the top K over S extra seeds export
a truly better network than spending the same epochs on more search trials?

For each strategy (``tpe``, the default search, and optionally ``random``), with ASHA:

- **baseline**: the search without confirmation at ``--trials`` trials; it exports its best
  single run.
- **K x S** for each setting (default 1x1, 2x1, 3x1, 2x2, 3x2, 5x2): the search ends by confirming
  its top K networks over S other table seeds (``nasfcn.confirm``'s policy, replayed by the
  arena), and exports the best pooled mean, with **fewer search trials so that the median total
  epochs (search + confirmation) match the baseline's**. Equalised by bisection over 1..T trials on
  the first ``--calibrate`` repeats: the trial count whose median total epochs come closest to the
  baseline's median on those repeats (ties: fewer trials). The table shows the medians over all
  repeats, so the match can be checked.

Paired by repeat (repeat r replays with seed + r in every arm), each row gives the **true regret**
of the exported network (the table's best mean val mIoU minus the exported network's mean over the
table's seeds): its median with a 95% bootstrap CI and its mean, the paired Wilcoxon p against the
baseline (Holm over the settings of a strategy), the share of repeats that exported a network of the
target (top 1%), the winner's curse of the best single run (before) and of the exported network
(after: pooled mean minus true mean), and the median total epochs.

Progress on stderr with an ETA; a markdown block for RESULTS.md on stdout (and ``--out``).

    .venv/bin/python benchmarks/confirm_arena.py --table fcn_bench_shapes.parquet \
        [--repeats 100 --trials 64 --concurrency 4 --seed 0 --strategies tpe,random] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from nasfcn.arena import (
    ArenaSearch,
    ArenaTable,
    ReplayResult,
    Target,
    bootstrap_median,
    replays,
    target_of,
    wilcoxon,
)
from nasfcn.confirm import CONFIRM_SEEDS, CONFIRM_TOP, ConfirmPolicy
from nasfcn.errors import NasfcnError
from nasfcn.stats import holm
from nasfcn.table import load

SETTINGS = ((1, 1), (2, 1), (3, 1), (2, 2), (3, 2), (5, 2))
RESAMPLES = 1000
SCHEDULER = "asha"
#: Bisection steps to expect per setting, for the progress display's first ETA.
STEPS = 7


# -- progress -------------------------------------------------------------------------------------------
@dataclass
class Progress:
    """Replays done of the (estimated) total, with an ETA from the rate so far, on stderr."""

    total: int
    stream: TextIO = sys.stderr
    every: float = 10.0
    done: int = 0
    started: float = field(default_factory=time.perf_counter)
    _shown: float = -math.inf

    def __call__(self, result: ReplayResult) -> None:
        self.done += 1
        self.total = max(self.total, self.done)
        now = time.perf_counter()
        if now - self._shown >= self.every or self.done == self.total:
            self._shown = now
            elapsed = now - self.started
            eta = elapsed / self.done * (self.total - self.done)
            confirm = result.search.confirm
            what = "no confirmation" if confirm is None else f"top {confirm.top} x {confirm.seeds}"
            print(
                f"[{self.done}/~{self.total} replays] {result.search.pair}, {what}, "
                f"{result.search.trials} trials; {elapsed:.0f} s so far, ETA {eta / 60:.1f} min",
                file=self.stream,
                flush=True,
            )


# -- replaying, with every replay kept ------------------------------------------------------------------
class Replayer:
    """Replays of (strategy, trials, policy) by seed, each replayed once however often it is asked."""

    def __init__(self, board: ArenaTable, concurrency: int, progress: Callable[[ReplayResult], None]):
        self.board, self.concurrency, self.progress = board, concurrency, progress
        self._done: dict[tuple[ArenaSearch, int], ReplayResult] = {}

    def search(self, strategy: str, trials: int, policy: ConfirmPolicy | None) -> ArenaSearch:
        return ArenaSearch(strategy, SCHEDULER, trials, self.concurrency, confirm=policy)

    def __call__(self, search: ArenaSearch, seeds: Sequence[int]) -> list[ReplayResult]:
        for seed in seeds:
            if (search, seed) not in self._done:
                self._done[search, seed] = replays(self.board, [search], 1, seed, self.progress)[0]
        return [self._done[search, seed] for seed in seeds]


def total_epochs(results: Sequence[ReplayResult]) -> np.ndarray:
    """Epochs each replay trained, search and confirmation together."""
    return np.asarray([int(r.trace["epochs"].iloc[-1]) if len(r.trace) else 0 for r in results])


def equal_trials(
    replay: Replayer, strategy: str, policy: ConfirmPolicy, most: int, goal: float, seeds: Sequence[int]
) -> int:
    """The trial count in 1..``most`` whose median total epochs on ``seeds`` come closest to ``goal``
    (ties: fewer trials), by bisection (total epochs grow with trials)."""

    def median(trials: int) -> float:
        return float(np.median(total_epochs(replay(replay.search(strategy, trials, policy), seeds))))

    low, high = 1, most  # invariant once checked: median(low) <= goal < median(high), or an end
    if median(low) >= goal:
        return low
    if median(high) <= goal:
        return high
    while high - low > 1:
        middle = (low + high) // 2
        if median(middle) <= goal:
            low = middle
        else:
            high = middle
    return low if goal - median(low) <= median(high) - goal else high


# -- measuring ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One setting of one strategy: its policy (None: the baseline), trial count and replays."""

    strategy: str
    policy: ConfirmPolicy | None
    trials: int
    results: list[ReplayResult]

    @property
    def label(self) -> str:
        return "none" if self.policy is None else f"top {self.policy.top} x {self.policy.seeds} seeds"


def per_replay(result: ReplayResult, target: float) -> dict[str, float]:
    """What one replay exported and what it cost."""
    last = result.trace.iloc[-1]
    done = result.confirmation
    before = (
        done.unconfirmed.winners_curse if done is not None else float(last["observed"] - last["true_mean"])
    )
    return {
        "regret": float(last["regret"]),
        "reached": float(last["true_mean"] >= target),
        "curse_before": before,
        "curse_after": float(last["observed"] - last["true_mean"]),
        "single_regret": done.unconfirmed.regret if done is not None else float(last["regret"]),
        "epochs": float(last["epochs"]),
        "confirm_epochs": float(done.epochs if done is not None else 0),
    }


@dataclass(frozen=True)
class Row:
    """One arm's figures over its repeats: (median, low, high) for the intervals."""

    strategy: str
    setting: str
    trials: int
    repeats: int
    regret: tuple[float, float, float]
    regret_mean: float
    reached_share: float
    curse_before: tuple[float, float, float]
    curse_after: tuple[float, float, float]
    epochs: float  # median total epochs
    confirm_epochs: float  # median epochs of the confirmation runs
    single_regret: float  # mean regret the same replays would have had exporting their best single run
    p_value: float = math.nan
    p_holm: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("strategy", "setting", "trials", "repeats")}
        for name in ("regret", "curse_before", "curse_after"):
            out[name] = dict(zip(("median", "low", "high"), map(_finite, getattr(self, name)), strict=True))
        for name in ("regret_mean", "reached_share", "epochs", "confirm_epochs", "single_regret"):
            out[name] = _finite(getattr(self, name))
        out.update({"p_value": _finite(self.p_value), "p_holm": _finite(self.p_holm)})
        return out


def measure(arm: Arm, baseline: Arm | None, target: float, seed: int = 0) -> Row:
    """``arm`` over its repeats, tested against ``baseline`` repeat by repeat (None: it is the baseline)."""
    each = [per_replay(r, target) for r in arm.results]
    values = {key: np.asarray([figures[key] for figures in each]) for key in _KEYS}

    def interval(key: str) -> tuple[float, float, float]:
        median, low, high = bootstrap_median(values[key], RESAMPLES, seed)
        return float(median[0]), float(low[0]), float(high[0])

    p = math.nan
    if baseline is not None:
        mine = {r.seed: r.final_regret for r in arm.results}
        base = {r.seed: r.final_regret for r in baseline.results}
        seeds = sorted(set(mine) & set(base))
        p = wilcoxon([mine[s] for s in seeds], [base[s] for s in seeds])
    return Row(
        arm.strategy,
        arm.label,
        arm.trials,
        len(arm.results),
        interval("regret"),
        float(values["regret"].mean()),
        float(values["reached"].mean()),
        interval("curse_before"),
        interval("curse_after"),
        float(np.median(values["epochs"])),
        float(np.median(values["confirm_epochs"])),
        float(values["single_regret"].mean()),
        p,
    )


_KEYS = ("regret", "reached", "curse_before", "curse_after", "single_regret", "epochs", "confirm_epochs")


def strategy_rows(
    replay: Replayer,
    strategy: str,
    target: Target,
    settings: Sequence[tuple[int, int]],
    trials: int,
    seeds: Sequence[int],
    calibrate: int,
) -> list[Row]:
    """The baseline and every setting of one strategy, the settings' p Holm-adjusted together."""
    base = Arm(strategy, None, trials, replay(replay.search(strategy, trials, None), seeds))
    calibration = list(seeds[:calibrate])
    goal = float(np.median(total_epochs(base.results[:calibrate])))
    arms = []
    for top, extra in settings:
        policy = ConfirmPolicy(top, extra)
        fewer = equal_trials(replay, strategy, policy, trials, goal, calibration)
        arms.append(Arm(strategy, policy, fewer, replay(replay.search(strategy, fewer, policy), seeds)))
    rows = [measure(arm, base, target.value) for arm in arms]
    adjusted = holm([row.p_value for row in rows])
    rows = [_with_holm(row, p) for row, p in zip(rows, adjusted, strict=True)]
    return [measure(base, None, target.value), *rows]


def _with_holm(row: Row, p: float) -> Row:
    return replace(row, p_holm=p)


# -- the report ---------------------------------------------------------------------------------------
def markdown(rows: Sequence[Row], head: dict[str, Any]) -> list[str]:
    """The RESULTS.md block: how it was run, one table, the default's row named."""
    lines = [
        f"### Confirmation at equal epochs on table {head['table']} (hash {head['hash'][:12]})",
        "",
        f"`python benchmarks/confirm_arena.py --table {head['source']} --repeats {head['repeats']} "
        f"--trials {head['trials']} --concurrency {head['concurrency']} --seed {head['seed']} "
        f"--strategies {','.join(head['strategies'])}`",
        "",
        f"Each strategy + asha, {head['repeats']} repeats paired by seed; the baseline searches "
        f"{head['trials']} trials and exports its best single run; each K x S setting confirms its top K "
        "over S other table seeds (nasfcn.confirm) and exports the best pooled mean, with fewer trials: "
        f"the count whose median total epochs on the first {head['calibrate']} repeats come closest to the "
        "baseline's (bisection). Regret: the table's best mean val mIoU minus the exported network's true "
        f"mean; target: {head['target']}. Median [95% bootstrap CI]; unconfirmed: the mean regret the same "
        "replays would have had exporting their best single run; p: paired Wilcoxon on regret against the "
        "baseline (Holm over the settings); curse: observed (best run / pooled mean) minus true mean.",
        "",
        "| strategy | confirmation | trials | total epochs (confirm) | true regret | mean regret "
        "| unconfirmed | top-1% share | p (Holm) | curse before | curse after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.strategy} | {row.setting} | {row.trials} | {row.epochs:.0f} ({row.confirm_epochs:.0f}) "
            f"| {_ci(row.regret)} | {row.regret_mean:.4f} | {row.single_regret:.4f} "
            f"| {row.reached_share:.0%} | {_p(row.p_value)} ({_p(row.p_holm)}) "
            f"| {_ci(row.curse_before)} | {_ci(row.curse_after)} |"
        )
    lines += ["", f"{head['replays']} replays in {head['seconds']:.0f} s."]
    return lines


def _ci(figure: tuple[float, float, float]) -> str:
    return f"{figure[0]:.4f} [{figure[1]:.4f}, {figure[2]:.4f}]"


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2g}"


def _finite(value: Any) -> Any:
    """JSON has no inf or NaN: None."""
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# -- the command ----------------------------------------------------------------------------------------
def run(args: argparse.Namespace, stream: TextIO = sys.stderr) -> dict[str, Any]:
    """Every strategy's rows, the markdown and the JSON."""
    started = time.perf_counter()
    board = ArenaTable(load(args.table))
    target = target_of(board, args.target)
    for strategy in args.strategies:  # everything refused before the first replay
        for top, extra in args.settings:
            board.config(ArenaSearch(strategy, SCHEDULER, 1, confirm=ConfirmPolicy(top, extra)), args.seed)
    seeds = list(range(args.seed, args.seed + args.repeats))
    calibrate = min(args.calibrate, args.repeats)
    per_strategy = args.repeats * (1 + len(args.settings)) + calibrate * STEPS * len(args.settings)
    progress = Progress(per_strategy * len(args.strategies), stream)
    replay = Replayer(board, args.concurrency, progress)
    rows = []
    for strategy in args.strategies:
        rows += strategy_rows(replay, strategy, target, args.settings, args.trials, seeds, calibrate)
    name = str(board.table.facts.get("name") or Path(args.table).stem)
    head = {
        "table": name,
        "hash": str(board.table.facts.get("checksum")),
        "source": str(args.table),
        "repeats": args.repeats,
        "trials": args.trials,
        "concurrency": args.concurrency,
        "seed": args.seed,
        "strategies": list(args.strategies),
        "calibrate": calibrate,
        "target": target.describe(),
        "replays": progress.done,
        "seconds": time.perf_counter() - started,
        "default": [CONFIRM_TOP, CONFIRM_SEEDS],
    }
    text = "\n".join(markdown(rows, head)) + "\n"
    return {"markdown": text, "json": {**head, "rows": [row.as_dict() for row in rows]}}


def _settings(text: str) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple(tuple(int(n) for n in part.split("x")) for part in text.split(","))
    except ValueError:
        pairs = ()
    if not pairs or any(len(p) != 2 or min(p) < 1 for p in pairs):
        raise argparse.ArgumentTypeError(f"{text!r}: give K x S settings as 1x1,3x2 (K, S >= 1)")
    return pairs  # type: ignore[return-value]  # every pair has two members, checked above


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True, help="a table's .parquet file (nasfcn tabulate export)")
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--trials", type=int, default=64, help="the baseline's trials (no confirmation)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strategies", type=lambda s: tuple(s.split(",")), default=("tpe",))
    p.add_argument("--settings", type=_settings, default=SETTINGS, help="K x S settings, e.g. 1x1,3x2")
    p.add_argument("--calibrate", type=int, default=10, help="repeats the trial counts are equalised on")
    p.add_argument("--target", default="1%", help="top share of architectures (1%%) or a mean val mIoU")
    p.add_argument("--out", type=Path, help="folder for confirm_arena.md and confirm_arena.json")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    for option in ("repeats", "trials", "concurrency", "calibrate"):
        if getattr(args, option) < 1:
            parser().error(f"--{option} must be >= 1, got {getattr(args, option)}")
    try:
        done = run(args)
    except NasfcnError as err:  # a table, a setting or a target the arena cannot use: one line, exit 2
        parser().error(str(err))
    print(done["markdown"], end="")
    if args.out is not None:
        here = str(Path(__file__).resolve().parent)
        if here not in sys.path:
            sys.path.insert(0, here)  # the sibling benchmark whose writer this reuses
        from arena_goals import write_results

        write_results(args.out, "confirm_arena", done)
    return done


if __name__ == "__main__":
    main()
