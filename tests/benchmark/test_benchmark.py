"""Benchmarks: a real run on a local Ray, resolution of --archs, results and the report."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nasfcn.benchmark import (
    BenchmarkConfig,
    BenchmarkError,
    aggregate_ranks,
    benchmark_results,
    resolve_archs,
    run_benchmark,
    write_report,
)
from nasfcn.cli import app
from nasfcn.references import reference
from nasfcn.search import Execution, execution_options, flat_config
from nasfcn.space import load_space
from nasfcn.store import (
    benchmark_runs_frame,
    create_search,
    finish_trial,
    open_store,
    record_epoch,
    seed_spread_frame,
    upsert_architecture,
    upsert_trial,
)
from nasfcn.train import TrainRecipe


def _config(tmp_path: Path, **overrides) -> BenchmarkConfig:
    options = {
        "name": "bench",
        "archs": ("ref:unet:4", "ref:fcn8s:4"),
        "datasets": ("shapes",),
        "seeds": 2,
        "epochs": 1,
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "image_size": 32,
        "train_samples": 32,
        "val_samples": 16,
        "recipe": TrainRecipe(epochs=1, batch_size=8),
        "concurrency": 2,
        "quiet": True,
    }
    options.update(overrides)
    execution, rest = execution_options(options)
    return BenchmarkConfig(**rest, execution=execution)


@pytest.mark.slow
def test_a_benchmark_trains_every_architecture_and_seed_and_resumes(ray_local, tmp_path) -> None:
    config = _config(tmp_path)
    summary = run_benchmark(config)
    assert summary.counts == {"completed": 4}
    store = open_store(config.execution.db)
    runs = benchmark_runs_frame(store, "bench")
    assert len(runs) == 4
    assert sorted(zip(runs["reference"], runs["seed"], strict=True)) == [
        ("fcn8s", 0),
        ("fcn8s", 1),
        ("unet", 0),
        ("unet", 1),
    ]
    assert set(runs["arch_id"]) == {reference("unet", 4).arch_id, reference("fcn8s", 4).arch_id}
    assert (runs["dataset"] == "shapes").all()
    assert runs["best_miou"].notna().all()
    # the seed changes the training: at least one architecture's two runs differ
    assert any(pair["best_miou"].nunique() == 2 for _, pair in runs.groupby("arch_id"))
    results = summary.results
    assert list(results["label"]) == list(results.sort_values("miou_mean", ascending=False)["label"])
    assert set(results["label"]) == {"unet@4", "fcn8s@4"}
    assert (results["runs"] == 2).all()

    again = run_benchmark(_config(tmp_path, resume=True, archs=()))  # the stored plan; nothing left
    assert again.counts == {"completed": 4}
    assert len(benchmark_runs_frame(store, "bench")) == 4

    report = write_report(store, "bench", tmp_path / "report" / "bench.md")
    text = report.read_text()
    assert "| 1 |" in text
    assert "unet@4 (ref)" in text
    assert "fcn8s@4 (ref)" in text
    assert "nasfcn benchmark --name bench --archs ref:unet:4,ref:fcn8s:4" in text
    assert "torch" in text
    assert (tmp_path / "report" / "bench_results.csv").is_file()
    assert list((tmp_path / "report" / "bench_figures").glob("miou_*.html"))

    spread = seed_spread_frame(store, "shapes")  # what the search leaderboard shows
    assert set(spread["seeds"]) == {2}


def _store_with_search(tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'archs.db'}")
    space = load_space("search_spaces/fcn_tiny.yaml")
    sid = create_search(store, "s", "shapes", config={}, recipe={})
    for number, miou in enumerate([0.5, 0.7, 0.6]):
        genotype = space.sample(number)
        upsert_architecture(store, genotype)
        trial = upsert_trial(store, sid, number, genotype, dataset="shapes", recipe={}, status="running")
        record_epoch(store, trial, 1, {"val_miou": miou, "val_pixel_accuracy": 0.9})
        finish_trial(store, trial, "completed")
    return store, space


def test_architecture_specs_resolve(tmp_path) -> None:
    store, space = _store_with_search(tmp_path)
    top = resolve_archs(("search:s:top2",), store)
    assert [a.genotype for a in top] == [space.sample(1), space.sample(2)]  # by best mIoU
    assert resolve_archs(("search:s",), store)[0].genotype == space.sample(1)
    ref = resolve_archs(("ref:segnet",), store, ref_width=8)[0]
    assert (ref.label, ref.reference, ref.genotype) == ("segnet", "segnet", reference("segnet", 8))
    assert resolve_archs(("ref:unet:6",), store)[0].label == "unet@6"
    file = tmp_path / "mine.json"
    file.write_text(space.sample(5).to_json())
    assert resolve_archs((str(file),), store)[0].label == "mine"
    by_id = resolve_archs((space.sample(0).arch_id,), store)[0]
    assert by_id.genotype.arch_id == space.sample(0).arch_id
    twice = resolve_archs(("search:s:top1", space.sample(1).arch_id, "ref:unet", "ref:unet"), store)
    # top1 carries its searched learning rate, the bare arch_id does not: two runs; unet once
    assert [a.label for a in twice] == [space.sample(1).arch_id, space.sample(1).arch_id, "unet"]
    assert twice[0].genotype.train != twice[1].genotype.train


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("search:nope:top2", "no search named 'nope'"),
        ("search:s:best2", "topK"),
        ("ref:fcn4s", "did you mean"),
        ("missing.json", "file not found"),
        ("0123456789ab", "no architecture with that id"),
        ("resnet50", "not an architecture spec"),
    ],
)
def test_bad_architecture_specs_say_how_to_fix_them(tmp_path, spec: str, message: str) -> None:
    store, _ = _store_with_search(tmp_path)
    with pytest.raises(Exception, match=message):
        resolve_archs((spec,), store)


def _runs(rows: list[tuple[str, str | None, int, float | None, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "trial_id": i,
                "number": i,
                "arch_id": arch,
                "reference": ref,
                "dataset": "shapes",
                "seed": seed,
                "status": status,
                "best_miou": miou,
                "best_pixel_accuracy": None if miou is None else miou + 0.2,
                "params": 1000,
                "flops": 2000,
                "latency_ms": 1.0,
            }
            for i, (arch, ref, seed, miou, status) in enumerate(rows)
        ]
    )


def test_results_rank_test_and_group_hand_made_runs() -> None:
    runs = _runs(
        [
            *[("aaaa", None, s, 0.80 + d, "completed") for s, d in enumerate([0.01, -0.01, 0.0])],
            *[("bbbb", "unet", s, 0.80 + d, "completed") for s, d in enumerate([0.01, -0.01, 0.0])],
            *[("cccc", "fcn8s", s, 0.60 + d, "completed") for s, d in enumerate([0.01, -0.01, 0.002])],
            ("dddd", None, 0, 0.3, "completed"),
            ("dddd", None, 1, None, "failed"),
        ]
    )
    results = benchmark_results(runs, labels={"aaaa": "mine"}).set_index("label")
    assert results.loc["mine", "rank"] == 1
    assert results.loc["mine", "runs"] == 3
    assert results.loc["mine", "miou_mean"] == pytest.approx(0.80)
    assert results.loc["mine", "miou_std"] == pytest.approx(0.01)
    assert results.loc["mine", "miou_ci_low"] < 0.80 < results.loc["mine", "miou_ci_high"]
    assert results.loc["unet", "group"] == results.loc["mine", "group"] == 1  # identical runs: a tie
    assert bool(results.loc["unet", "tied_with_best"])
    assert results.loc["fcn8s", "group"] == 2
    assert results.loc["fcn8s", "p_vs_best"] < 0.05
    assert results.loc["fcn8s", "p_vs_best_reference"] < 0.05  # against unet, the best reference
    assert math.isnan(results.loc["unet", "p_vs_best_reference"])
    assert (results.loc["dddd", "runs"], results.loc["dddd", "failed"]) == (1, 1)
    assert math.isnan(results.loc["dddd", "miou_std"])
    ranks = aggregate_ranks(results.reset_index())
    assert set(ranks["label"][:2]) == {"mine", "unet"}
    assert list(ranks["label"][2:]) == ["fcn8s", "dddd"]


def test_empty_runs_give_an_empty_table() -> None:
    assert benchmark_results(_runs([])).empty


def test_invalid_benchmark_options_are_refused(tmp_path) -> None:
    with pytest.raises(BenchmarkError, match="--seeds"):
        _config(tmp_path, seeds=0)
    with pytest.raises(BenchmarkError, match="twice"):
        _config(tmp_path, datasets=("shapes", "shapes"))
    with pytest.raises(BenchmarkError, match="--archs"):
        _config(tmp_path, archs=())


@pytest.mark.parametrize("name", ["../../escaped_name", "..", ".hidden", "a/b"])
def test_a_name_that_is_no_plain_folder_name_is_refused(tmp_path, name: str) -> None:
    with pytest.raises(BenchmarkError, match=f"--name '{re.escape(name)}' cannot name a run folder"):
        _config(tmp_path, name=name)
    result = CliRunner().invoke(app, ["benchmark", "--name", name, "--archs", "ref:fcn8s"])
    assert result.exit_code == 2
    assert "cannot name a run folder" in result.stderr


def test_the_stored_config_holds_no_credential() -> None:
    execution = Execution(db="postgresql+psycopg://alice@db/nas?sslpassword=Zq7s3cret")
    config = BenchmarkConfig(name="b", archs=("ref:fcn8s",), execution=execution)
    assert config.as_dict()["execution"]["db"] == "postgresql+psycopg://alice@db/nas?sslpassword=***"
    assert "Zq7s3cret" not in json.dumps(config.as_dict())


def test_cli_errors_are_one_line(tmp_path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["benchmark", "--name", "x"])
    assert missing.exit_code == 2
    assert "--archs" in missing.output
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(db)
    report = runner.invoke(app, ["benchmark", "report", "nope", "--db", db, "--out", str(tmp_path / "r.md")])
    assert report.exit_code == 2
    bad = runner.invoke(
        app, ["benchmark", "--name", "x", "--archs", "ref:fcn4s", "--db", db, "--storage-path", str(tmp_path)]
    )
    assert bad.exit_code == 2
    assert "did you mean 'fcn8s'" in bad.output
    assert "Traceback" not in bad.output


def test_one_network_with_two_sets_of_knobs_stays_two_rows() -> None:
    from dataclasses import replace

    from nasfcn.genotype import TrainGene

    base = reference("unet", 4)
    tuned = replace(base, train=TrainGene(lr=0.01))
    runs = _runs([(base.arch_id, None, s, 0.5 + 0.01 * s, "completed") for s in range(4)])
    runs["genotype_json"] = [base.to_json(), base.to_json(), tuned.to_json(), tuned.to_json()]
    runs["seed"] = [0, 1, 0, 1]
    results = benchmark_results(runs)
    assert len(results) == 2
    assert set(results["label"]) == {
        f"{base.arch_id} [{base.trial_key[:6]}]",
        f"{base.arch_id} [{tuned.trial_key[:6]}]",
    }
    assert (results["runs"] == 2).all()


def test_report_figures_show_labels_as_text(tmp_path) -> None:
    from nasfcn.benchmark._report import _figures

    results = benchmark_results(
        _runs([("aaaa", None, s, 0.5 + 0.01 * s, "completed") for s in range(3)]),
        labels={"aaaa": "<b>mine</b>"},
    )
    path = _figures(results, tmp_path)["shapes"]
    text = path.read_text()
    assert "&lt;b&gt;mine" in text  # drawn as the characters <b>, never as bold markup
    assert "<b>mine</b>" not in text


def _stored_benchmark(tmp_path: Path, flat: bool = False) -> BenchmarkConfig:
    """A benchmark recorded as run_benchmark does, its one planned run finished.

    ``flat``: its config as versions before ``Execution`` stored it (execution fields at the top).
    """
    config = _config(tmp_path, archs=("ref:unet:4",), seeds=1)
    genotype = reference("unet", 4)
    recipe = TrainRecipe(epochs=1, batch_size=8, seed=0).to_dict()
    store = open_store(config.execution.db)
    stored = flat_config(config.as_dict()) if flat else config.as_dict()
    plan = [{"label": "unet@4", "genotype": genotype.to_json(), "reference": "unet"}]
    sid = create_search(store, "bench", "shapes", config={**stored, "plan_archs": plan}, kind="benchmark")
    trial = upsert_trial(store, sid, 0, genotype, dataset="shapes", recipe=recipe, status="running")
    record_epoch(store, trial, 1, {"val_miou": 0.5, "train_loss": 1.0})
    finish_trial(store, trial, "completed")
    store.dispose()
    return config


@pytest.mark.parametrize(
    ("typed", "refusal"),
    [
        (["--seeds", "3"], "--seeds 3 differs from the stored 1"),
        (["--image-size", "64"], "--image-size 64 differs from the stored 32"),
        (["--data", "digits"], "--data digits differs from the stored shapes"),
        (["--batch-size", "16"], "--batch-size 16 differs from the stored 8"),
        (["--archs", "ref:fcn8s:4"], "--archs ref:fcn8s:4 differs from the stored ref:unet:4"),
    ],
)
def test_benchmark_resume_refuses_a_typed_setting_that_changes_results(
    tmp_path, store_tracker, typed, refusal
) -> None:
    config = _stored_benchmark(tmp_path)
    result = CliRunner().invoke(
        app, ["benchmark", "--name", "bench", "--resume", "--db", config.execution.db, *typed]
    )
    assert result.exit_code == 2, result.output
    assert refusal in result.stderr
    assert (
        "a resumed benchmark keeps its settings; start a new benchmark with another --name" in result.stderr
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize("flat", [False, True], ids=["stored", "stored-flat-by-an-earlier-version"])
def test_benchmark_resume_keeps_the_plan_and_records_where_to_run(tmp_path, store_tracker, flat) -> None:
    config = _stored_benchmark(tmp_path, flat)
    typed = ["--seeds", "1", "--image-size", "32", "--concurrency", "1"]
    result = CliRunner().invoke(
        app, ["benchmark", "--name", "bench", "--resume", "--db", config.execution.db, *typed]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "1 architectures x 1 datasets x 1 seeds = 1 runs of 1 epochs; 1 finished before, 0 to run" in text
    assert "changed for this and later resumes: --concurrency 1 (stored 2)" in text
    store = open_store(config.execution.db)
    from nasfcn.store import get_search

    saved = get_search(store, "bench")["config"]
    assert (saved["execution"]["concurrency"], saved["image_size"], saved["train_samples"]) == (1, 32, 32)
    assert saved["execution"]["storage_path"] == str(tmp_path / "runs")


@pytest.mark.parametrize(
    ("stored", "flag"),
    [
        ({"scale_range": [1.0, 1.0]}, None),
        ({"scale_range": [0.8, 1.2]}, "--scale-jitter 0.8,1.2"),
        ({}, "--scale-jitter 0.75,1.25"),  # stored before the setting: it trained with the old default
    ],
)
def test_the_reports_command_repeats_the_scale_jitter_the_runs_trained_with(stored, flag) -> None:
    from nasfcn.benchmark._report import _command

    config = {"name": "b", "archs": ["ref:unet"], "datasets": ["shapes"], "seeds": 1, "epochs": 2, **stored}
    command = _command(config)
    assert ("--scale-jitter" in command) == (flag is not None)
    if flag is not None:
        assert command.endswith(flag)
