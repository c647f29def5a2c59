"""Tabular-benchmark regime: do architectures differ more than training seeds do, and at what cost?

Samples K architectures of a space (seeded, uniform over its enumeration), trains each
with seeds 0..S-1 through ``run_benchmark`` (the real pipeline: Ray, recorder, store),
one run at a time on one CPU, and prints for every dataset the intra-class correlation
ICC(1) of the final-epoch val mIoU (architectures as groups, seeds as repeats), the seed
sd, the spread of the architecture means and the seconds per run. A regime is good
enough for a table when ICC >= 0.6 at about 20 s a run (issue 20).

    .venv/bin/python benchmarks/table_regime.py --data shapes --archs 12 --seeds 3 \\
        --epochs 8 --image-size 32 --train-samples 512 --db sqlite:////tmp/regime/r.db

The same ``--db`` keeps every candidate; a rerun of a finished candidate (same options)
reads its runs back instead of training again.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nasfcn.benchmark import BenchmarkConfig, run_benchmark
from nasfcn.genotype import Genotype
from nasfcn.space import load_space
from nasfcn.stats import icc1
from nasfcn.store import NoSuchSearchError, benchmark_runs_frame, epochs_frame, open_store, trial_times_frame
from nasfcn.train import TrainRecipe

SPACE = Path(__file__).resolve().parent.parent / "search_spaces" / "fcn_bench.yaml"


def sample_archs(space_path: Path, count: int, seed: int) -> list[Genotype]:
    """``count`` distinct architectures drawn uniformly from the space's enumeration."""
    genotypes = list(load_space(space_path).iter_genotypes(include_train=False))
    if count > len(genotypes):
        raise SystemExit(f"--archs {count}: the space has only {len(genotypes)} architectures")
    return random.Random(seed).sample(genotypes, count)


def write_genotypes(genotypes: Sequence[Genotype], folder: Path) -> tuple[str, ...]:
    """Genotype JSON files, the form ``--archs`` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for genotype in genotypes:
        path = folder / f"{genotype.arch_id}.json"
        path.write_text(genotype.to_json(), encoding="utf-8")
        paths.append(str(path))
    return tuple(paths)


@dataclass(frozen=True)
class Figures:
    dataset: str
    archs: int
    seeds: int
    icc: float
    seed_sd: float  # pooled within-architecture sd of final val mIoU
    mean_sd: float  # sd of the architectures' mean final val mIoU
    best: float
    worst: float
    run_seconds: float  # median wall time of a run (start to finish, as the table build pays it)
    train_seconds: float  # median of a run's summed epoch seconds (training + evaluation)
    not_done: int  # runs that failed or did not finish


def final_mious(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: arch_id, dataset, seed, the last epoch's val mIoU, seconds."""
    last = epochs.sort_values("epoch").groupby("trial_id").tail(1)[["trial_id", "val_miou"]]
    spent = epochs.groupby("trial_id")["seconds"].sum().rename("train_seconds").reset_index()
    frame = runs.merge(last, on="trial_id", how="left").merge(spent, on="trial_id", how="left")
    return frame.rename(columns={"val_miou": "final_miou"})


def figures(frame: pd.DataFrame, dataset: str, seeds: int) -> Figures:
    on_data = frame[frame["dataset"] == dataset]
    done = on_data[(on_data["status"] == "completed") & on_data["final_miou"].notna()]
    complete = done.groupby("arch_id").filter(lambda g: g["seed"].nunique() == seeds)
    table = complete.pivot_table(index="arch_id", columns="seed", values="final_miou")
    within = table.sub(table.mean(axis=1), axis=0)
    means = table.mean(axis=1)
    return Figures(
        dataset=dataset,
        archs=len(table),
        seeds=seeds,
        icc=icc1(table.to_numpy().tolist()).icc if len(table) >= 2 else math.nan,
        seed_sd=float(np.sqrt((within**2).to_numpy().sum() / (table.size - len(table)))),
        mean_sd=float(means.std(ddof=1)),
        best=float(means.max()),
        worst=float(means.min()),
        run_seconds=float(complete["run_seconds"].median()),
        train_seconds=float(complete["train_seconds"].median()),
        not_done=int((on_data["status"] != "completed").sum()),
    )


