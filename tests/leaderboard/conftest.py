"""Leaderboard fixtures: a database from one real tiny search, headless Chromium, a live server.

The browser is Debian's ``chromium`` driven through ``chromedriver`` (``.ci/run`` installs
both); nothing is downloaded. Without them the browser tests skip, except in CI, where a
missing browser fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)
XSS_NAME = "<script>window.__x=1</script><img src=x onerror=window.__y=1>"
XSS_ERROR = 'RuntimeError: <img src=x onerror="window.__z=1"> & <b>bold</b>'
SPACE = """
name: board
input: {channels: 3, min_size: 16}
encoder:
  stages: {choices: [2, 3]}
  width: {choices: [4, 6]}
  kernel_size: {choices: [3, 5]}
skip: {choices: [none, fcn16s, unet_add]}
upsample: {choices: [bilinear, transposed]}
"""


#: The real tiny benchmark in ``searched_db``: two references x two datasets x two seeds.
BENCH_ARCHS = ("ref:unet:4", "ref:fcn8s:4")
BENCH_DATASETS = ("shapes", "digits")


@pytest.fixture(scope="session")
def searched_db(tmp_path_factory: pytest.TempPathFactory, ray_local: None) -> str:
    """URL of a SQLite database holding two real tiny searches on a local Ray: ``tiny`` (ASHA,
    a parameter budget that rejects some candidates) and one named ``XSS_NAME`` (whose trials
    reuse ``tiny``'s results; run as ``xss`` and renamed in the database, as no search may
    be named so), plus a failed trial in the latter whose error is markup; and
    the real tiny benchmark ``bench`` (``BENCH_ARCHS`` x ``BENCH_DATASETS`` x 2 seeds, 1 epoch)."""
    from nasfcn.benchmark import BenchmarkConfig, run_benchmark
    from nasfcn.search import Execution, SearchConfig, run_search
    from nasfcn.train import TrainRecipe

    root = tmp_path_factory.mktemp("board")
    space = root / "board.yaml"
    space.write_text(SPACE)
    url = f"sqlite:///{root / 'nasfcn.db'}"
    for name, trials in (("tiny", 5), ("xss", 2)):
        run_search(
            SearchConfig(
                space=str(space),
                data="shapes",
                name=name,
                trials=trials,
                epochs=2,
                strategy="random",
                scheduler="asha",
                max_params=12000,
                execution=Execution(db=url, storage_path=str(root / "runs"), concurrency=2, quiet=True),
                image_size=32,
                train_samples=32,
                val_samples=16,
                recipe=TrainRecipe(epochs=2, batch_size=8),
            )
        )
    run_benchmark(
        BenchmarkConfig(
            name="bench",
            archs=BENCH_ARCHS,
            datasets=BENCH_DATASETS,
            seeds=2,
            epochs=1,
            execution=Execution(db=url, storage_path=str(root / "runs"), concurrency=2, quiet=True),
            image_size=32,
            train_samples=32,
            val_samples=16,
            recipe=TrainRecipe(epochs=1, batch_size=8),
        )
    )
    _rename_search(url, "xss", XSS_NAME)
    _add_failed_trial(url, XSS_NAME, XSS_ERROR)
    return url


def _rename_search(url: str, old: str, new: str) -> None:
    """A search name a search can no longer be given (it names a folder), as another tool may write it."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            rename = text("UPDATE searches SET name = :new WHERE name = :old")
            connection.execute(rename, {"new": new, "old": old})
    finally:
        engine.dispose()


def _add_failed_trial(url: str, search: str, error: str) -> None:
    """Record one more trial of ``search`` that failed with ``error``, as the search's recorder would."""
    from nasfcn.space import parse_space
    from nasfcn.store import Store, finish_trial, get_search, next_trial_number, upsert_trial

    store = Store(url)
    try:
        stored = get_search(store, search)
        if stored is None:
            raise LookupError(f"no search {search!r} in {url}")
        genotype = parse_space(stored["space_yaml"]).sample(99)
        number = next_trial_number(store, stored["id"])
        trial = upsert_trial(
            store,
            stored["id"],
            number,
            genotype,
            dataset=stored["dataset"],
            recipe=stored["recipe"],
            status="running",
        )
        finish_trial(store, trial, "failed", error=error, traceback=f"Traceback ...\nRuntimeError: {error}")
    finally:
        store.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium through Selenium, with Debian's driver (no Selenium Manager download)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        reason = (
            f"browser tests need {CHROMIUM} and {CHROMEDRIVER}: "
            "`apt-get install chromium chromium-driver` (.ci/run installs them)"
        )
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests, but " + reason)
        pytest.skip(reason)
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def _serving(url: str, refresh_s: float) -> Iterator[str]:
    """The Dash app on ``url``, served from a thread on a free loopback port, until the block ends
    (the scale benchmark's ``live_app``: one way to serve a database, for both)."""
    with _scale_module().live_app(url, refresh_s) as address:
        yield address


