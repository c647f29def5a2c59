"""The static leaderboard at scale: build seconds, file size, peak memory and the browser's
time to interactive for searches of 1,000 / 10,000 (and 100,000) trials x 10 epochs.

    .venv/bin/python benchmarks/leaderboard_scale.py [--sizes 1000 10000] [--huge] [--db URL]
        [--no-browser] [--keep DIR] [--live-only]

Each search is written in bulk (``build_search``: distinct ``fcn_small`` genotypes, a cost
row, ten epochs with per-class IoU, some trials stopped early by ASHA, some failed) into a
fresh SQLite file, or into a throwaway database on the PostgreSQL server of ``--db``. Then
``nasfcn leaderboard``'s ``write_leaderboard`` runs once timed and once under tracemalloc
(peak Python heap), and headless Chromium (``/usr/bin/chromium``) opens the file: time to
interactive is when the page's script has drawn the table and marked the page ready
(``window.__boardReadyAt``), counted from navigation start; the overview plots are drawn after
it, one at a time (``window.__plotsDrawnAt``). Then ``nasfcn serve``'s app runs on the same
database (``live_app``) and the same browser measures, in the page: its first rows (from
navigation start until the grid shows row 0), the whole board (the status filters filled in),
a sort (a click on the val mIoU header until the worst trial is row 0) and a filter (a click on
the "failed" status until a failed trial is row 0), each answered by the database. The slope
per 1,000 trials is printed between consecutive sizes. ``--keep DIR`` writes the SQLite files
into DIR (``scale-N.db``) and uses one again when it already holds the search; ``--live-only``
measures only the live app (no static build). Goals (issue 21): 10,000 trials build
< 3 s, file < 15 MB, interactive < 3 s, live first rows < 2 s, sort/filter < 0.5 s; 100,000
trials build < 20 s, file < 60 MB, live first rows < 3 s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from leaderboard.static import write_leaderboard
from nasfcn.space import load_space
from nasfcn.store import (
    Store,
    add_architectures,
    bulk_insert,
    create_search,
    leaderboard_frame,
    open_store,
    search_list,
    set_search_status,
    trial_times_frame,
)

SPACE = Path(__file__).resolve().parent.parent / "search_spaces" / "fcn_small.yaml"
CLASS_NAMES = ("background", "circle", "square", "triangle")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def build_search(store: Store, name: str, trials: int, epochs: int = 10, seed: int = 0) -> int:
    """A completed search of ``trials`` trials written in bulk; returns its id.

    Realistic for the leaderboard: distinct ``fcn_small`` genotypes; 80% complete all
    ``epochs``, 15% are stopped early by ASHA after 1-3 epochs, 5% fail (no epochs); every
    epoch has val mIoU, pixel accuracy and a per-class IoU list.
    """
    space = load_space(str(SPACE))
    search = create_search(
        store, name, "shapes", space_name=space.name, config={"class_names": list(CLASS_NAMES)}
    )
    rng = random.Random(seed)
    genotypes = [space.sample(seed * 1_000_003 + n) for n in range(trials)]
    add_architectures(store, {g.arch_id: g.arch_json() for g in genotypes})
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    plans = [_plan(rng, epochs) for _ in range(trials)]
    rows = (
        _trial_row(search, n, g, plan, start)
        for n, (g, plan) in enumerate(zip(genotypes, plans, strict=True))
    )
    bulk_insert(store, "trials", rows)
    ids = dict(
        zip(*(trial_times_frame(store, name)[c].tolist() for c in ("number", "trial_id")), strict=True)
    )
    bulk_insert(store, "trial_costs", (_cost_row(ids[n], g, rng) for n, g in enumerate(genotypes)))
    bulk_insert(store, "epochs", _epoch_rows(ids, plans))
    set_search_status(store, search, "completed")
    return search


def _plan(rng: random.Random, epochs: int) -> dict[str, Any]:
    """One trial's fate and curve: status, val mIoU per epoch, per-class IoU per epoch."""
    draw = rng.random()
    status = "failed" if draw < 0.05 else ("stopped_early" if draw < 0.20 else "completed")
    trained = 0 if status == "failed" else (rng.randint(1, 3) if status == "stopped_early" else epochs)
    ceiling, speed = rng.uniform(0.3, 0.85), rng.uniform(0.2, 0.8)
    curve = [round(ceiling * (1 - (1 - speed) ** e) + rng.gauss(0, 0.01), 4) for e in range(1, trained + 1)]
    classes = [[round(min(1.0, max(0.0, m + rng.gauss(0, 0.08))), 4) for _ in CLASS_NAMES] for m in curve]
    return {"status": status, "curve": curve, "classes": classes}


