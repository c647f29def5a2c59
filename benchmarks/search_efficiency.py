"""Search efficiency: TPE + ASHA against random search + FIFO on the same space, data and seeds.

For each seed both searches run one trial at a time (so trial order is time order) on
``fcn_tiny.yaml`` + ``shapes``. The target is the best val mIoU random + FIFO finds, minus
one point; the figure of merit is the number of epochs each strategy trained until one of
its trials first reached the target (the epochs of every trial started before, including
early-stopped ones). Goal: TPE + ASHA needs at most 1/3 of random + FIFO's epochs.

    .venv/bin/python benchmarks/search_efficiency.py [--trials 16] [--epochs 6] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import pandas as pd

from nasfcn.search import SearchConfig, run_search
from nasfcn.store import epochs_frame, open_store
from nasfcn.train import TrainRecipe


def epochs_to_target(db: str, name: str, target: float) -> float:
    """Epochs trained, in trial order, until the first epoch whose val mIoU reaches ``target``."""
    frame = epochs_frame(open_store(db), name).sort_values(["number", "epoch"])
    frame = frame.reset_index(drop=True)
    hits = frame.index[frame["val_miou"] >= target]
    return float(hits[0] + 1) if len(hits) else float("inf")


def search(
    db: str, folder: str, name: str, strategy: str, scheduler: str, args, seed: int
) -> tuple[float, float]:
    started = time.perf_counter()
    config = SearchConfig(
        space="search_spaces/fcn_tiny.yaml",
        data="shapes",
        name=name,
        trials=args.trials,
        epochs=args.epochs,
        strategy=strategy,
        scheduler=scheduler,
        seed=seed,
        db=db,
        storage_path=os.path.join(folder, name),
        train_samples=args.train_samples,
        concurrency=1,
        cpus_per_trial=os.cpu_count() or 1,
        cache=False,
        quiet=True,
        recipe=TrainRecipe(epochs=args.epochs, batch_size=16, lr=3e-3),
    )
    summary = run_search(config)
    return summary.best_miou or 0.0, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-samples", type=int, default=256)
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        db = f"sqlite:///{folder}/bench.db"
        for seed in (int(s) for s in args.seeds.split(",")):
            best_random, random_wall = search(db, folder, f"random-{seed}", "random", "fifo", args, seed)
            best_tpe, tpe_wall = search(db, folder, f"tpe-{seed}", "tpe", "asha", args, seed)
            target = best_random - 0.01
            random_epochs = epochs_to_target(db, f"random-{seed}", target)
            tpe_epochs = epochs_to_target(db, f"tpe-{seed}", target)
            total_random = len(epochs_frame(open_store(db), f"random-{seed}"))
            total_tpe = len(epochs_frame(open_store(db), f"tpe-{seed}"))
            rows.append(
                {
                    "seed": seed,
                    "target": target,
                    "random+fifo epochs": random_epochs,
                    "tpe+asha epochs": tpe_epochs,
                    "ratio": tpe_epochs / random_epochs,
                    "tpe best": best_tpe,
                    "random best": best_random,
                    "total epochs random": total_random,
                    "total epochs tpe": total_tpe,
                    "wall random s": round(random_wall),
                    "wall tpe s": round(tpe_wall),
                }
            )
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {args.trials} trials x {args.epochs} epochs, "
        f"{args.train_samples} train images per seed"
    )
    print(frame.to_string(index=False))
    finite = [r for r in frame["ratio"] if r != float("inf")]
    if finite:
        print(
            "median ratio of epochs to reach the target (TPE+ASHA / random+FIFO): "
            f"{statistics.median(finite):.2f}"
        )
    else:
        print("TPE+ASHA never reached the target")


if __name__ == "__main__":
    main()
