"""Arena storage: how long ``nasfcn arena`` takes to put an arena's simulated trials into SQL.

Replays random search (the fastest strategy: the storage is measured, not the searcher)
under FIFO and ASHA against the generated ``fcn_bench`` table of ``arena_speed.py`` until
the arena holds ``--trials-total`` trials (default 38,400 = issue 22's 100 repeats x 64
trials x 6 pairs), then times ``store_arena`` (one transaction of bulk inserts: trials, their
costs and every simulated epoch) into each ``--db`` URL, new and then replacing itself
(``--replace``), and with ``--leaderboard`` the static leaderboard of it.

    .venv/bin/python benchmarks/arena_store.py [--db sqlite:///arena.db] [--db postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

from nasfcn.arena import ArenaPlan, ArenaTable, run_arena, store_arena
from nasfcn.store import open_store
from nasfcn.table import load

ROOT = Path(__file__).resolve().parents[1]


def _generated_table(folder: Path) -> Path:
    """``arena_speed.generated_table``: the same made-up table over the real fcn_bench space."""
    spec = importlib.util.spec_from_file_location("arena_speed", ROOT / "benchmarks" / "arena_speed.py")
    if spec is None or spec.loader is None:
        raise SystemExit("benchmarks/arena_speed.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generated_table(folder / "t.parquet", ROOT / "search_spaces" / "fcn_bench.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials-total", type=int, default=38_400)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--db", action="append", help="SQLAlchemy URL (repeatable); default a temp SQLite")
    parser.add_argument("--leaderboard", action="store_true", help="also time nasfcn leaderboard on it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        board = ArenaTable(load(_generated_table(Path(folder))))
        repeats = args.trials_total // (2 * args.trials)
        plan = ArenaPlan(("random",), ("fifo", "asha"), args.trials, repeats, concurrency=4)
        started = time.perf_counter()
        run = run_arena(board, plan, "arena-store-benchmark")
        trials = sum(len(r.trials) for r in run.results)
        epochs = sum(int(r.trials["epochs"].sum()) for r in run.results)
        print(
            f"{len(run.results)} replays, {trials:,} trials, {epochs:,} epochs "
            f"in {time.perf_counter() - started:.0f} s"
        )
        for url in args.db or [f"sqlite:///{Path(folder) / 'arena.db'}"]:
            store = open_store(url)
            for what in ("new", "replacing it"):
                started = time.perf_counter()
                store_arena(store, run, replace=True)
                seconds = time.perf_counter() - started
                print(f"store_arena into {store.masked_url} ({what}): {seconds:.1f} s", flush=True)
            if args.leaderboard:
                from leaderboard.static import write_leaderboard

                started = time.perf_counter()
                path = write_leaderboard(store, Path(folder) / "board.html", run.name)
                size = path.stat().st_size / 1e6
                print(f"nasfcn leaderboard of it: {time.perf_counter() - started:.1f} s, {size:.1f} MB")
            store.dispose()


if __name__ == "__main__":
    main()
