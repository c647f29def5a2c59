"""Searches on a real local Ray, writing to a real SQLite database (no mocks)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from nasfcn.search import (
    Execution,
    SearchConfig,
    SearchConfigError,
    execution_options,
    run_search,
    with_execution,
)
from nasfcn.search._trainable import measured_alike
from nasfcn.space import load_space
from nasfcn.store import (
    counts,
    epochs_frame,
    get_search,
    leaderboard_frame,
    open_store,
    recipe_key,
    trial_record,
)
from nasfcn.train import TrainRecipe

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, space: Path, **overrides) -> SearchConfig:
    options = {
        "space": str(space),
        "data": "shapes",
        "name": "s",
        "trials": 4,
        "epochs": 2,
        "strategy": "random",
        "scheduler": "fifo",
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "image_size": 32,
        "train_samples": 32,
        "val_samples": 16,
        "recipe": TrainRecipe(epochs=2, batch_size=8),
        "concurrency": 2,
        "quiet": True,
    }
    options.update(overrides)
    execution, rest = execution_options(options)
    return SearchConfig(**rest, execution=execution)


@pytest.mark.parametrize("strategy", ["random", "tpe", "grid"])
def test_each_strategy_records_every_trial_and_epoch(ray_local, tmp_path, micro_space, strategy) -> None:
    summary = run_search(_config(tmp_path, micro_space, strategy=strategy, name=strategy))
    assert summary.counts == {"completed": 4}
    store = open_store(f"sqlite:///{tmp_path / 'nasfcn.db'}")
    board = leaderboard_frame(store, strategy)
    assert sorted(board["number"]) == [0, 1, 2, 3]
    assert board["params"].notna().all()
    assert board["latency_ms"].gt(0).all()
    assert board["checkpoint"].notna().all()
    assert all(Path(p, "best.safetensors").exists() for p in board["checkpoint"])
    epochs = epochs_frame(store, strategy)
    assert len(epochs) == 8
    assert summary.best_miou == pytest.approx(board["best_miou"].max())
    if strategy == "grid":  # grid walks the space in its fixed order
        space = load_space(micro_space)
        expected = [g.arch_id for g in list(space.iter_genotypes(include_train=False))[:4]]
        assert list(board.sort_values("number")["arch_id"]) == expected


def test_nsga2_multi_objective(ray_local, tmp_path, micro_space) -> None:
    summary = run_search(
        _config(tmp_path, micro_space, strategy="nsga2", objectives=("miou", "latency_ms"), name="nsga")
    )
    assert summary.counts == {"completed": 4}


def test_asha_stops_some_trials_early(ray_local, tmp_path, micro_space) -> None:
    config = _config(
        tmp_path,
        micro_space,
        name="asha",
        scheduler="asha",
        trials=8,
        epochs=4,
        grace_period=2,  # the one rung below 4 epochs is at 2
        recipe=TrainRecipe(epochs=4, batch_size=8),
    )
    summary = run_search(config)
    assert summary.counts.get("stopped_early", 0) >= 1
    assert sum(summary.counts.values()) == 8
    store = open_store(config.execution.db)
    board = leaderboard_frame(store, "asha")
    stopped = board[board["status"] == "stopped_early"]
    assert (stopped["epochs_trained"] == 2).all()
    assert (board[board["status"] == "completed"]["epochs_trained"] == 4).all()
    # a resume hands the new scheduler the rungs the finished trials filled
    resumed = run_search(with_execution(replace(config, trials=10), resume=True))
    assert sum(resumed.counts.values()) == 10
    log_text = (config.execution.run_folder("asha") / "search.log").read_text()
    assert "ASHA's rungs refilled from the epochs of 8 finished trials" in log_text
    board = leaderboard_frame(store, "asha")
    assert set(board[board["status"] == "stopped_early"]["epochs_trained"]) == {2}


def test_failures_are_recorded_and_the_search_goes_on(
    ray_local, tmp_path, micro_space, trial_failures
) -> None:
    space = load_space(micro_space)
    genotypes = list(space.iter_genotypes(include_train=False))
    crash, diverge = genotypes[0].arch_id, genotypes[1].arch_id
    config = _config(tmp_path, micro_space, strategy="grid", name="failing")
    trial_failures({crash: "raise", diverge: "diverge"})
    summary = run_search(config)
    assert summary.counts == {"failed": 2, "completed": 2}
    board = leaderboard_frame(open_store(config.execution.db), "failing").set_index("arch_id")
    assert "injected failure" in board.loc[crash, "error"]
    assert "TrainingDiverged" in board.loc[diverge, "error"]
    assert "lower the learning rate" in board.loc[diverge, "error"]


def test_constraints_reject_without_training_and_cache_reuses(ray_local, tmp_path, micro_space) -> None:
    first = _config(tmp_path, micro_space, strategy="grid", name="first")
    run_search(first)
    store = open_store(first.execution.db)
    trained = leaderboard_frame(store, "first")
    limit = float(trained["params"].median())
    # The same four architectures again, with a parameter budget: over-budget ones are
    # rejected untrained, the rest reuse the first search's results.
    second = _config(tmp_path, micro_space, strategy="grid", name="second", max_params=limit)
    summary = run_search(second)
    board = leaderboard_frame(store, "second").set_index("arch_id")
    before = trained.set_index("arch_id")
    for arch_id, row in board.iterrows():
        if before.loc[arch_id, "params"] > limit:
            assert row["status"] == "rejected_by_constraint"
            assert "exceeds --max-params" in row["error"]
            assert row["epochs_trained"] == 0
        else:
            assert row["status"] == "cached"
            assert row["best_miou"] == pytest.approx(before.loc[arch_id, "best_miou"])
            assert row["cached_from"] == before.loc[arch_id, "trial_id"]
    assert summary.counts.get("cached", 0) >= 1
    assert summary.counts.get("rejected_by_constraint", 0) >= 1
    third = _config(tmp_path, micro_space, strategy="grid", name="third", cache=False)
    assert run_search(third).counts == {"completed": 4}
    assert counts(store)["epochs"] == 8 + 8  # cached and rejected trials trained nothing


def test_each_search_keeps_the_cost_it_measured(ray_local, tmp_path, micro_space) -> None:
    # The same two networks costed at 32x32, then reused by searches costing at 64x64 and at
    # 32x32 again: a cached trial measures its own cost at another input size, and takes the
    # reused trial's at the same one; no search's figures overwrite another's.
    small = _config(tmp_path, micro_space, strategy="grid", name="small", trials=2)
    run_search(small)
    large = run_search(replace(small, name="large", latency_input=64))
    again = run_search(replace(small, name="again"))
    assert large.counts == again.counts == {"cached": 2}
    store = open_store(small.execution.db)
    boards = {
        name: leaderboard_frame(store, name).set_index("arch_id") for name in ("small", "large", "again")
    }
    for arch_id, row in boards["small"].iterrows():
        bigger = boards["large"].loc[arch_id]
        assert trial_record(store, int(row["trial_id"]))["cost_input"] == "1x3x32x32"
        assert trial_record(store, int(bigger["trial_id"]))["cost_input"] == "1x3x64x64"
        assert bigger["params"] == row["params"]
        assert bigger["flops"] == 4 * row["flops"]  # four times the pixels
        reused = boards["again"].loc[arch_id]
        assert trial_record(store, int(reused["trial_id"]))["cost_input"] == "1x3x32x32"
        for column in ("flops", "latency_ms", "peak_memory_mb"):
            assert reused[column] == row[column]


def test_a_result_is_reused_only_on_the_same_data(ray_local, tmp_path, micro_space) -> None:
    # The same two networks with the same recipe on 64-px images, then on 32-px images, then
    # on fewer train images: each trains anew; only a search on the very same data reuses.
    large = _config(tmp_path, micro_space, strategy="grid", name="px64", trials=2, epochs=1, image_size=64)
    assert run_search(large).counts == {"completed": 2}
    small = replace(large, name="px32", image_size=32)
    assert run_search(small).counts == {"completed": 2}
    assert run_search(replace(small, name="px32-again")).counts == {"cached": 2}
    assert run_search(replace(small, name="fewer", train_samples=16)).counts == {"completed": 2}
    store = open_store(large.execution.db)
    trained = set(leaderboard_frame(store, "px32")["trial_id"])
    assert set(leaderboard_frame(store, "px32-again")["cached_from"]) == trained


def test_a_search_stored_by_an_older_version_resumes_without_training_again(
    ray_local, tmp_path, two_archs
) -> None:
    # Its trials hold the recipe-only key of versions before the data config counted. Random
    # draws from two networks repeat them: the resume reuses its own trials, trains none again.
    options = {"name": "old", "epochs": 1, "recipe": TrainRecipe(epochs=1, batch_size=8), "concurrency": 1}
    first = _config(tmp_path, two_archs, trials=2, **options)
    run_search(first)
    store = open_store(first.execution.db)
    legacy = recipe_key(get_search(store, "old")["recipe"])
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE trials SET recipe_key = :key"), {"key": legacy})
    before = leaderboard_frame(store, "old")
    trained = before[before["status"] == "completed"].set_index("arch_id")["trial_id"]
    epochs = len(epochs_frame(store, "old"))

    resumed = run_search(_config(tmp_path, two_archs, trials=6, resume=True, **options))
    assert sum(resumed.counts.values()) == 6
    board = leaderboard_frame(store, "old").set_index("number")
    again = board.loc[[n for n in board.index if n >= 2 and board.loc[n, "arch_id"] in trained.index]]
    assert len(again) > 0  # the seed's draws repeat a network of the first run
    assert set(again["status"]) == {"cached"}
    assert list(again["cached_from"]) == [trained[arch] for arch in again["arch_id"]]
    new = board.loc[[n for n in board.index if n >= 2 and board.loc[n, "arch_id"] not in trained.index]]
    assert len(epochs_frame(store, "old")) == epochs + (new["status"] == "completed").sum()
    kept = before.set_index("number").loc[[0, 1], "trial_id"]
    assert board.loc[[0, 1], "trial_id"].tolist() == kept.tolist()


@pytest.mark.parametrize(
    ("where", "alike"),
    [
        ({"input_shape": [1, 3, 32, 32], "device": "cpu"}, True),
        ({"input_shape": [1, 3, 64, 64], "device": "cpu"}, False),
        ({"input_shape": [1, 3, 32, 32], "device": "cuda:0 (NVIDIA H100 80GB HBM3)"}, False),
        ({"input_shape": [8, 3, 32, 32], "device": "cpu"}, False),
        (None, False),  # the reused trial measured nothing
    ],
)
def test_a_reused_cost_stands_only_at_the_same_input_and_device(where, alike) -> None:
    assert measured_alike(where, 32, "cpu") is alike


def test_asha_grace_period_defaults_to_a_quarter_of_the_epochs() -> None:
    assert SearchConfig(space="x.yaml", epochs=12).asha_grace_period == 3
    assert SearchConfig(space="x.yaml", epochs=3).asha_grace_period == 1
    assert SearchConfig(space="x.yaml", epochs=12, grace_period=1).asha_grace_period == 1
    assert SearchConfig(space="x.yaml", epochs=2, grace_period=5).asha_grace_period == 2


def test_invalid_options_are_refused() -> None:
    with pytest.raises(SearchConfigError, match="nsga2 is multi-objective"):
        SearchConfig(space="x.yaml", strategy="nsga2")
    with pytest.raises(SearchConfigError, match="--strategy must be one of"):
        SearchConfig(space="x.yaml", strategy="bayes")
    with pytest.raises(SearchConfigError, match="unknown objective 'speed'"):
        SearchConfig(space="x.yaml", objectives=("miou", "speed"))
    with pytest.raises(SearchConfigError, match="--grace-period must be >= 1 epoch, got 0"):
        SearchConfig(space="x.yaml", grace_period=0)
    with pytest.raises(SearchConfigError, match="--reduction-factor must be >= 2, got 1"):
        SearchConfig(space="x.yaml", reduction_factor=1)


def test_epoch_rows_carry_the_reported_metrics(ray_local, tmp_path, micro_space) -> None:
    config = _config(tmp_path, micro_space, trials=2, name="metrics", storage_path=f"file://{tmp_path}/store")
    run_search(config)
    store = open_store(config.execution.db)
    epochs = epochs_frame(store, "metrics")
    assert isinstance(epochs, pd.DataFrame)
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT best_metrics_json FROM trials")).scalars().all()
    for metrics in map(json.loads, stored):  # what the trial reported, not Tune's bookkeeping
        assert {"val_miou", "train_loss", "epoch", "params", "latency_ms"} <= set(metrics)
        assert not {"config", "done", "trial_id", "training_iteration", "cost"} & set(metrics)
    assert epochs["val_miou"].between(0, 1).all()
    assert epochs["train_loss"].gt(0).all()
    assert epochs["images_per_s"].gt(0).all()
    board = leaderboard_frame(store, "metrics")
    assert list(board["train_device"]) == ["cpu", "cpu"]  # where Ray placed each trial
    assert board["peak_train_memory_mb"].isna().all()  # a CUDA allocator figure only
    for checkpoint in board["checkpoint"]:  # a file:// storage path is a local folder
        assert Path(checkpoint).is_relative_to(tmp_path / "store")
        assert (Path(checkpoint) / "best.safetensors").is_file()


@pytest.mark.gpu
def test_fractional_gpus_pack_trials_on_one_gpu(ray_local, tmp_path, micro_space) -> None:
    config = _config(tmp_path, micro_space, trials=4, gpus_per_trial=0.25, cpus_per_trial=0.5, concurrency=4)
    summary = run_search(config)
    assert summary.counts == {"completed": 4}
    board = leaderboard_frame(open_store(config.execution.db), "s")
    assert all(device.startswith("cuda:0") for device in board["train_device"])
    assert (board["peak_train_memory_mb"] > 0).all()
    with open_store(config.execution.db).engine.connect() as connection:
        spans = connection.execute(text("SELECT started_at, finished_at FROM trials")).all()
    spans = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in spans]
    overlapping = max(sum(a <= t < b for a, b in spans) for t, _ in spans)
    assert overlapping >= 2, f"trials ran one at a time on the GPU: {spans}"


def test_storage_locations_local_and_remote(tmp_path) -> None:
    import pyarrow.fs
    from ray import tune

    from nasfcn.search._recorder import checkpoint_location

    local = Execution(storage_path=f"file://{tmp_path}/store")
    assert not local.remote_storage
    assert local.run_folder("n") == tmp_path / "store"
    assert local.checkpoint_storage("n") == str(tmp_path / "store")
    bucket = Execution(storage_path="s3://team-bucket/nasfcn/")
    assert bucket.remote_storage
    assert bucket.checkpoint_storage("n") == "s3://team-bucket/nasfcn/n"
    assert bucket.run_folder("n") == (Path("runs") / "n").resolve()  # the log stays local

    s3 = pyarrow.fs.S3FileSystem(anonymous=True, region="us-east-1")
    remote = tune.Checkpoint("team-bucket/nasfcn/n/trial/checkpoint_000001", filesystem=s3)
    assert checkpoint_location(remote) == "s3://team-bucket/nasfcn/n/trial/checkpoint_000001"
    on_disk = tune.Checkpoint(str(tmp_path))
    assert checkpoint_location(on_disk) == str(tmp_path)


def test_references_run_first_and_are_marked(ray_local, tmp_path, micro_space) -> None:
    config = _config(tmp_path, micro_space, trials=2, name="refs", references=("fcn8s", "unet", "segnet"))
    summary = run_search(config)
    assert sum(summary.counts.values()) == 5  # the references come on top of --trials
    board = leaderboard_frame(open_store(config.execution.db), "refs").sort_values("number")
    assert list(board["reference"].iloc[:3]) == ["fcn8s", "unet", "segnet"]
    assert board["reference"].iloc[3:].isna().all()
    from nasfcn.references import reference

    width = 4  # the micro space's median width
    assert list(board["arch_id"].iloc[:3]) == [
        reference(n, width).arch_id for n in ("fcn8s", "unet", "segnet")
    ]
    assert (board["status"] == "completed").all()
    # a resume keeps the stored references and does not re-run the finished ones
    again = run_search(with_execution(replace(config, trials=3, references=()), resume=True))
    assert sum(again.counts.values()) == 6
    board = leaderboard_frame(open_store(config.execution.db), "refs")
    assert len(board) == 6
    assert board["reference"].notna().sum() == 3


def test_a_reference_the_space_can_draw_is_told_to_the_optimizer() -> None:
    from nasfcn.references import reference
    from nasfcn.space import parse_space

    space = parse_space(
        """