def _trial_row(search: int, number: int, genotype: Any, plan: dict[str, Any], start: datetime) -> dict:
    curve = plan["curve"]
    best = max(range(len(curve)), key=curve.__getitem__) if curve else None
    began = start + timedelta(seconds=30 * number)
    return {
        "search_id": search,
        "number": number,
        "arch_id": genotype.arch_id,
        "trial_key": genotype.trial_key,
        "genotype_json": genotype.to_json(),
        "dataset": "shapes",
        "recipe_key": "scale",
        "seed": 0,
        "status": plan["status"],
        "best_epoch": None if best is None else best + 1,
        "best_miou": None if best is None else curve[best],
        "best_pixel_accuracy": None if best is None else round(0.5 + curve[best] / 2, 4),
        "final_miou": curve[-1] if curve else None,
        "epochs_trained": len(curve),
        "error": "RuntimeError: CUDA out of memory" if plan["status"] == "failed" else None,
        "started_at": began,
        "finished_at": began + timedelta(seconds=25 + 2 * len(curve)),
    }


def _cost_row(trial_id: int, genotype: Any, rng: random.Random) -> dict[str, Any]:
    width, stages = genotype.encoder.width, genotype.encoder.stages
    params = int(width * width * 9 * 2**stages * rng.uniform(0.8, 1.2))
    return {
        "trial_id": trial_id,
        "arch_id": genotype.arch_id,
        "input": "1x3x64x64",
        "device": "cpu",
        "params": params,
        "flops": params * 4096,
        "latency_ms": round(params / 20_000 * rng.uniform(0.8, 1.3), 3),
        "peak_memory_mb": round(params / 50_000, 2),
    }


