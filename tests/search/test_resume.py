"""The resume rule: what ``nasfcn search --resume`` and ``run_search(SearchConfig(resume=True))`` keep.

A stored search with finished trials stands in for an interrupted one; a resume that asks
for no more trials ends at "nothing left to run", so these tests need no Ray.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.search import SearchConfig, SearchConfigError, execution_options, flat_config, run_search
from nasfcn.space import load_space
from nasfcn.store import (
    create_search,
    finish_trial,
    get_search,
    open_store,
    record_epoch,
    set_search_status,
    upsert_trial,
)
from nasfcn.train import TrainRecipe


def stored_search(
    tmp_path: Path,
    space: Path,
    finished: int = 1,
    flat: bool = False,
    unrecorded: tuple[str, ...] = (),
    **overrides,
) -> SearchConfig:
    """Record a search as ``run_search`` does, with trials 0 .. finished-1 done; returns its config.

    ``flat``: its config as versions before ``Execution`` stored it (execution fields at the top).
    ``unrecorded``: fields left out of the stored config, as versions before them stored it.
    """
    options = {
        "space": str(space),
        "name": "kept",
        "trials": 1,
        "epochs": 2,
        "strategy": "random",
        "scheduler": "fifo",
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "image_size": 32,
        "train_samples": 32,
        "val_samples": 16,
        "recipe": TrainRecipe(epochs=2, batch_size=8, lr=0.01),
        "concurrency": 2,
        "quiet": True,
    }
    options.update(overrides)
    execution, rest = execution_options(options)
    config = SearchConfig(**rest, execution=execution)
    loaded = load_space(space)
    recipe = replace(config.recipe, epochs=config.epochs, seed=config.seed).to_dict()
    store = open_store(config.execution.db)
    sid = create_search(
        store,
        "kept",
        config.data,
        space_name=loaded.name,
        space_yaml=loaded.text,
        config={
            k: v
            for k, v in (flat_config(config.as_dict()) if flat else config.as_dict()).items()
            if k not in unrecorded
        },
        recipe=recipe,
    )
    for number in range(finished):
        genotype = loaded.sample(number)
        trial = upsert_trial(
            store, sid, number, genotype, dataset=config.data, recipe=recipe, status="running"
        )
        record_epoch(store, trial, 1, {"val_miou": 0.5, "train_loss": 1.0})
        finish_trial(store, trial, "completed")
    set_search_status(store, sid, "interrupted")
    store.dispose()
    return config


def _resume(config: SearchConfig, **fields) -> tuple[str, dict]:
    """Resume as a library caller passing only ``fields``; returns the printed text and the stored search."""
    console = Console(record=True, width=200)
    options = {"space": "", "name": "kept", "db": config.execution.db, "resume": True, **fields}
    execution, rest = execution_options(options)
    run_search(SearchConfig(**rest, execution=execution), console=console)
    store = open_store(config.execution.db)
    stored = get_search(store, "kept")
    store.dispose()
    return console.export_text(), stored


def test_fields_left_at_their_defaults_take_the_stored_values(tmp_path, micro_space, store_tracker) -> None:
    config = stored_search(tmp_path, micro_space)
    output, stored = _resume(config)  # image_size 64, 12 trials, ... are SearchConfig's defaults
    assert "search kept" in output
    assert "1 trials x 2 epochs, random + fifo" in output
    assert "nothing left to run: 1 trials already finished, 1 asked for" in output
    assert stored["status"] == "completed"
    saved = stored["config"]
    assert (saved["image_size"], saved["train_samples"], saved["val_samples"]) == (32, 32, 16)
    execution = saved["execution"]
    assert (saved["trials"], execution["concurrency"], execution["storage_path"]) == (
        1,
        2,
        str(tmp_path / "runs"),
    )
    assert (saved["recipe"]["lr"], saved["recipe"]["batch_size"]) == (0.01, 8)
    assert (tmp_path / "runs" / "space.yaml").read_text() == micro_space.read_text()


def test_a_field_that_differs_from_its_default_counts_as_given(tmp_path, micro_space, store_tracker) -> None:
    config = stored_search(tmp_path, micro_space)
    with pytest.raises(SearchConfigError) as refused:
        _resume(config, image_size=48)
    assert str(refused.value) == (
        "--image-size 48 differs from the stored 32: a resumed search keeps its settings; "
        "start a new search with another --name to change it"
    )
    # a default value counts as given when ``explicit`` names it
    with pytest.raises(SearchConfigError, match="--image-size 64 differs from the stored 32"):
        _resume(config, image_size=64, explicit={"image_size"})
    # the same value as stored is accepted
    output, _ = _resume(config, image_size=32, explicit={"image_size"})
    assert "nothing left to run" in output


def test_every_refused_setting_is_named_at_once_and_nothing_is_written(
    tmp_path, micro_space, store_tracker
) -> None:
    config = stored_search(tmp_path, micro_space)
    before = get_search(open_store(config.execution.db), "kept")
    with pytest.raises(SearchConfigError) as refused:
        _resume(
            config,
            data="digits",
            epochs=5,
            strategy="grid",
            objectives=("miou", "latency_ms"),
            max_params=1e5,
            seed=3,
            latency_input=128,
            references=("unet",),
            recipe=TrainRecipe(optimizer="sgd"),
        )
    message = str(refused.value)
    for part in (
        "--data digits differs from the stored shapes",
        "--epochs 5 differs from the stored 2",
        "--strategy grid differs from the stored random",
        "--objectives miou,latency_ms differs from the stored miou",
        "--max-params 100000 differs from the stored none",
        "--seed 3 differs from the stored 0",
        "--latency-input 128 differs from the stored none",
        "--references unet differs from the stored none",
        "recipe.optimizer sgd differs from the stored adamw",
    ):
        assert part in message
    assert "\n" not in message
    assert get_search(open_store(config.execution.db), "kept") == before  # status and config untouched
    assert not (tmp_path / "runs").exists()


def test_adjustable_settings_are_recorded_for_the_next_resume(tmp_path, micro_space, store_tracker) -> None:
    config = stored_search(tmp_path, micro_space)
    output, stored = _resume(config, concurrency=1, time_budget_min=5.0, cpus_per_trial=2.0)
    assert (
        "changed for this and later resumes: --time-budget 5 (stored none), --concurrency 1 (stored 2), "
        "--cpus-per-trial 2 (stored 1)"
    ) in output
    assert (stored["config"]["execution"]["concurrency"], stored["config"]["time_budget_min"]) == (1, 5.0)
    assert stored["config"]["execution"]["cpus_per_trial"] == 2.0
    _, again = _resume(config)  # a resume without them continues with the recorded values
    assert (again["config"]["execution"]["concurrency"], again["config"]["time_budget_min"]) == (1, 5.0)


def test_a_longer_budget_on_resume_keeps_the_final_share(tmp_path, micro_space, store_tracker) -> None:
    """--final-share's default depends on the budget's length (on from 15 minutes): a resume
    given a longer budget continues the search it was, with its final runs off."""
    config = stored_search(tmp_path, micro_space, time_budget_min=5.0)
    output, stored = _resume(config, time_budget_min=30.0)
    assert "--time-budget 30 (stored 5)" in output
    assert stored["config"]["final_share"] == 0.0
    assert "final runs" not in output


def test_a_search_stored_flat_by_an_earlier_version_resumes_with_its_settings(
    tmp_path, micro_space, store_tracker
) -> None:
    """Searches recorded before ``Execution`` hold its fields at the top level of their config."""
    config = stored_search(tmp_path, micro_space, flat=True)
    saved = get_search(open_store(config.execution.db), "kept")["config"]
    assert "execution" not in saved  # the old shape
    assert saved["concurrency"] == 2
    output, stored = _resume(config, cpus_per_trial=2.0)
    assert "changed for this and later resumes: --cpus-per-trial 2 (stored 1)" in output
    assert "nothing left to run" in output
    execution = stored["config"]["execution"]  # recorded again in the new shape
    assert (execution["concurrency"], execution["cpus_per_trial"]) == (2, 2.0)
    assert execution["storage_path"] == str(tmp_path / "runs")
    assert (tmp_path / "runs" / "space.yaml").is_file()  # the stored storage path, not runs/kept


def test_a_search_stored_before_scale_jitter_was_a_setting_resumes_with_the_jitter_it_had(
    tmp_path, micro_space, store_tracker
) -> None:
    """Until --scale-jitter existed every search trained with 0.75-1.25; its default is now off."""
    config = stored_search(tmp_path, micro_space, unrecorded=("scale_range",))
    saved = get_search(open_store(config.execution.db), "kept")["config"]
    assert "scale_range" not in saved
    refused = CliRunner().invoke(
        app, ["search", "--name", "kept", "--resume", "--db", config.execution.db, "--scale-jitter", "off"]
    )
    assert refused.exit_code == 2, refused.output
    assert "--scale-jitter 1,1 differs from the stored 0.75,1.25" in " ".join(refused.stderr.split())
    output, stored = _resume(config)
    assert "nothing left to run" in output
    assert stored["config"]["scale_range"] == [0.75, 1.25]  # recorded now, for every later resume


def test_scale_jitter_is_kept_on_resume_like_every_setting_that_changes_results(
    tmp_path, micro_space, store_tracker
) -> None:
    config = stored_search(tmp_path, micro_space, scale_range=(0.8, 1.2))
    refused = CliRunner().invoke(
        app,
        ["search", "--name", "kept", "--resume", "--db", config.execution.db, "--scale-jitter", "0.9,1.1"],
    )
    assert refused.exit_code == 2, refused.output
    assert "--scale-jitter 0.9,1.1 differs from the stored 0.8,1.2" in " ".join(refused.stderr.split())
    _, stored = _resume(config)
    assert stored["config"]["scale_range"] == [0.8, 1.2]


def test_a_different_space_file_is_refused_the_same_one_accepted(
    tmp_path, micro_space, store_tracker
) -> None:
    config = stored_search(tmp_path, micro_space)
    same = tmp_path / "same.yaml"
    same.write_text("# the same space, written differently\n" + micro_space.read_text())
    output, _ = _resume(config, space=str(same))
    assert "nothing left to run" in output
    other = tmp_path / "other.yaml"
    other.write_text(micro_space.read_text().replace("[2, 3]", "[2, 3, 4]"))
    with pytest.raises(SearchConfigError, match=f"--space {other} differs from the stored space micro"):
        _resume(config, space=str(other))


def test_an_unknown_explicit_field_is_refused() -> None:
    with pytest.raises(SearchConfigError, match="explicit names unknown fields image_sise"):
        SearchConfig(space="x.yaml", explicit={"image_sise"})
    assert "explicit" not in SearchConfig(space="x.yaml", explicit={"trials"}).as_dict()


runner = CliRunner()


@pytest.mark.parametrize(
    ("typed", "refusal"),
    [
        (["--image-size", "64"], "--image-size 64 differs from the stored 32"),
        (["--train-samples", "512"], "--train-samples 512 differs from the stored 32"),
        (["--epochs", "3"], "--epochs 3 differs from the stored 2"),
        (["--data", "digits"], "--data digits differs from the stored shapes"),
        (["--lr", "0.003"], "--lr 0.003 differs from the stored 0.01"),
        (["--batch-size", "16"], "--batch-size 16 differs from the stored 8"),
        (["--no-amp"], "--amp off differs from the stored on"),
        (["--strategy", "tpe"], "--strategy tpe differs from the stored random"),
        (["--scheduler", "asha"], "--scheduler asha differs from the stored fifo"),
        (["--grace-period", "1"], "--grace-period 1 differs from the stored none"),
        (["--reduction-factor", "3"], "--reduction-factor 3 differs from the stored 2"),
        (["--seed", "0", "--seed", "1"], "--seed 1 differs from the stored 0"),
        (["--objectives", "miou,latency_ms"], "--objectives miou,latency_ms differs from the stored miou"),
        (["--max-latency-ms", "5"], "--max-latency-ms 5 differs from the stored none"),
        (["--references", "unet"], "--references unet differs from the stored none"),
        (
            ["--space", "search_spaces/fcn_tiny.yaml"],
            "--space search_spaces/fcn_tiny.yaml differs from the stored",
        ),
    ],
)
def test_cli_resume_refuses_a_typed_setting_that_changes_results(
    tmp_path, micro_space, store_tracker, typed, refusal
) -> None:
    config = stored_search(tmp_path, micro_space)
    before = get_search(open_store(config.execution.db), "kept")
    result = runner.invoke(
        app, ["search", "--name", "kept", "--resume", "--db", config.execution.db, "--trials", "1", *typed]
    )
    assert result.exit_code == 2, result.output
    assert refusal in result.stderr
    assert "a resumed search keeps its settings; start a new search with another --name" in result.stderr
    assert "Traceback" not in result.output
    assert get_search(open_store(config.execution.db), "kept") == before


def test_cli_resume_accepts_typed_settings_equal_to_the_stored_ones(
    tmp_path, micro_space, store_tracker
) -> None:
    config = stored_search(tmp_path, micro_space)
    typed = [
        "--image-size",
        "32",
        "--lr",
        "0.01",
        "--strategy",
        "random",
        "--data",
        "shapes",
        "--epochs",
        "2",
    ]
    result = runner.invoke(
        app, ["search", "--name", "kept", "--resume", "--db", config.execution.db, "--trials", "1", *typed]
    )
    assert result.exit_code == 0, result.output
    assert "nothing left to run" in result.stdout


def test_cli_resume_with_fewer_trials_than_finished_says_nothing_is_left(
    tmp_path, micro_space, store_tracker
) -> None:
    config = stored_search(tmp_path, micro_space, finished=3, trials=3)
    result = runner.invoke(
        app, ["search", "--name", "kept", "--resume", "--db", config.execution.db, "--trials", "2"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "nothing left to run: 3 trials already finished, 2 asked for (--trials 2)" in text
    assert "a larger --trials extends the search" in text
    assert "--trials 2 (stored 3)" in text
    assert get_search(open_store(config.execution.db), "kept")["status"] == "completed"
