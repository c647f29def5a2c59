"""Database throughput: insert 10,000 epoch rows and read a 10,000-trial leaderboard frame.

    .venv/bin/python benchmarks/store_throughput.py [--postgres postgresql+psycopg://...]

Runs on a fresh SQLite file and, when a URL is given (or NASFCN_TEST_POSTGRES_URL is set),
on PostgreSQL. Epoch rows go through ``record_epoch`` one transaction each, exactly as the
search's recorder writes them; the baseline is a bulk ``executemany`` of the same rows in
one transaction, so the ratio shows what per-epoch durability costs.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from nasfcn.genotype import EncoderGene, Genotype
from nasfcn.store import Store, create_search, leaderboard_frame, open_store, record_epoch, upsert_trial
from nasfcn.store._schema import Epoch, Trial

EPOCHS = 10_000
TRIALS = 10_000


def metrics(epoch: int) -> dict:
    return {
        "train_loss": 1.0 / epoch,
        "val_miou": 0.5,
        "val_pixel_accuracy": 0.9,
        "val_per_class_iou": [0.5, 0.4, 0.6, 0.7],
        "seconds": 1.0,
        "lr": 0.01,
        "images_per_s": 100.0,
    }


def bench(store: Store, label: str) -> None:
    search = create_search(store, "bench", "shapes")
    genotype = Genotype(encoder=EncoderGene(stages=3, width=8))
    trials = [upsert_trial(store, search, n, genotype, dataset="shapes", recipe={}) for n in range(10)]
    started = time.perf_counter()
    for i in range(EPOCHS):
        record_epoch(store, trials[i % 10], i // 10 + 1, metrics(i // 10 + 1))
    per_row = EPOCHS / (time.perf_counter() - started)

    bulk_search = create_search(store, "bulk", "shapes")
    bulk_trial = upsert_trial(store, bulk_search, 0, genotype, dataset="shapes", recipe={})
    rows = [
        {
            "trial_id": bulk_trial,
            "epoch": e,
            "train_loss": 0.1,
            "val_miou": 0.5,
            "val_pixel_accuracy": 0.9,
            "per_class_iou_json": "[0.5]",
            "seconds": 1.0,
            "lr": 0.01,
            "images_per_s": 100.0,
        }
        for e in range(1, EPOCHS + 1)
    ]
    started = time.perf_counter()
    with store.session_scope() as session:
        session.execute(insert(Epoch), rows)
    bulk = EPOCHS / (time.perf_counter() - started)

    # A 10,000-trial search, written in bulk, then read as a leaderboard frame.
    big = create_search(store, "big", "shapes")
    with store.session_scope() as session:
        session.execute(
            insert(Trial),
            [
                {
                    "search_id": big,
                    "number": n,
                    "arch_id": genotype.arch_id,
                    "trial_key": genotype.trial_key,
                    "genotype_json": genotype.to_json(),
                    "dataset": "shapes",
                    "recipe_key": "x",
                    "seed": 0,
                    "status": "completed",
                    "best_miou": (n % 997) / 997,
                    "epochs_trained": 3,
                }
                for n in range(TRIALS)
            ],
        )
    started = time.perf_counter()
    frame = leaderboard_frame(store, "big")
    read = len(frame) / (time.perf_counter() - started)
    print(
        f"{label}: record_epoch {per_row:,.0f} rows/s (one transaction each), bulk insert {bulk:,.0f} rows/s "
        f"(ratio {per_row / bulk:.3f}); leaderboard frame of {len(frame):,} trials: {read:,.0f} rows/s "
        f"({len(frame) / read:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("NASFCN_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as folder:
        bench(open_store(f"sqlite:///{folder}/bench.db"), "SQLite (WAL)")
    if args.postgres:
        name = f"nasfcn_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        store = open_store(url)
        try:
            bench(store, "PostgreSQL")
        finally:
            store.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    else:
        print("PostgreSQL: skipped (give --postgres URL or set NASFCN_TEST_POSTGRES_URL)")


if __name__ == "__main__":
    main()
