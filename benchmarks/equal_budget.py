"""Issue 24's goal: the default ``nasfcn search`` against three baselines at equal wall time.

For every dataset x budget x seed, four methods get the same minutes on this machine's cores
and are judged on the **test** mIoU of the one network each of them picks (on val):

* ``nasfcn``: ``nasfcn search --data D --time-budget T --seed S`` with every other setting
  at its default, then ``nasfcn export`` of its winner; test mIoU from the bundle's metrics.json.
* ``random``: the same command with ``--strategy random`` (same space, planner, scheduler and
  budget: only the searcher differs).
* ``reference``: FCN-8s and U-Net (``nasfcn.references``, width 16) trained side by side, one
  core each, for as many epochs as fill the budget, through ``nasfcn benchmark``: a benchmark
  is the project's way to train fixed genotypes to a plan, with no search or early stopping
  in the way, and its runs export like a search's (the better of the two on val is exported).
  A one-epoch probe of both measures the epoch and start-up cost first; the probe's time
  counts against the budget (when it leaves no room for two epochs, the probe is the result).
  ``nasfcn benchmark`` keeps the data seed at 0, so it reads the dataset of seed S as a folder
  (below), and trains with seed 0 for every S.
* ``baseline``: ``benchmarks/tune_baseline.py``, a hand-written Ray Tune + Optuna TPE + ASHA
  script with its own model family and no nasfcn imports.

The baseline and the references read the same scenes as the search through files: the
dataset of seed S exported once to ``OUT/data/D-sS`` (``images/``, ``masks/``,
``splits/{train,val,test}.txt``, ``classes.txt``: 512 / 128 / 256 scenes at 64 x 64, the
search's defaults). Every finished cell is saved as ``OUT/cells/D-Tm-sS-METHOD.json`` and a
rerun skips it, so a run of hours resumes where it stopped; an unfinished cell starts over.
A cell that fails is named in the log and the run goes on with the others; at the end the
results of what finished are written and the run exits non-zero naming the failed cells.
Progress with an ETA goes to stderr. The table (mean test mIoU over seeds with a 95% t-CI per
method, and the default's paired difference to each, goal >= +3 points) is printed and
written with a markdown block for RESULTS.md (``OUT/equal_budget.md``) and JSON.

    python benchmarks/equal_budget.py --data shapes,photos,coins --minutes 5,15 --seeds 3 [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from nasfcn.stats import Summary, summarize

METHODS = ("nasfcn", "random", "reference", "baseline")
SEARCHES = ("nasfcn", "random")  # the methods that run nasfcn search (--search-args applies)
TITLES = {
    "nasfcn": "nasfcn search (default)",
    "random": "random search",
    "reference": "best of FCN-8s, U-Net",
    "baseline": "tune_baseline.py",
}
GOAL_POINTS = 3.0  # the default must beat each other method by this many mIoU points
REFERENCES = "ref:fcn8s,ref:unet"
SPLIT_SIZES = {"train": 512, "val": 128, "test": 256}  # the search's defaults for generated data
IMAGE_SIZE = 64
BENCHMARKS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Cell:
    """One method's run on one dataset, budget and seed."""

    data: str
    minutes: float
    seed: int
    method: str
    test_miou: float | None = None
    val_miou: float | None = None
    wall_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.data}-{self.minutes:g}m-s{self.seed}-{self.method}"


@dataclass(frozen=True)
class Difference:
    """The default's test mIoU minus another method's, paired by seed, in points."""

    method: str
    summary: Summary

    @property
    def met(self) -> bool:
        return self.summary.n > 0 and self.summary.mean >= GOAL_POINTS


@dataclass(frozen=True)
class Row:
    """One dataset x budget: every method's test mIoU over seeds and the default's margins."""

    data: str
    minutes: float
    methods: dict[str, Summary]
    differences: tuple[Difference, ...]


# --------------------------------------------------------------------------- aggregation
def aggregate(cells: Sequence[Cell]) -> list[Row]:
    """Rows per dataset x budget, in the order the cells first name them."""
    keys = list(dict.fromkeys((cell.data, cell.minutes) for cell in cells))
    rows = []
    for data, minutes in keys:
        scores: dict[str, dict[int, float]] = {}
        for cell in cells:
            if (cell.data, cell.minutes) == (data, minutes) and cell.test_miou is not None:
                scores.setdefault(cell.method, {})[cell.seed] = cell.test_miou
        methods = {m: summarize(list(scores[m].values())) for m in METHODS if m in scores}
        default = scores.get("nasfcn", {})
        differences = tuple(
            Difference(
                m, summarize([100 * (default[s] - scores[m][s]) for s in sorted(default.keys() & scores[m])])
            )
            for m in METHODS[1:]
            if m in scores
        )
        rows.append(Row(data, minutes, methods, differences))
    return rows


