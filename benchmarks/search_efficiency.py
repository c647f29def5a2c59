"""Search efficiency: TPE + ASHA against random search + FIFO on the same space, data and seeds.

By default the searches are replayed against a table (``nasfcn arena``'s engine: the very
searcher and scheduler ``nasfcn search`` builds, each epoch looked up in the table), 100
repeats paired by seed, and the figures are ``benchmarks/arena_goals.py``'s headline (its
function, not a copy): median epochs until the exported architecture's true mean reaches
the table's top 1% with CIs, their ratio (goal: TPE + ASHA <= 1/3 of random + FIFO's),
regret at equal epochs with the Wilcoxon p (goal < 0.01) and the winner's curse::

    .venv/bin/python benchmarks/search_efficiency.py --table benchmarks/tables/fcn_bench_shapes.parquet \
        [--repeats 100] [--trials 64] [--concurrency 4] [--seed 0] [--json FILE]

``--train``: the original real-training mode, for a GPU machine (a single noisy training
run per seed decides it, which is why the table replaces it). For each seed both searches
run one trial at a time (so trial order is time order) on ``fcn_tiny.yaml`` + ``shapes``. The
target is the best val mIoU random + FIFO finds, minus one point; the figure of merit is the
number of epochs each strategy trained until one of its trials first reached the target (the
epochs of every trial started before, including early-stopped ones). Also printed, as an
equal-budget view: random's best within as many epochs as the whole TPE + ASHA search
trained. Goal: TPE + ASHA needs at most 1/3 of random + FIFO's epochs (median over seeds; a
seed where it never gets there counts as inf).

    .venv/bin/python benchmarks/search_efficiency.py --train [--trials 32] [--epochs 12] [--seeds 0,1]

On a GPU machine ``--gpus-per-trial 0.25`` trains each trial on the GPU; one process per
seed then shares it (each search still runs one trial at a time), which is how budgets
where candidates converge (``--image-size 64 --train-samples 1024 --epochs 30``) fit in
minutes rather than CPU hours.

Seeds are independent: on a 2-core machine run two processes with ``--cpus-per-trial 1``
and one seed each (epochs, the figure of merit, do not depend on the machine's load).
``--db`` keeps the searches for a look at every trial afterwards (``nasfcn trials``); run
again with the same file, finished searches are reused and interrupted ones resumed (so
``--grace-period 1`` compares another ASHA setting against the same random searches, and
a larger ``--trials`` extends kept searches). ``--report-at 32,64`` also prints the figures
for the first 32 and 64 trials of each search: one long search per seed gives the ratio's
course over search length.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

from nasfcn.search import Execution, SearchConfig, run_search
from nasfcn.store import Store, epochs_frame, get_search, open_store, trial_times_frame
from nasfcn.train import TrainRecipe


def epoch_curve(epochs: pd.DataFrame, trials: int) -> pd.Series:
    """Every epoch's val mIoU of a search's first ``trials`` trials, in the order they were trained.

    ``epochs`` is the search's ``epochs_frame``. One trial runs at a time and neither the
    optimizer nor ASHA knows how many trials are requested, so the first N trials of a
    longer search are what an N-trial search trains.
    """
    frame = epochs[epochs["number"] < trials].sort_values(["number", "epoch"])
    return frame["val_miou"].reset_index(drop=True)


def epochs_to_target(curve: pd.Series, target: float) -> float:
    """Epochs trained until the first epoch whose val mIoU reaches ``target`` (inf: never)."""
    hits = curve.index[curve >= target]
    return float(hits[0] + 1) if len(hits) else float("inf")


def search_names(args, seed: int, grace: int) -> tuple[str, str]:
    """Names of one seed's random and TPE searches: a kept ``--db`` reuses a search only
    when its settings match (another space, grace period or reduction factor runs anew)."""
    space = os.path.splitext(os.path.basename(args.space))[0]
    prefix = "" if space == "fcn_tiny" else f"{space}-"
    asha = "" if grace == 1 else f"-grace{grace}"
    asha += "" if args.reduction_factor == 2 else f"-rf{args.reduction_factor}"
    return f"{prefix}random-{seed}", f"{prefix}tpe{asha}-{seed}"


def search(
    store: Store, db: str, folder: str, name: str, strategy: str, scheduler: str, args, seed: int
) -> float:
    """Run one search (or finish it: a kept ``--db`` resumes, so finished searches are reused).

    Returns its wall time from the first trial's start to the last one's end.
    """
    config = SearchConfig(
        space=args.space,
        data="shapes",
        name=name,
        trials=args.trials,
        epochs=args.epochs,
        strategy=strategy,
        scheduler=scheduler,
        grace_period=args.grace_period,
        seed=seed,
        execution=Execution(
            db=db,
            storage_path=os.path.join(folder, name),
            concurrency=1,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            cache=False,
            quiet=True,
            resume=get_search(store, name) is not None,
        ),
        train_samples=args.train_samples,
        image_size=args.image_size,
        reduction_factor=args.reduction_factor,
        recipe=TrainRecipe(epochs=args.epochs, batch_size=16, lr=3e-3),
    )
    run_search(config)
    times = trial_times_frame(store, name)
    return (times["finished_at"].max() - times["started_at"].min()).total_seconds()


def compare(random: pd.DataFrame, tpe: pd.DataFrame, seed: int, trials: int) -> dict:
    """One seed's figures over the first ``trials`` trials of both searches (their epochs frames)."""
    random_curve, tpe_curve = epoch_curve(random, trials), epoch_curve(tpe, trials)
    target = float(random_curve.max()) - 0.01
    random_epochs = epochs_to_target(random_curve, target)
    tpe_epochs = epochs_to_target(tpe_curve, target)
    return {
        "seed": seed,
        "trials": trials,
        "target": round(target, 4),
        "random+fifo epochs": random_epochs,
        "tpe+asha epochs": tpe_epochs,
        "ratio": tpe_epochs / random_epochs,
        "tpe best": float(tpe_curve.max()),
        "random best": float(random_curve.max()),
        # equal budget: random's best within the epochs the whole TPE + ASHA search took
        "random best at tpe's epochs": float(random_curve[: len(tpe_curve)].max()),
        "total epochs random": len(random_curve),
        "total epochs tpe": len(tpe_curve),
    }


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", help="replay against this table's .parquet file (the default mode)")
    parser.add_argument("--repeats", type=int, default=100, help="replays of each pair (with --table)")
    parser.add_argument("--concurrency", type=int, default=4, help="simulated workers (with --table)")
    parser.add_argument("--seed", type=int, default=0, help="repeat r replays with seed + r (with --table)")
    parser.add_argument("--target", default="1%", help="top share (1%%) or a mean val mIoU (with --table)")
    parser.add_argument("--json", help="write the figures here as JSON (with --table)")
    parser.add_argument("--train", action="store_true", help="train for real instead (for a GPU machine)")
    parser.add_argument("--trials", type=int, help="trials per search (default: 64 replayed, 32 trained)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train-samples", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--grace-period", type=int, help="ASHA's (default: nasfcn's, a quarter of --epochs)")
    parser.add_argument("--reduction-factor", type=int, default=2, help="ASHA's (nasfcn's default: 2)")
    parser.add_argument("--cpus-per-trial", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help="e.g. 0.25: train on the GPU")
    parser.add_argument("--space", default="search_spaces/fcn_tiny.yaml")
    parser.add_argument("--db", help="SQLite file to keep the searches in (default: a temporary one)")
    parser.add_argument(
        "--report-at",
        default="",
        help="also report the figures for the first N trials of each search (comma list, e.g. 32,64)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    cli = parser()
    args = cli.parse_args(argv)
    if args.train and args.table is not None:
        cli.error("--table replays against a table and --train trains for real: give one of them")
    if args.train:
        args.trials = args.trials or 32
        trained(args, cli)
    elif args.table is None:
        cli.error("give --table FILE to replay against a table, or --train to train for real (GPU)")
    else:
        args.trials = args.trials or 64
        replayed(args)


def replayed(args: argparse.Namespace) -> dict:
    """The arena's figures: ``arena_goals.headline`` on the table, printed as markdown (and JSON)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)  # the sibling benchmark whose headline this reuses
    from arena_goals import Progress, headline, headline_markdown

    from nasfcn.arena import ArenaTable, target_of
    from nasfcn.table import load

    board = ArenaTable(load(args.table))
    head = headline(
        board,
        target_of(board, args.target),
        args.repeats,
        args.trials,
        args.concurrency,
        args.seed,
        Progress(2 * args.repeats),
    )
    print("\n".join(headline_markdown(head)))
    figures = head.as_dict()
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return figures


def trained(args: argparse.Namespace, cli: argparse.ArgumentParser) -> None:
    """The real-training mode (``--train``): both searches per seed, trained on ``shapes``."""
    lengths = sorted({int(n) for n in args.report_at.split(",") if n.strip()} | {args.trials})
    if lengths[0] < 1 or lengths[-1] > args.trials:
        cli.error(f"--report-at: each length must be 1 to --trials ({args.trials}), got {args.report_at}")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    grace = SearchConfig(space="", epochs=args.epochs, grace_period=args.grace_period).asha_grace_period
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        db = f"sqlite:///{os.path.abspath(args.db)}" if args.db else f"sqlite:///{folder}/bench.db"
        store = open_store(db)  # the searches write through their own connections; this one reads
        for seed in (int(s) for s in args.seeds.split(",")):
            random, tpe = search_names(args, seed, grace)
            random_wall = search(store, db, folder, random, "random", "fifo", args, seed)
            tpe_wall = search(store, db, folder, tpe, "tpe", "asha", args, seed)
            random_epochs, tpe_epochs = epochs_frame(store, random), epochs_frame(store, tpe)
            for length in lengths:
                rows.append(compare(random_epochs, tpe_epochs, seed, length))
                print(rows[-1], flush=True)
            rows[-1].update({"wall random s": round(random_wall), "wall tpe s": round(tpe_wall)})
    frame = pd.DataFrame(rows)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {args.trials} trials x {args.epochs} epochs, "
        f"{args.train_samples} train images of {args.image_size}x{args.image_size} per seed"
    )
    print(frame.to_string(index=False))
    # A seed where TPE + ASHA never reached the target counts as an infinite ratio, not a skipped one.
    for length, group in frame.groupby("trials"):
        print(
            f"{length} trials: median ratio of epochs to reach the target (TPE+ASHA / random+FIFO; "
            f"inf: never reached): {statistics.median(group['ratio']):.2f} over {len(group)} seed(s)"
        )


if __name__ == "__main__":
    main()