name: with_unet
input: {channels: 3, min_size: 16}
encoder:
  stages: {choices: [3, 4]}
  width: 4
  blocks_per_stage: {choices: [1, 2]}
  downsample: maxpool
skip: {choices: [none, unet_concat]}
upsample: {choices: [bilinear, transposed]}
train:
  lr: {log_uniform: [1.0e-3, 2.0e-2]}
"""
    )
    searcher = _searcher(space, "tpe", seed=0, first_number=0, train_defaults={"lr": 3e-3})
    searcher.add_references({"unet": reference("unet", 4), "fcn8s": reference("fcn8s", 4)})
    first, second = searcher.suggest("t0"), searcher.suggest("t1")
    assert (first["reference"], second["reference"], first["number"], second["number"]) == (
        "unet",
        "fcn8s",
        0,
        1,
    )
    searcher.on_trial_result("t0", {"val_miou": 0.3})  # Optuna never saw these trials: no error
    searcher.on_trial_complete("t0", {"val_miou": 0.5})
    searcher.on_trial_complete("t1", {"val_miou": 0.4})  # fcn8s is outside this space
    told = searcher._ot_study.trials
    assert len(told) == 1
    assert told[0].params == {
        "encoder/stages": 4,
        "encoder/blocks_per_stage": 2,
        "skip": "unet_concat",
        "upsample": "transposed",
        "train/lr": 3e-3,
    }
    assert told[0].value == 0.5
    third = searcher.suggest("t2")  # then the optimizer's own suggestions
    assert "reference" not in third
    assert third["number"] == 2


def _searcher(space, strategy: str, seed: int, first_number: int, train_defaults=None):
    """The strategy's searcher as the driver builds it (through its registration)."""
    from nasfcn.search import SEARCHERS, SearcherInputs

    inputs = SearcherInputs(
        space=space,
        metrics=["val_miou"],
        modes=["max"],
        seed=seed,
        first_number=first_number,
        finished=[],
        replays=[],
        cache=None,
        train_defaults=train_defaults or {},
    )
    return SEARCHERS.get(strategy)(inputs)