def _score(summary: Summary | None) -> str:
    if summary is None or summary.n == 0:
        return "—"
    if summary.n == 1:
        return f"{summary.mean:.3f} (n=1)"
    return f"{summary.mean:.3f} [{summary.ci_low:.3f}, {summary.ci_high:.3f}]"


def _margin(difference: Difference | None) -> str:
    if difference is None or difference.summary.n == 0:
        return "—"
    s = difference.summary
    mark = "met" if difference.met else "not met"
    if s.n == 1:
        return f"{s.mean:+.1f} (n=1, {mark})"
    return f"{s.mean:+.1f} [{s.ci_low:+.1f}, {s.ci_high:+.1f}] {mark}"


def markdown(rows: Sequence[Row]) -> list[str]:
    """The results table: test mIoU [95% CI] per method, and the default's margins in points."""
    others = METHODS[1:]
    header = ["dataset", "budget", *(TITLES[m] for m in METHODS), *(f"default − {m}" for m in others)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        by_method = {d.method: d for d in row.differences}
        cells = [row.data, f"{row.minutes:g} min"]
        cells += [_score(row.methods.get(m)) for m in METHODS]
        cells += [_margin(by_method.get(m)) for m in others]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(rows: Sequence[Row], command: str) -> str:
    """The markdown block for RESULTS.md."""
    seeds = max((s.n for row in rows for s in row.methods.values()), default=0)
    return "\n".join(
        [
            f"### {date.today().isoformat()}: `{command}`",
            "",
            f"Test mIoU of the network each method exports, mean over {seeds} seed(s) [95% t-CI]; "
            f"`default − X`: the default search's paired margin in mIoU points [95% t-CI] "
            f"(goal >= +{GOAL_POINTS:g}).",
            "",
            *markdown(rows),
            "",
        ]
    )


def as_json(rows: Sequence[Row], cells: Sequence[Cell]) -> dict[str, Any]:
    def finite(summary: Summary) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(summary).items()
        }

    return {
        "goal_points": GOAL_POINTS,
        "rows": [
            {
                "data": row.data,
                "minutes": row.minutes,
                "test_miou": {m: finite(s) for m, s in row.methods.items()},
                "default_minus": {d.method: {**finite(d.summary), "met": d.met} for d in row.differences},
            }
            for row in rows
        ],
        "cells": [asdict(cell) for cell in cells],
    }


# ------------------------------------------------------------------------- running cells
class CellError(RuntimeError):
    """A cell's command failed; the message names its log."""


@dataclass(frozen=True)
class Context:
    out: Path
    cpus: int
    log: TextIO
    search_args: tuple[str, ...] = ()  # --search-args: added to both searches' commands

    def nasfcn(self, *args: str, log_name: str) -> None:
        self.command([sys.executable, "-m", "nasfcn.cli", *args], log_name)

    def command(self, argv: list[str], log_name: str) -> None:
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{log_name}.log").open("a") as log:
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise CellError(f"{log_name}: a command exited {done.returncode}; see {logs / log_name}.log")


