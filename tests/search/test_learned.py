"""The ``surrogate`` and ``zc`` strategies: in the arena against random, and through ``nasfcn search``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nasfcn.arena import ArenaSearch, ArenaTable, replays
from nasfcn.cli import app
from nasfcn.genotype import Genotype
from nasfcn.search import SEARCHERS, SearcherInputs, _learned
from nasfcn.space import load_space, parse_space
from nasfcn.store import (
    create_search,
    finish_trial,
    leaderboard_frame,
    open_store,
    record_cost,
    record_epoch,
    set_search_status,
    upsert_trial,
)
from nasfcn.table import Table, export_table, load

runner = CliRunner()

SPACE_YAML = """\
# 80 networks whose val mIoU is a sum of one term per knob
name: knobs80
input: {channels: 3, min_size: 32}
encoder: {stages: 3, width: 8, max_width: 32, kernel_size: 3, downsample: maxpool}
skip: {choices: [none, fcn16s, fcn8s, unet_concat, unet_add]}
upsample: {choices: [bilinear, transposed, pixel_shuffle, max_unpool]}
attention: {type: {choices: [none, se, spatial, cbam]}, where: decoder}
"""
SEEDS, EPOCHS = 2, 2
ORDER = {
    "skip": ("none", "fcn16s", "fcn8s", "unet_concat", "unet_add"),
    "upsample": ("bilinear", "transposed", "pixel_shuffle", "max_unpool"),
    "attention": ("none", "se", "spatial", "cbam"),
}


def miou(genotype: Genotype, seed: int, epoch: int) -> float:
    """The skip path counts most, then the upsampling, then the attention; seed and epoch a little."""
    terms = (
        0.05 * ORDER["skip"].index(genotype.skip)
        + 0.03 * ORDER["upsample"].index(genotype.upsample)
        + 0.02 * ORDER["attention"].index(genotype.attention.type)
    )
    return round(0.2 + terms + 0.004 * seed + 0.002 * epoch, 6)


@pytest.fixture(scope="module")
def knob_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Table]:
    folder = tmp_path_factory.mktemp("knobs80")
    store = open_store(f"sqlite:///{folder / 'table.db'}")
    plan = list(parse_space(SPACE_YAML).iter_genotypes(include_train=False))
    recipe = {"epochs": EPOCHS, "lr": 0.003, "batch_size": 16, "seed": 0}
    config = {
        "name": "knobs80",
        "epochs": EPOCHS,
        "seeds": SEEDS,
        "plan_archs": [{"label": g.arch_id, "genotype": g.to_json(), "reference": None} for g in plan],
        "class_names": {"shapes": ["background", "circle", "square"]},
    }
    sid = create_search(
        store, "knobs80", "shapes", space_name="knobs80", space_yaml=SPACE_YAML, config=config,
        recipe=recipe, kind="table",
    )  # fmt: skip
    try:
        for seed in range(SEEDS):
            for arch, genotype in enumerate(plan):
                number = seed * len(plan) + arch
                trial = upsert_trial(
                    store, sid, number, genotype, dataset="shapes", recipe=recipe, status="running", seed=seed
                )
                cost = {"params": 1000 * (arch + 1), "flops": 5000, "latency_ms": 1.0, "peak_memory_mb": 3.0}
                record_cost(store, trial, {**cost, "device": "cpu", "input_shape": [1, 3, 32, 32]})
                for epoch in range(1, EPOCHS + 1):
                    value = miou(genotype, seed, epoch)
                    metrics = {"val_miou": value, "val_pixel_accuracy": value, "train_loss": 1.0 / epoch}
                    record_epoch(
                        store, trial, epoch, {**metrics, "val_per_class_iou": [value] * 3, "seconds": 1.0}
                    )
                finish_trial(store, trial, "completed")
        set_search_status(store, sid, "completed")
        yield load(export_table(store, "knobs80", folder / "knobs80.parquet"))
    finally:
        store.dispose()


@pytest.mark.slow
def test_the_surrogate_beats_random_search_in_the_arena_at_equal_epochs(knob_table: Table) -> None:
    """16 trials of 80 architectures, FIFO (equal epochs), 20 paired repeats: random finds the best
    one in about a fifth of them; the surrogate, after its 8 random trials, learns the three terms."""
    board = ArenaTable(knob_table)
    searches = [ArenaSearch(name, "fifo", trials=16) for name in ("random", "surrogate")]
    results = replays(board, searches, repeats=20, seed=0)
    regret = {
        name: np.asarray([r.final_regret for r in results if r.search.strategy == name])
        for name in ("random", "surrogate")
    }
    epochs = {r.search.strategy: len(r.trace) for r in results}
    assert epochs["random"] == epochs["surrogate"] == 16 * EPOCHS
    assert regret["surrogate"].mean() <= 0.4 * regret["random"].mean()
    assert (regret["surrogate"] <= regret["random"]).sum() >= 16


def _inputs(space, seed: int = 0, first_number: int = 0, finished=()) -> SearcherInputs:
    return SearcherInputs(
        space=space, metrics=["val_miou"], modes=["max"], seed=seed, first_number=first_number,
        finished=list(finished), replays=[], cache=None, train_defaults={},
    )  # fmt: skip


def _run(searcher, trials: int, prefix: str = "t") -> list[Genotype]:
    proposed = []
    for i in range(trials):
        config = searcher.suggest(f"{prefix}{i}")
        genotype = Genotype.from_json(config["genotype"])
        proposed.append(genotype)
        result = {"val_miou": miou(genotype, 0, EPOCHS), "training_iteration": EPOCHS}
        searcher.on_trial_result(f"{prefix}{i}", result)
        searcher.on_trial_complete(f"{prefix}{i}", result)
    return proposed


@pytest.mark.slow
def test_a_resumed_surrogate_search_learns_from_the_finished_trials_and_repeats_none() -> None:
    space = parse_space(SPACE_YAML)
    first = _run(SEARCHERS.get("surrogate")(_inputs(space)), 10)
    assert len({g.trial_key for g in first}) == 10  # never the same architecture twice
    finished = [
        {"number": n, "status": "completed", "genotype_json": g.to_json(), "best_miou": miou(g, 0, EPOCHS)}
        for n, g in enumerate(first)
    ]
    resumed = SEARCHERS.get("surrogate")(_inputs(space, first_number=10, finished=finished))
    assert len(resumed._values) == 10  # the surrogate is fitted on them: no random start-up again
    later = _run(resumed, 10, prefix="r")
    assert not {g.trial_key for g in later} & {g.trial_key for g in first}
    assert len({g.trial_key for g in later}) == 10
    again = SEARCHERS.get("surrogate")(_inputs(space, first_number=10, finished=finished))
    assert [g.trial_key for g in _run(again, 10, prefix="r")] == [g.trial_key for g in later]


def test_a_surrogate_search_ends_when_every_architecture_is_tried() -> None:
    space = parse_space(SPACE_YAML.replace("{choices: [none, fcn16s, fcn8s, unet_concat, unet_add]}", "none"))
    searcher = SEARCHERS.get("surrogate")(_inputs(space))
    proposed = _run(searcher, 16)
    assert len({g.trial_key for g in proposed}) == 16 == space.size()
    assert searcher.suggest("t16") == "FINISHED"


@pytest.mark.slow
def test_zc_starts_tpe_from_the_proxies_best_and_scores_each_architecture_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    space = parse_space(
        SPACE_YAML.replace("{type: {choices: [none, se, spatial, cbam]}, where: decoder}", "{type: none}")
    )
    calls: list[str] = []
    monkeypatch.setattr(_learned, "_PROXY_CACHE", {})
    real = _learned._proxy

    def counted(space_, genotype, name):
        calls.append(genotype.arch_id)
        return real(space_, genotype, name)

    monkeypatch.setattr(_learned, "_proxy", counted)
    start = _learned.zc_start(space, 0, set(), {})
    assert len(start) == _learned.ZC_START
    scored = len(_learned._PROXY_CACHE)
    assert scored == 2 * space.size()  # two proxies for each of the 20 architectures, once
    params = {g.arch_id: _learned._PROXY_CACHE[(g.arch_id, "params", 32, 3, 3, 0)] for g in start}
    searcher = SEARCHERS.get("zc")(_inputs(space))
    first = [Genotype.from_json(searcher.suggest(f"t{i}")["genotype"]) for i in range(_learned.ZC_START)]
    assert [g.arch_id for g in first] == [g.arch_id for g in start]
    assert len(_learned._PROXY_CACHE) == scored  # a second search computes nothing again
    assert all(value > 0 for value in params.values())


@pytest.fixture
def quick_surrogate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two random trials before the surrogate ranks, so a short search reaches its fitted part."""
    monkeypatch.setattr(_learned, "STARTUP", 2)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["surrogate", "zc"])