def _epoch_rows(ids: dict[int, int], plans: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for number, plan in enumerate(plans):
        for e, (miou, classes) in enumerate(zip(plan["curve"], plan["classes"], strict=True), start=1):
            yield {
                "trial_id": ids[number],
                "epoch": e,
                "train_loss": round(1.0 / e, 4),
                "val_miou": miou,
                "val_pixel_accuracy": round(0.5 + miou / 2, 4),
                "per_class_iou_json": json.dumps(classes),
                "seconds": 2.0,
                "lr": 0.01,
                "images_per_s": 100.0,
            }


@contextmanager
def _database(server: str | None, folder: Path, label: str) -> Iterator[str]:
    """A fresh SQLite file, or a throwaway database on the PostgreSQL server ``server``."""
    if server is None:
        yield f"sqlite:///{folder / f'{label}.db'}"
        return
    name = f"nasfcn_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _browser() -> Any:
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(300)
    driver.set_script_timeout(300)  # a 100,000-trial page keeps the browser busy for tens of seconds
    return driver


def time_to_interactive(driver: Any, page: Path) -> float:
    """Seconds from navigation start until the page's script has drawn the table (and the load
    event, which waits for every inline overview plot), in headless Chromium."""
    driver.get("about:blank")
    driver.get(page.as_uri())
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready = driver.execute_script(
            "var t = performance.getEntriesByType('navigation')[0];"
            "return window.__boardReadyAt && t && t.loadEventEnd ?"
            " Math.max(window.__boardReadyAt, t.loadEventEnd) : null"
        )
        if ready:
            return float(ready) / 1000
        time.sleep(0.05)
    raise TimeoutError(f"{page} did not become interactive in 300 s")


def time_to_plots(driver: Any) -> float:
    """Seconds from navigation start until the page has drawn every overview plot (after the
    table works, one per turn of the event loop; WebGL is software-rendered in headless Chromium)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        drawn = driver.execute_script("return window.__plotsDrawnAt || null")
        if drawn:
            return float(drawn) / 1000
        time.sleep(0.1)
    raise TimeoutError("the overview plots were not drawn in 300 s")


@contextmanager
def live_app(url: str, refresh_s: float | None = None) -> Iterator[str]:
    """``nasfcn serve`` on ``url`` (the Dash app, threaded, on a free loopback port) until the block
    ends; its address. ``refresh_s``: how often the page re-reads the database (default: serve's).
    The leaderboard's browser tests serve their databases with it too."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from leaderboard.app import DEFAULT_REFRESH_S, create_app

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: object, **kwargs: object) -> None:
            """One line per request would drown the figures."""

    store = Store(url)
    app = create_app(store, refresh_s=refresh_s or DEFAULT_REFRESH_S)
    server = make_server("127.0.0.1", 0, app.server, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        store.dispose()


#: The first row of the live grid as shown, and the id of the trial it holds.
_FIRST_ROW = "document.querySelector('#table .ag-row[row-index=\"0\"]')"
_FIRST_ID = (
    f"(function() {{ var r = {_FIRST_ROW}; return r && r.querySelector('.ag-cell[col-id=\"arch_id\"]')"
    " && r.innerText.trim() ? r.getAttribute('row-id') : null; })()"
)


def _poll(driver: Any, script: str, what: str, limit_s: float = 120) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = driver.execute_script(script)
        if found is not None:
            return found
        time.sleep(0.02)
    raise TimeoutError(f"{what} within {limit_s:.0f} s")


def live_first_paint(driver: Any, base: str, search: str) -> float:
    """Seconds from navigation start until the live app's table shows its first row."""
    driver.get("about:blank")
    driver.get(f"{base}/?search={search}")
    script = f"return {_FIRST_ID} ? performance.now() : null"
    return float(_poll(driver, script, "the live table showed no row")) / 1000


def live_round_trip(driver: Any, click: str, expect: str) -> float:
    """Seconds from a click (JavaScript ``click``, run in the page) until the first row
    satisfies ``expect`` (a JavaScript expression on ``id``, the first row's trial id)."""
    driver.execute_script(f"window.__t0 = performance.now(); {click}")
    script = f"var id = {_FIRST_ID}; return id !== null && ({expect})"
    script += " ? performance.now() - window.__t0 : null"
    return float(_poll(driver, script, "the table did not answer the click")) / 1000


def measure_live(driver: Any, url: str, search: str) -> dict[str, float]:
    """The live app: first paint (table rows), the whole board drawn, a sort (val mIoU ascending:
    the worst first) and a status filter (failed), each measured in the page."""
    store = Store(url)
    try:
        worst = min_miou_ids(store, search)
        failed = failed_ids(store, search)
    finally:
        store.dispose()
    with live_app(url) as base:
        paint = live_first_paint(driver, base, search)
        # The round trips measure the table, not the first figures still on their way.
        ready = "return document.querySelector('#filter-status input[value=\"failed\"]')"
        ready += " ? performance.now() : null"
        board = float(_poll(driver, ready, "the board was not drawn", 300)) / 1000
        header = "Array.from(document.querySelectorAll('#table .ag-header-cell'))"
        header += ".find(h => h.getAttribute('col-id') === 'best_miou')"
        header += ".querySelector('.ag-header-cell-label').click()"
        worst_ids = json.dumps([str(t) for t in worst])
        sort = live_round_trip(driver, header, f"{worst_ids}.includes(id)")
        box = "document.querySelector('#filter-status input[value=\"failed\"]').click()"
        failed_ids_js = json.dumps([str(t) for t in failed])
        narrowed = live_round_trip(driver, box, f"{failed_ids_js}.includes(id)")
    return {"paint_s": paint, "board_s": board, "sort_s": sort, "filter_s": narrowed}


def min_miou_ids(store: Store, search: str) -> list[int]:
    """The trials with the worst val mIoU of ``search``: the first rows of an ascending sort."""
    frame = leaderboard_frame(store, search)
    return [int(t) for t in frame.loc[frame["best_miou"] == frame["best_miou"].min(), "trial_id"]]


def failed_ids(store: Store, search: str) -> list[int]:
    frame = leaderboard_frame(store, search)
    return [int(t) for t in frame.loc[frame["status"] == "failed", "trial_id"]]


def measure(
    url: str, trials: int, folder: Path, driver: Any | None, live_only: bool = False
) -> dict[str, float]:
    store = open_store(url)
    try:
        result: dict[str, float] = {"trials": trials}
        if "big" not in set(search_list(store)["name"]):  # a kept database holds it already
            started = time.perf_counter()
            build_search(store, "big", trials)
            result["write_s"] = time.perf_counter() - started
        if not live_only:
            result.update(_static(store, folder, trials))
    finally:
        store.dispose()
    if driver is not None:
        if not live_only:
            result["interactive_s"] = time_to_interactive(driver, folder / f"board-{trials}.html")
            result["plots_s"] = time_to_plots(driver)
        result["load"] = os.getloadavg()[0]  # the machine's load as the live app is measured
        result.update(measure_live(driver, url, "big"))
    return result


def _static(store: Store, folder: Path, trials: int) -> dict[str, float]:
    """The static file: build seconds, its size, and the peak Python heap of a second build."""
    page = folder / f"board-{trials}.html"
    started = time.perf_counter()
    write_leaderboard(store, page, "big")
    seconds = time.perf_counter() - started
    tracemalloc.start()
    write_leaderboard(store, folder / "again.html", "big")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"build_s": seconds, "mb": page.stat().st_size / 1e6, "peak_mb": peak / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--huge", action="store_true", help="add 100,000 trials")
    parser.add_argument("--db", help="PostgreSQL server URL (default: a fresh SQLite file per size)")
    parser.add_argument("--no-browser", action="store_true", help="skip the time to interactive")
    parser.add_argument("--keep", type=Path, help="keep the SQLite files in this folder, and use them again")
    parser.add_argument("--live-only", action="store_true", help="measure only the live app")
    args = parser.parse_args()
    sizes = [*args.sizes, *([100_000] if args.huge else [])]
    backend = "PostgreSQL" if args.db else "SQLite"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    driver = None if args.no_browser else _browser()
    results = []
    try:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            for trials in sizes:
                with _database(args.db, args.keep or folder, f"scale-{trials}") as url:
                    result = measure(url, trials, folder, driver, args.live_only)
                results.append(result)
                print(_line(backend, result), flush=True)
    finally:
        if driver is not None:
            driver.quit()
    for small, big in itertools.pairwise(results):
        per = (big["trials"] - small["trials"]) / 1000
        slopes = ", ".join(
            f"{key} {(big[key] - small[key]) / per:+.3f}"
            for key in ("build_s", "mb", "peak_mb", "interactive_s", "plots_s", "paint_s", "board_s")
            if key in big
        )
        print(f"slope per 1,000 trials ({small['trials']:,} -> {big['trials']:,}): {slopes}")


def _line(backend: str, r: dict[str, float]) -> str:
    interactive = (
        f", interactive {r['interactive_s']:.2f} s (every plot drawn {r['plots_s']:.1f} s)"
        if "interactive_s" in r
        else ""
    )
    live = (
        f"; live app: first rows {r['paint_s']:.2f} s, board {r['board_s']:.1f} s, "
        f"sort {r['sort_s']:.2f} s, filter {r['filter_s']:.2f} s (load average {r['load']:.2f})"
        if "paint_s" in r
        else ""
    )
    static = (
        f"build {r['build_s']:.2f} s, file {r['mb']:.2f} MB, peak {r['peak_mb']:.0f} MB"
        if "build_s" in r
        else ""
    )
    written = f"written in {r['write_s']:.1f} s" if "write_s" in r else "the kept database"
    figures = f"{static}{interactive}{live}".removeprefix("; ")  # --live-only: no static figures
    return f"{backend} {int(r['trials']):,} trials ({written}): {figures}"


if __name__ == "__main__":
    main()
