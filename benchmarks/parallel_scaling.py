"""Parallel scaling: the same 8-trial search at concurrency 1 and 2, one CPU per trial.

Two workloads (``--workload``):
- ``balanced`` (default): ``benchmarks/one_architecture.yaml``, one FCN-8s with eight
  learning rates drawn by a seeded random search, so every trial does the same work and
  the speed-up measures orchestration alone;
- ``grid``: the first 8 architectures of ``fcn_tiny.yaml``'s grid, of unequal lengths,
  where the balance bound below caps the speed-up.

Each trial's torch threads are set to its one CPU. Prints the speed-up of concurrency 2
over 1 (goal >= 1.8x on 2 cores) and the orchestration overhead per trial: wall time of
the search times its concurrency, minus the time trials spent in training and evaluation,
divided by the number of trials (goal < 2% of a trial's time for ~30 s trials).

Two more figures separate what orchestration costs from what the workload allows:
- inside a trial: its recorded start-to-finish time minus its training and evaluation
  (cost measurement, dataset hand-over, checkpoint writes, reporting);
- the balance bound: the best speed-up two workers can reach on these trials' training
  times, handed out in order to whichever worker is free first. With 8 trials of unequal
  length the last one often runs alone, and no orchestration can win that back.

    .venv/bin/python benchmarks/parallel_scaling.py [--workload balanced|grid] [--trials 8] [--epochs 6]
        [--train-samples 2048]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from nasfcn.search import Execution, SearchConfig, run_search
from nasfcn.store import epochs_frame, open_store, trial_times_frame
from nasfcn.train import TrainRecipe

WORKLOADS = {  # name -> (space, strategy): both give the same 8 trials at any concurrency
    "balanced": ("benchmarks/one_architecture.yaml", "random"),  # seeded: the same 8 learning rates
    "grid": ("search_spaces/fcn_tiny.yaml", "grid"),  # the same 8 architectures, in grid order
}


def run(folder: str, concurrency: int, args) -> tuple[float, float, int, float, list[float]]:
    db = f"sqlite:///{folder}/scaling-{concurrency}.db"
    space, strategy = WORKLOADS[args.workload]
    config = SearchConfig(
        space=space,
        data="shapes",
        name=f"scaling-{concurrency}",
        trials=args.trials,
        epochs=args.epochs,
        strategy=strategy,
        seed=0,
        scheduler="fifo",
        execution=Execution(
            db=db,
            storage_path=os.path.join(folder, f"runs-{concurrency}"),
            cpus_per_trial=1,
            concurrency=concurrency,
            cache=False,
            quiet=True,
        ),
        train_samples=args.train_samples,
        recipe=TrainRecipe(epochs=args.epochs, batch_size=16, lr=3e-3),
    )
    started = time.perf_counter()
    run_search(config)
    wall = time.perf_counter() - started
    store = open_store(db)
    epochs = epochs_frame(store, config.name)
    times = trial_times_frame(store, config.name).set_index("trial_id")
    train = epochs.groupby("trial_id")["seconds"].sum()
    span = (times["finished_at"] - times["started_at"]).dt.total_seconds()
    per_trial = (span - train.reindex(span.index).fillna(0)).sort_index()
    listing = ", ".join(f"{v:.2f}" for v in per_trial)
    print(f"concurrency {concurrency}: inside each trial (s, by start): {listing}", flush=True)
    inside = float(per_trial.mean())
    order = times.sort_values("number").index
    return (
        wall,
        float(epochs["seconds"].sum()),
        len(epochs),
        inside,
        [float(train.get(t, 0.0)) for t in order],
    )


def greedy_makespan(durations: list[float], workers: int) -> float:
    """Trials handed out in order to the first free worker: when the last one finishes."""
    free = [0.0] * workers
    for duration in durations:
        i = free.index(min(free))
        free[i] += duration
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="balanced")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-samples", type=int, default=2048)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    with tempfile.TemporaryDirectory() as folder:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # one Ray for both runs
        results = {c: run(folder, c, args) for c in (1, 2)}
        ray.shutdown()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {args.workload} workload, "
        f"{args.trials} trials x {args.epochs} epochs, {args.train_samples} train images"
    )
    for concurrency, (wall, train, epochs, inside, _) in results.items():
        per_trial = train / args.trials
        overhead = (wall * concurrency - train) / args.trials
        print(
            f"concurrency {concurrency}: wall {wall:.1f} s, "
            f"training+eval {train:.1f} s over {epochs} epochs, "
            f"trial {per_trial:.1f} s, orchestration overhead {overhead:.2f} s/trial "
            f"({overhead / per_trial:.1%} of a trial), of which inside a trial {inside:.2f} s "
            f"({inside / per_trial:.1%})"
        )
    durations = results[1][4]
    bound = sum(durations) / greedy_makespan(durations, 2)
    achieved = results[1][0] / results[2][0]
    print(
        f"speed-up of concurrency 2 over 1: {achieved:.2f}x; balance bound for these trial lengths "
        f"{bound:.2f}x ({achieved / bound:.0%} of it)"
    )


if __name__ == "__main__":
    main()