def test_the_strategy_runs_a_search_from_the_cli(
    ray_local, quick_surrogate, strategy: str, micro_space: Path, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    args = [
        "search",
        "--space",
        str(micro_space),
        "--strategy",
        strategy,
        "--scheduler",
        "fifo",
        "--name",
        "s",
    ]
    sizes = ["--trials", "4", "--epochs", "1", "--image-size", "32", "--train-samples", "32"]
    where = ["--db", db, "--storage-path", str(tmp_path / "runs"), "--concurrency", "1", "--no-cache"]
    result = runner.invoke(app, [*args, *sizes, *where])
    assert result.exit_code == 0, result.output
    assert f"4 trials x 1 epochs, {strategy} + fifo" in " ".join(result.stdout.split())
    board = leaderboard_frame(open_store(db), "s")
    assert sorted(board["status"]) == ["completed"] * 4
    if strategy == "surrogate":
        assert board["arch_id"].nunique() == 4


@pytest.mark.slow
def test_a_resumed_surrogate_search_from_the_cli_duplicates_no_trial(
    ray_local, quick_surrogate, micro_space: Path, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    options = (
        f"--name r --db {db} --trials 3 --epochs 1 --strategy surrogate --scheduler fifo --image-size 32 "
        "--train-samples 32 --batch-size 8 --concurrency 1 --no-cache"
    )
    storage = ["--space", str(micro_space), "--storage-path", str(tmp_path / "runs")]
    assert runner.invoke(app, ["search", *options.split(), *storage]).exit_code == 0
    resumed = runner.invoke(app, ["search", "--name", "r", "--resume", "--db", db, "--trials", "6"])
    assert resumed.exit_code == 0, resumed.output
    board = leaderboard_frame(open_store(db), "r")
    assert sorted(board["number"]) == [0, 1, 2, 3, 4, 5]
    assert set(board["status"]) == {"completed"}
    space = load_space(micro_space)
    assert board["arch_id"].nunique() == 6, board[["number", "arch_id"]]
    assert space.name == "micro"