@pytest.fixture(scope="module")
def live_server(searched_db: str) -> Iterator[str]:
    """The live leaderboard of ``searched_db``."""
    with _serving(searched_db, refresh_s=2.0) as url:
        yield url


@pytest.fixture
def live_handmade(handmade_db: str) -> Iterator[str]:
    """The live leaderboard of ``handmade_db``, re-reading it every second."""
    with _serving(handmade_db, refresh_s=1.0) as url:
        yield url


@cache
def _scale_module():
    """``benchmarks/leaderboard_scale.py`` (loaded once): the tests write big searches and serve
    databases the way the benchmark does."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "leaderboard_scale.py"
    spec = importlib.util.spec_from_file_location("leaderboard_scale", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bulk_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """``make(trials) -> (url, search name)``: a SQLite database holding a completed search of
    that many trials x 10 epochs (distinct fcn_small genotypes, per-class IoU, some trials stopped
    early or failed), bulk-inserted in seconds; each size is written once per session."""
    from nasfcn.store import open_store

    scale = _scale_module()
    made: dict[int, tuple[str, str]] = {}
    stores = []

    def make(trials: int) -> tuple[str, str]:
        if trials not in made:
            url = f"sqlite:///{tmp_path_factory.mktemp('bulk') / f'bulk-{trials}.db'}"
            store = open_store(url)
            stores.append(store)
            scale.build_search(store, f"big{trials}", trials)
            made[trials] = (url, f"big{trials}")
        return made[trials]

    yield make
    for store in stores:
        store.dispose()


@pytest.fixture
def fresh_bulk(tmp_path: Path, store_tracker: list) -> object:
    """``make(trials) -> (url, search name)``: like ``bulk_db``, but a database of this test's own,
    which it may write to (a search that goes on running)."""
    from nasfcn.store import open_store

    def make(trials: int) -> tuple[str, str]:
        url = f"sqlite:///{tmp_path / f'fresh-{trials}.db'}"
        _scale_module().build_search(open_store(url), "live", trials)
        return url, "live"

    return make


@pytest.fixture(scope="module")
def live_bulk(bulk_db) -> Iterator[tuple[str, str, str]]:
    """(server address, database URL, search name): the live leaderboard of a 10,000-trial search."""
    url, search = bulk_db(10_000)
    with _serving(url, refresh_s=5.0) as base:
        yield base, url, search


CLASS_NAMES = ["background", "<b>circle</b>", "square"]


def _epoch(miou: float, epoch: int) -> dict:
    return {
        "epoch": epoch,
        "train_loss": 1.0 / epoch,
        "val_miou": miou,
        "val_pixel_accuracy": 0.5 + miou / 2,
        "val_per_class_iou": [0.9, miou, None],
        "seconds": 1.0,
        "lr": 0.01,
        "images_per_s": 100.0,
    }


@pytest.fixture
def handmade_db(tmp_path: Path, store_tracker: list) -> str:
    """A SQLite database written through the store's write functions (no training), with:
    ``alpha`` (completed, stopped early, failed, rejected), ``beta`` (a trial cached from alpha's
    best, one trained), ``lonely`` (one trial), ``broken`` (only failures) and ``empty`` (none)."""
    from nasfcn.space import parse_space
    from nasfcn.store import (
        create_search,
        finish_trial,
        open_store,
        record_cost,
        record_epoch,
        set_search_status,
        upsert_trial,
    )

    url = f"sqlite:///{tmp_path / 'hand.db'}"
    store = open_store(url)
    space = parse_space(SPACE)
    recipe = {"epochs": 3}

    def trial(search: int, number: int, arch: int, mious: list[float], status: str, **finish) -> int:
        genotype = space.sample(arch)
        cost = {
            "params": 1000 * (arch + 1),
            "flops": 10**6 * (arch + 1),
            "latency_ms": 1.0 + arch,
            "peak_memory_mb": 1.0,
        }
        trial_id = upsert_trial(
            store, search, number, genotype, dataset="shapes", recipe=recipe, status="running"
        )
        record_cost(store, trial_id, cost)
        for epoch, miou in enumerate(mious, start=1):
            record_epoch(store, trial_id, epoch, _epoch(miou, epoch))
        finish_trial(store, trial_id, status, **finish)
        return trial_id

    config = {"class_names": CLASS_NAMES}
    alpha = create_search(
        store, "alpha", "shapes", space_name="board", space_yaml=SPACE, config=config, recipe=recipe
    )
    best = trial(alpha, 0, 0, [0.3, 0.6, 0.5], "completed")
    trial(alpha, 1, 1, [0.2], "stopped_early")
    trial(alpha, 2, 2, [], "failed", error="TrainingDiverged: loss is nan")
    trial(alpha, 3, 3, [], "rejected_by_constraint", error="params 4e3 exceeds --max-params 3000")
    set_search_status(store, alpha, "completed")
    beta = create_search(store, "beta", "shapes", space_name="board", space_yaml=SPACE, recipe=recipe)
    trial(beta, 0, 0, [], "cached", cached_from=best)
    trial(beta, 1, 4, [0.4, 0.7], "completed")
    lonely = create_search(store, "lonely", "shapes", space_yaml=SPACE, recipe=recipe)
    trial(lonely, 0, 5, [0.5], "completed")
    broken = create_search(store, "broken", "shapes", space_yaml=SPACE, recipe=recipe)
    trial(broken, 0, 6, [], "failed", error="RuntimeError: boom")
    trial(broken, 1, 7, [], "failed", error="RuntimeError: boom again")
    create_search(store, "empty", "shapes", space_yaml=SPACE, recipe=recipe)
    return url


#: The hand-made benchmark's val mIoU per label, dataset and seed (None: the run failed).
BENCH_MIOU = {
    "mine": {"shapes": [0.80, 0.82, 0.81], "digits": [0.60, 0.61, 0.62]},
    "unet": {"shapes": [0.79, 0.82, 0.80], "digits": [0.70, 0.72, 0.71]},
    "fcn8s": {"shapes": [0.50, 0.52, 0.51], "digits": [0.40, 0.45, None]},
}
BENCH_RECIPE = {"epochs": 1, "batch_size": 8, "seed": 0}


@pytest.fixture
def benchmark_db(tmp_path: Path, store_tracker: list) -> str:
    """A SQLite database written through the store's write functions (no training), with:
    ``bench`` (mine, unet and fcn8s on shapes and digits x 3 seeds, fcn8s's last digits run
    failed), ``broken`` (only failures), ``single`` (one seed), ``empty`` (no runs), and the
    search ``s`` on shapes that trained ``mine`` once with the benchmark's recipe."""
    from nasfcn.references import reference
    from nasfcn.space import parse_space
    from nasfcn.store import (
        create_search,
        finish_trial,
        open_store,
        record_cost,
        record_epoch,
        set_search_status,
        upsert_trial,
    )

    url = f"sqlite:///{tmp_path / 'bench.db'}"
    store = open_store(url)
    genotypes = {
        "mine": parse_space(SPACE).sample(0),
        "unet": reference("unet", 4),
        "fcn8s": reference("fcn8s", 4),
    }
    costs = {
        label: {"params": 1000 * (i + 1), "flops": 10**6, "latency_ms": 1.0 + i, "peak_memory_mb": 1.0}
        for i, label in enumerate(genotypes)
    }

    def run(search: int, number: int, label: str, dataset: str, seed: int, miou: float | None) -> None:
        trial = upsert_trial(
            store,
            search,
            number,
            genotypes[label],
            dataset=dataset,
            recipe=BENCH_RECIPE,
            status="running",
            seed=seed,
            reference=None if label == "mine" else label,
        )
        record_cost(store, trial, costs[label])
        if miou is None:
            finish_trial(store, trial, "failed", error="RuntimeError: <b>out of memory</b>")
            return
        record_epoch(store, trial, 1, {"val_miou": miou, "val_pixel_accuracy": 0.9})
        finish_trial(store, trial, "completed")

    def benchmark(name: str, datasets: list[str], seeds: int) -> int:
        plan = [
            {"label": label, "genotype": g.to_json(), "reference": None if label == "mine" else label}
            for label, g in genotypes.items()
        ]
        config = {"datasets": datasets, "seeds": seeds, "epochs": 1, "plan_archs": plan}
        return create_search(
            store, name, ",".join(datasets), config=config, recipe=BENCH_RECIPE, kind="benchmark"
        )

    search = create_search(store, "s", "shapes", space_yaml=SPACE, recipe=BENCH_RECIPE)
    run(search, 0, "mine", "shapes", 0, 0.80)
    run(search, 1, "unet", "shapes", 0, 0.79)
    set_search_status(store, search, "completed")
    bench = benchmark("bench", ["shapes", "digits"], 3)
    number = 0
    for label, by_dataset in BENCH_MIOU.items():
        for dataset, mious in by_dataset.items():
            for seed, miou in enumerate(mious):
                run(bench, number, label, dataset, seed, miou)
                number += 1
    set_search_status(store, bench, "completed")
    broken = benchmark("broken", ["shapes"], 1)
    run(broken, 0, "mine", "shapes", 0, None)
    run(broken, 1, "unet", "shapes", 0, None)
    set_search_status(store, broken, "completed")
    single = benchmark("single", ["digits"], 1)
    run(single, 0, "mine", "digits", 5, 0.3)
    run(single, 1, "unet", "digits", 5, 0.4)
    set_search_status(store, single, "completed")
    benchmark("empty", ["shapes"], 2)  # still running, nothing finished
    return url


