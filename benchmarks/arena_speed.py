"""Arena speed: R repeats x N trials x strategies x schedulers replayed against a table.

The table is generated (random numbers in the table format) over a real space, by default
``fcn_bench.yaml`` (280 architectures) x 3 seeds x 10 epochs, so the searchers propose the
architectures it holds. Goal (issue 22): 100 repeats x 64 trials x 6 pairs in < 5 minutes
on 2 cores. Prints seconds per pair and per replay, and with ``--profile`` the share of the
time spent inside Optuna's samplers.

    .venv/bin/python benchmarks/arena_speed.py [--repeats 100] [--trials 64] \
        [--strategies random,tpe] [--schedulers fifo,asha] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nasfcn.arena import ArenaSearch, ArenaTable, compare, replays
from nasfcn.space import load_space, space_hash
from nasfcn.table import FORMAT_VERSION, load
from nasfcn.table._format import checksum, encode_metadata, schema

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 2


def generated_table(path: Path, space_file: Path, seeds: int = 3, epochs: int = 10, seed: int = 0) -> Path:
    """Every architecture of ``space_file`` x seeds x epochs with made-up learning curves: an
    architecture's quality, seed noise on top, and a curve that saturates over the epochs."""
    space = load_space(space_file)
    genotypes = sorted(space.iter_genotypes(include_train=False), key=lambda g: g.arch_id)
    archs = len(genotypes)
    rng = np.random.default_rng(seed)
    quality = rng.normal(0.55, 0.08, archs)
    noise = rng.normal(0.0, 0.02, (archs, seeds, 1))
    shape = 1 - np.exp(-np.arange(1, epochs + 1) / 3.0)
    miou = np.clip(quality[:, None, None] * shape[None, None, :] + noise, 0, 1).ravel()
    per_epoch = np.repeat(rng.uniform(1.0, 4.0, archs), seeds * epochs)
    rows = archs * seeds * epochs
    columns: dict[str, object] = {
        "arch_id": np.repeat([g.arch_id for g in genotypes], seeds * epochs),
        "seed": np.tile(np.repeat(np.arange(seeds), epochs), archs),
        "epoch": np.tile(np.arange(1, epochs + 1), archs * seeds),
        "val_miou": miou,
        "val_pixel_accuracy": np.clip(miou + 0.2, 0, 1),
        "train_loss": 1 - miou,
        "seconds": per_epoch * rng.uniform(0.9, 1.1, rows),
        **{f"iou_{c}": miou for c in range(CLASSES)},
        "status": ["completed"] * rows,
        "error": [None] * rows,
        "reference": [None] * rows,
        "genotype_json": np.repeat([g.to_json() for g in genotypes], seeds * epochs),
        "params": np.repeat(rng.integers(10_000, 500_000, archs), seeds * epochs),
        "flops": np.repeat(rng.integers(10**6, 10**8, archs), seeds * epochs),
        "latency_ms": np.repeat(rng.uniform(1, 10, archs), seeds * epochs),
        "peak_memory_mb": np.full(rows, 10.0),
        "device": ["cpu"] * rows,
        "input": ["1x3x32x32"] * rows,
    }
    data = pa.Table.from_pydict(columns, schema=schema(CLASSES))
    facts = {
        "format_version": FORMAT_VERSION,
        "name": f"generated-{space.name}",
        "space_name": space.name,
        "space_hash": space_hash(space),
        "space_yaml": Path(space_file).read_text(),
        "seeds": list(range(seeds)),
        "epochs": epochs,
        "class_names": [f"c{c}" for c in range(CLASSES)],
        "recipe": {"epochs": epochs},
        "checksum": checksum(data),
    }
    pq.write_table(data.replace_schema_metadata(encode_metadata(facts)), path, compression="zstd")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--strategies", default="random,tpe")
    parser.add_argument("--schedulers", default="fifo,asha")
    parser.add_argument("--space", default=str(ROOT / "search_spaces" / "fcn_bench.yaml"))
    parser.add_argument("--profile", action="store_true", help="profile the replays (cProfile)")
    parser.add_argument("--json", help="write the timings here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        board = ArenaTable(load(generated_table(Path(folder) / "t.parquet", Path(args.space))))
    print(f"table: {len(board.archs)} archs x {len(board.table.seeds)} seeds x {board.table.epochs} epochs")
    timings, results = {}, []
    profile = cProfile.Profile() if args.profile else None
    for strategy in args.strategies.split(","):
        objectives = ("miou", "params") if strategy == "nsga2" else ("miou",)
        for scheduler in args.schedulers.split(","):
            search = ArenaSearch(strategy, scheduler, args.trials, args.concurrency, objectives)
            started = time.perf_counter()
            if profile:
                profile.enable()
            results += replays(board, [search], args.repeats)
            if profile:
                profile.disable()
            timings[search.pair] = time.perf_counter() - started
            print(
                f"{search.pair:14s} {timings[search.pair]:7.1f} s  "
                f"({timings[search.pair] / args.repeats * 1000:.0f} ms per replay)",
                flush=True,
            )
    total = sum(timings.values())
    print(
        f"total: {total:.1f} s for {args.repeats} repeats x {args.trials} trials x {len(timings)} pairs "
        f"on {platform.node()}"
    )
    started = time.perf_counter()
    summary = compare(results, board.target())
    print(f"compare: {time.perf_counter() - started:.1f} s")
    print(
        summary.summary[
            ["pair", "epochs_to_target", "reached_share", "regret_at_budget", "winners_curse", "p_holm"]
        ].to_string(index=False)
    )
    if profile:
        stats = pstats.Stats(profile)
        optuna_time = sum(
            v[3]
            for k, v in stats.stats.items()
            if "/optuna/samplers/" in k[0]
            and k[2] in ("sample_relative", "sample_independent", "infer_relative_search_space")
        )
        print(f"inside Optuna's samplers (sample_relative/independent): {optuna_time:.1f} s of {total:.1f} s")
        stats.sort_stats("cumulative").print_stats(25)
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": timings, "total": total}, indent=2))


if __name__ == "__main__":
    main()