def run_candidate(args: argparse.Namespace, paths: tuple[str, ...]) -> pd.DataFrame:
    config = BenchmarkConfig(
        name=args.name,
        archs=paths,
        datasets=tuple(args.data.split(",")),
        seeds=args.seeds,
        epochs=args.epochs,
        db=args.db,
        cpus_per_trial=1.0,
        concurrency=1,
        image_size=args.image_size,
        train_samples=args.train_samples,
        val_samples=args.val_samples,
        recipe=TrainRecipe(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size),
        storage_path=str(Path(args.workdir) / "runs" / args.name),
        cache=False,  # seconds per run must be measured, not looked up
    )
    store = open_store(args.db)
    try:
        existing = benchmark_runs_frame(store, args.name)
    except NoSuchSearchError:  # not run yet: train it
        existing = pd.DataFrame()
    if existing.empty or (existing["status"] != "completed").any():
        run_benchmark(config if existing.empty else _resume(config))
    runs = benchmark_runs_frame(store, args.name)
    times = trial_times_frame(store, args.name)
    times["run_seconds"] = (times["finished_at"] - times["started_at"]).dt.total_seconds()
    runs = runs.merge(times[["trial_id", "run_seconds"]], on="trial_id", how="left")
    return final_mious(runs, epochs_frame(store, args.name))


def _resume(config: BenchmarkConfig) -> BenchmarkConfig:
    from dataclasses import replace

    return replace(config, resume=True, explicit=frozenset({"name", "db"}))


def print_figures(rows: list[Figures], args: argparse.Namespace) -> None:
    print(
        f"\n{args.name}: {args.archs} archs of {Path(args.space).name} (sample seed {args.arch_seed}) x "
        f"{args.seeds} seeds; {args.image_size}x{args.image_size}, {args.train_samples} train / "
        f"{args.val_samples} val images, {args.epochs} epochs, lr {args.lr}, batch {args.batch_size}; "
        f"1 CPU per run, one at a time; {platform.node()}, {os.cpu_count()} cores, "
        f"load average now {os.getloadavg()[1]:.1f} (5 min): seconds are only comparable on an idle machine"
    )
    header = (
        f"{'dataset':<10} {'archs':>5} {'ICC(1)':>7} {'seed sd':>8} {'means sd':>9} "
        f"{'best':>6} {'worst':>6} {'s/run':>6} {'s train':>8} {'not done':>8}"
    )
    print(header)
    for f in rows:
        print(
            f"{f.dataset:<10} {f.archs:>5} {f.icc:>7.3f} {f.seed_sd:>8.4f} {f.mean_sd:>9.4f} "
            f"{f.best:>6.3f} {f.worst:>6.3f} {f.run_seconds:>6.1f} {f.train_seconds:>8.1f} {f.not_done:>8}"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", default=str(SPACE), help="space file (default fcn_bench.yaml)")
    parser.add_argument("--data", default="shapes", help="comma list of datasets")
    parser.add_argument("--archs", type=int, default=12, help="architectures to sample")
    parser.add_argument("--arch-seed", type=int, default=0, help="seed of the architecture sample")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per architecture")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--train-samples", type=int, default=512)
    parser.add_argument("--val-samples", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--name", help="benchmark name (default: from the options)")
    parser.add_argument("--db", help="SQLAlchemy URL keeping the runs (default: a temporary SQLite file)")
    parser.add_argument("--workdir", help="genotype files and Ray's run folders (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.archs < 2 or args.seeds < 2:
        parser.error("--archs and --seeds must be >= 2 for an ICC")
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="table_regime_")
    args.db = args.db or f"sqlite:///{Path(args.workdir) / 'regime.db'}"
    args.name = args.name or re.sub(
        r"[^A-Za-z0-9._-]",
        "_",
        f"regime-{args.data}-a{args.archs}s{args.arch_seed}-{args.image_size}px-"
        f"n{args.train_samples}-e{args.epochs}-lr{args.lr:g}-b{args.batch_size}",
    )
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    genotypes = sample_archs(Path(args.space), args.archs, args.arch_seed)
    paths = write_genotypes(genotypes, Path(args.workdir) / "archs" / f"s{args.arch_seed}")
    frame = run_candidate(args, paths)
    rows = [figures(frame, d, args.seeds) for d in args.data.split(",")]
    print_figures(rows, args)
    per_arch = frame.pivot_table(index="arch_id", columns=["dataset", "seed"], values="final_miou")
    print("\nfinal val mIoU per architecture and seed:")
    print(per_arch.round(3).to_string())


if __name__ == "__main__":
    main()