# -- an arena: simulated trials that share their (architecture, table seed) runs --------------------
ARENA_SPACE = """\
name: arena4
input: {channels: 3, min_size: 32}
encoder: {stages: 3, width: 8, max_width: 32, kernel_size: 3, downsample: maxpool}
skip: {choices: [none, fcn8s]}
upsample: {choices: [bilinear, transposed]}
"""
ARENA_SEEDS = 2
ARENA_EPOCHS = 6


def _arena_metrics(arch: int, seed: int, epoch: int) -> dict[str, object]:
    value = round(0.2 + 0.1 * arch + 0.01 * seed + 0.02 * epoch - 0.003 * epoch * epoch, 6)
    return {
        "val_miou": value,
        "val_pixel_accuracy": value + 0.1,
        "train_loss": 1.0 / epoch,
        "seconds": 1.0 + arch,
    }


@pytest.fixture(scope="session")
def arena_db(tmp_path_factory: pytest.TempPathFactory, hand_tabulation: type):
    """``arena_db(repeats)``: (URL, arena name) of a SQLite database holding an arena of random
    search under FIFO and ASHA, 50 trials per replay, replayed ``repeats`` times on a table of
    four architectures x two seeds x six epochs (``ARENA_*``): many trials per table run."""
    from nasfcn.arena import ArenaPlan, ArenaTable, run_arena, store_arena
    from nasfcn.store import open_store
    from nasfcn.table import export_table, load

    folder = tmp_path_factory.mktemp("arena-board")
    store = open_store(f"sqlite:///{folder / 'table.db'}")
    try:
        hand_tabulation(
            "arena4", ARENA_SPACE, ARENA_SEEDS, ARENA_EPOCHS, hand_tabulation.arch_cost, _arena_metrics
        ).write(store, "arena4")
        table = ArenaTable(load(export_table(store, "arena4", folder / "arena4.parquet")))
    finally:
        store.dispose()

    @cache
    def make(repeats: int) -> tuple[str, str]:
        url = f"sqlite:///{folder / f'arena{repeats}.db'}"
        run = run_arena(table, ArenaPlan(("random",), ("fifo", "asha"), 50, repeats, concurrency=2), "played")
        arena = open_store(url)
        try:
            store_arena(arena, run)
        finally:
            arena.dispose()
        return url, "played"

    return make