@pytest.mark.parametrize("strategy", ["random", "tpe", "nsga2"])
def test_a_resumed_optimizer_does_not_draw_its_first_configurations_again(strategy) -> None:
    from nasfcn.space import parse_space

    space = parse_space(
        """
name: lr_only
input: {channels: 3, min_size: 16}
encoder: {stages: 3, width: 4, downsample: maxpool}
skip: none
upsample: {choices: [bilinear, transposed]}
train:
  lr: {log_uniform: [1.0e-3, 2.0e-2]}
"""
    )

    def draws(first_number: int) -> list[str]:
        searcher = _searcher(space, strategy, seed=7, first_number=first_number)
        return [searcher.suggest(f"t{i}")["params"] for i in range(4)]

    fresh = draws(0)
    resumed = draws(4)  # as after an interruption with trials 0-3 finished
    assert not set(fresh) & set(resumed)  # the same stream again would repeat all four
    assert draws(4) == resumed  # and a resume is as reproducible as a fresh search
    assert draws(0) == fresh


@pytest.mark.parametrize("strategy", ["random", "grid"])
def test_a_resume_keeps_the_stored_settings_and_runs_interrupted_trials_again(
    ray_local, tmp_path, micro_space, strategy
) -> None:
    from typer.testing import CliRunner

    from nasfcn.cli import app

    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    options = (
        f"--name r --db {db} --trials 3 --epochs 1 --strategy {strategy} --scheduler fifo --image-size 32 "
        "--train-samples 32 --batch-size 8 --lr 0.01 --concurrency 1 --no-cache"  # --no-cache: all train here
    )
    storage = ["--space", str(micro_space), "--storage-path", str(tmp_path / "runs")]
    first = ["search", *options.split(), *storage]
    runner = CliRunner()
    assert runner.invoke(app, first).exit_code == 0
    store = open_store(db)
    before = leaderboard_frame(store, "r").set_index("number")
    with store.engine.begin() as connection:  # trial 2 as a Ctrl-C leaves it: partial and interrupted
        connection.execute(
            text("UPDATE trials SET status = 'interrupted', best_miou = 0.99 WHERE number = 2")
        )
        connection.execute(text("UPDATE searches SET status = 'interrupted'"))

    resumed = runner.invoke(app, ["search", "--name", "r", "--resume", "--db", db, "--trials", "4"])
    assert resumed.exit_code == 0, resumed.output
    output = " ".join(resumed.stdout.split())
    assert "4 trials x 1 epochs" in output
    assert "resuming: 2 finished trials kept; 1 interrupted trials (number 2) run again first" in output
    assert "changed for this and later resumes: --trials 4 (stored 3)" in output
    board = leaderboard_frame(store, "r").set_index("number")
    assert sorted(board.index) == [0, 1, 2, 3]
    assert set(board["status"]) == {"completed"}
    assert board.loc[2, "trial_id"] == before.loc[2, "trial_id"]  # the same row, run again
    assert board.loc[2, "arch_id"] == before.loc[2, "arch_id"]
    assert board.loc[2, "best_miou"] != 0.99  # the interrupted run's figures are gone
    assert len(epochs_frame(store, "r").query("number == 2")) == 1
    with store.engine.connect() as connection:
        recipes = connection.execute(text("SELECT DISTINCT recipe_key FROM trials")).scalars().all()
        inputs = (
            connection.execute(  # each trial's own cost, measured at the stored image size
                text("SELECT c.input FROM trials t LEFT JOIN trial_costs c ON c.trial_id = t.id")
            )
            .scalars()
            .all()
        )
        saved = json.loads(connection.execute(text("SELECT config_json FROM searches")).scalar_one())
    assert len(recipes) == 1  # every trial trained with the stored recipe
    assert inputs == ["1x3x32x32"] * len(board)
    assert (saved["trials"], saved["image_size"], saved["train_samples"], saved["recipe"]["lr"]) == (
        4,
        32,
        32,
        0.01,
    )
    if strategy == "grid":
        space = load_space(micro_space)
        expected = [g.arch_id for g in list(space.iter_genotypes(include_train=False))[:4]]
        assert [board.loc[n, "arch_id"] for n in range(4)] == expected

    again = runner.invoke(app, ["search", "--name", "r", "--resume", "--db", db])
    assert again.exit_code == 0, again.output
    assert "nothing left to run: 4 trials already finished, 4 asked for" in " ".join(again.stdout.split())


def test_trials_select_on_val_only_and_export_reports_the_test_split(held_out_search, tmp_path) -> None:
    from nasfcn.export import export_trial

    search = held_out_search  # two trials and their best one's confirmation runs (tests/search/conftest.py)
    store = open_store(search.copy(tmp_path))
    board = leaderboard_frame(store, search.name)
    assert len(board) == 4
    assert set(board["status"]) == {"completed"}
    for folder in board["checkpoint"]:  # the epoch each trial was selected on, as the worker scored it
        selected = json.loads((Path(folder) / "best.json").read_text())["epoch"]
        assert selected["val_num_pixels"] == search.val_images * search.side**2  # val images, nothing else
        assert selected["val_per_class_accuracy"][2] is None  # no test-marker pixel in the ground truth

    result = export_trial(store, tmp_path / "bundle", search=search.name)

    test = result.metrics["test"]
    assert test["images"] == search.test_images
    assert test["dataset"] == f"folder:{search.data}"
    assert test["per_class_iou"]["test_marker"] is not None  # the marker is there, in test only