def data_folder(ctx: Context, spec: str, seed: int) -> Path:
    """The dataset of ``seed`` as a folder (the one the search generates), written once."""
    import numpy as np
    from PIL import Image

    from nasfcn.data import load_dataset

    folder = ctx.out / "data" / f"{spec}-s{seed}"
    if (folder / "classes.txt").exists():  # written last
        return folder
    sizes = {f"{split}_samples": count for split, count in SPLIT_SIZES.items()}
    bundle = load_dataset(spec, image_size=IMAGE_SIZE, seed=seed, with_test=True, **sizes)
    for sub in ("images", "masks", "splits"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for split, dataset in (("train", bundle.train), ("val", bundle.val), ("test", bundle.test)):
        assert dataset is not None  # a generated dataset always has its test split
        stems = [f"{split}_{i:04d}" for i in range(len(dataset))]
        for stem, image, mask in zip(stems, dataset.images, dataset.masks, strict=True):
            Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).numpy())).save(
                folder / "images" / f"{stem}.png"
            )
            Image.fromarray(mask.numpy()).save(folder / "masks" / f"{stem}.png")
        (folder / "splits" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    (folder / "classes.txt").write_text("\n".join(bundle.class_names) + "\n")
    return folder


def _exported(ctx: Context, name: str, url: str, work: Path) -> dict[str, Any]:
    bundle = work / "bundle"
    ctx.nasfcn("export", "--search", name, "--db", url, "--out", str(bundle), "--force", log_name=name)
    metrics = json.loads((bundle / "metrics.json").read_text())
    if not metrics["test"].get("images"):
        raise CellError(f"{name}: the export has no test figures: {metrics['test'].get('reason')}")
    return {
        "test_miou": metrics["test"]["miou"],
        "val_miou": metrics["val"]["miou"],
        "arch_id": metrics["arch_id"],
    }


def run_search(ctx: Context, cell: Cell, work: Path, strategy: str | None) -> dict[str, Any]:
    url = f"sqlite:///{work / 'nasfcn.db'}"
    argv = ["search", "--data", cell.data, "--time-budget", f"{cell.minutes:g}", "--seed", str(cell.seed)]
    argv += ["--name", cell.name, "--db", url, "--storage-path", str(work / "runs")]
    if strategy:
        argv += ["--strategy", strategy]
    start = time.monotonic()
    ctx.nasfcn(*argv, *ctx.search_args, log_name=cell.name)
    wall = time.monotonic() - start
    return {**_exported(ctx, cell.name, url, work), "wall_s": wall, "search_args": list(ctx.search_args)}


def _epoch_seconds(url: str, name: str) -> float:
    from nasfcn.store import epochs_frame, open_store

    frame = epochs_frame(open_store(url, create=False), search=name, columns=("seconds",))
    return float(frame["seconds"].max())


def run_reference(ctx: Context, cell: Cell, work: Path) -> dict[str, Any]:
    """FCN-8s and U-Net, one core each, for the epochs a one-epoch probe says fill the budget."""
    folder = data_folder(ctx, cell.data, cell.seed)
    url = f"sqlite:///{work / 'nasfcn.db'}"

    def benchmark(name: str, epochs: int) -> None:
        argv = ["benchmark", "--name", name, "--archs", REFERENCES, "--data", f"folder:{folder}"]
        argv += ["--seeds", "1", "--epochs", str(epochs), "--db", url, "--storage-path", str(work / name)]
        ctx.nasfcn(*argv, "--no-cache", log_name=cell.name)

    start = time.monotonic()
    benchmark(f"{cell.name}-probe", 1)
    probe_s = time.monotonic() - start
    epoch_s = _epoch_seconds(url, f"{cell.name}-probe")
    epochs = reference_epochs(60 * cell.minutes, probe_s, epoch_s)
    name = f"{cell.name}-probe"
    if epochs > 1:  # else the probe is all the budget holds: it is the result
        name = cell.name
        benchmark(name, epochs)
    wall = time.monotonic() - start
    return {**_exported(ctx, name, url, work), "wall_s": wall, "epochs": epochs, "epoch_s": epoch_s}


def reference_epochs(budget_s: float, probe_s: float, epoch_s: float) -> int:
    """Epochs that fill what the probe left: the main run costs its start-up (the probe's time
    beyond its one epoch) plus its epochs; at least one."""
    start_up = max(probe_s - epoch_s, 0.0)
    return max(1, math.floor((budget_s - probe_s - start_up) / max(epoch_s, 1e-9)))


def run_baseline(ctx: Context, cell: Cell, work: Path) -> dict[str, Any]:
    folder = data_folder(ctx, cell.data, cell.seed)
    out = work / "result.json"
    argv = [sys.executable, str(BENCHMARKS / "tune_baseline.py"), "--data-folder", str(folder)]
    argv += ["--minutes", f"{cell.minutes:g}", "--seed", str(cell.seed), "--cpus", str(ctx.cpus)]
    argv += ["--storage", str(work / "tune"), "--out", str(out)]
    start = time.monotonic()
    ctx.command(argv, cell.name)
    result = json.loads(out.read_text())
    return {**result, "wall_s": time.monotonic() - start}


RUNNERS: dict[str, Callable[[Context, Cell, Path], dict[str, Any]]] = {
    "nasfcn": lambda ctx, cell, work: run_search(ctx, cell, work, None),
    "random": lambda ctx, cell, work: run_search(ctx, cell, work, "random"),
    "reference": run_reference,
    "baseline": run_baseline,
}


def run_cell(ctx: Context, cell: Cell) -> Cell:
    """Run one cell from scratch (an unfinished earlier attempt is discarded) and save it."""
    work = ctx.out / "work" / cell.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result = RUNNERS[cell.method](ctx, cell, work)
    done = Cell(
        cell.data,
        cell.minutes,
        cell.seed,
        cell.method,
        test_miou=float(result.pop("test_miou")),
        val_miou=float(result.pop("val_miou")),
        wall_s=round(float(result.pop("wall_s")), 1),
        detail=result,
    )
    save_cell(ctx.out, done)
    return done


def cell_path(out: Path, cell: Cell) -> Path:
    return out / "cells" / f"{cell.name}.json"


def save_cell(out: Path, cell: Cell) -> None:
    path = cell_path(out, cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(cell), indent=1) + "\n")
    partial.replace(path)  # a cell file is whole or absent


def load_cell(out: Path, cell: Cell, search_args: Sequence[str] = ()) -> Cell | None:
    """The saved cell, unless it is a search run with other ``--search-args`` (run it again)."""
    path = cell_path(out, cell)
    if not path.exists():
        return None
    saved = Cell(**json.loads(path.read_text()))
    if cell.method in SEARCHES and saved.detail.get("search_args", []) != list(search_args):
        return None
    return saved


def planned(
    datasets: Sequence[str], budgets: Sequence[float], seeds: int, methods: Sequence[str]
) -> list[Cell]:
    return [
        Cell(d, m, s, method) for d in datasets for m in budgets for s in range(seeds) for method in methods
    ]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


def run_all(ctx: Context, cells: Sequence[Cell]) -> tuple[list[Cell], list[str]]:
    """Every cell, skipping saved ones; ETA from the wall time per budget minute so far.
    A cell that fails is named and left unsaved (a rerun retries it) while the others go
    on: one crash should not cost the hours of the cells after it. Returns the cells (failed
    ones without scores) and one line per failure."""
    start, spent_budget, failures = time.monotonic(), 0.0, []
    todo = [cell for cell in cells if load_cell(ctx.out, cell, ctx.search_args) is None]
    print(f"{len(cells)} cells, {len(cells) - len(todo)} already done", file=ctx.log)
    for index, cell in enumerate(todo):
        elapsed = time.monotonic() - start
        ratio = elapsed / spent_budget if spent_budget else 1.25  # ~25% beyond the budget: start, export
        left = ratio * sum(60 * c.minutes for c in todo[index:])
        print(
            f"[{index + 1}/{len(todo)}] {cell.name}: elapsed {_clock(elapsed)}, ETA {_clock(left)}",
            file=ctx.log,
        )
        spent_budget += 60 * cell.minutes
        try:
            done = run_cell(ctx, cell)
        except CellError as err:
            failures.append(str(err))
            print(f"    FAILED: {err}", file=ctx.log)
            continue
        print(
            f"    test mIoU {done.test_miou:.3f} (val {done.val_miou:.3f}) in {done.wall_s:.0f} s",
            file=ctx.log,
        )
    return [load_cell(ctx.out, cell, ctx.search_args) or cell for cell in cells], failures


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="shapes,photos,coins", help="comma list of generated datasets")
    p.add_argument("--minutes", default="5,15", help="comma list of budgets in minutes")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}")
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="the baseline's Ray CPUs")
    p.add_argument("--out", default="runs/equal_budget", help="cells, logs, data folders and the results")
    p.add_argument(
        "--search-args",
        default="",
        help="more options for both searches, e.g. '--epochs 32' (a search cell saved with "
        "other ones is run again)",
    )
    return p


def _options(args: argparse.Namespace) -> tuple[list[str], list[float], list[str]]:
    """Datasets, budgets and methods, checked: a bad one is a one-line usage error."""
    from nasfcn.data import DATASETS, is_generated

    datasets = [d.strip() for d in args.data.split(",") if d.strip()]
    wrong = [d for d in datasets if d not in DATASETS or not is_generated(d)]
    if wrong or not datasets:
        generated = [name for name in DATASETS.names() if is_generated(name)]
        parser().error(
            f"--data {args.data!r}: give generated datasets, one or more of {', '.join(generated)}"
        )
    try:
        budgets = [float(m) for m in args.minutes.split(",")]
    except ValueError:
        budgets = []
    if not budgets or not all(math.isfinite(m) and m > 0 for m in budgets):
        parser().error(f"--minutes {args.minutes!r}: give positive minutes, comma-separated, e.g. 5,15")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or any(m not in METHODS for m in methods):
        parser().error(f"--methods {args.methods!r}: give one or more of {', '.join(METHODS)}")
    if args.seeds < 1:
        parser().error(f"--seeds must be >= 1, got {args.seeds}")
    return datasets, budgets, methods


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    datasets, budgets, methods = _options(args)
    out = Path(args.out)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    context = Context(out, args.cpus, sys.stderr, tuple(shlex.split(args.search_args)))
    cells, failures = run_all(context, planned(datasets, budgets, args.seeds, methods))
    rows = aggregate(cells)
    command = "benchmarks/equal_budget.py " + " ".join(argv if argv is not None else sys.argv[1:])
    block = report(rows, command)
    print(block)
    (out / "equal_budget.md").write_text(block)
    result = as_json(rows, cells)
    (out / "equal_budget.json").write_text(json.dumps(result, indent=1) + "\n")
    if failures:  # the tables above lack these cells: say so, and fail
        raise SystemExit(
            f"equal_budget: {len(failures)} cell(s) failed (the others are saved: rerun to retry them):\n  "
            + "\n  ".join(failures)
        )
    return result


if __name__ == "__main__":
    main()
