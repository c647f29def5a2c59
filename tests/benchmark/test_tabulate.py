"""Tables (``nasfcn tabulate``): every architecture of a space x seeds, built, killed, resumed, refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nasfcn.benchmark import (
    TABLE_LIMIT,
    BenchmarkConfig,
    BenchmarkError,
    TableSource,
    resolve_archs,
    sample_genotypes,
    tabulate,
)
from nasfcn.benchmark._archs import parse_space_spec
from nasfcn.cli import app
from nasfcn.search import execution_options
from nasfcn.space import load_space, parse_space
from nasfcn.store import (
    FINISHED_STATUSES,
    benchmark_runs_frame,
    create_search,
    epochs_frame,
    get_search,
    open_store,
)
from nasfcn.table import export_table, load
from nasfcn.train import TrainRecipe

#: 2 kernel sizes x 2 skip paths x 2 upsampling types: 8 architectures, fixed training knobs.
EIGHT = """
name: eight
input: {channels: 3, min_size: 16}
encoder:
  stages: 2
  width: 4
  kernel_size: {choices: [3, 5]}
skip: {choices: [none, unet_add]}
upsample: {choices: [bilinear, transposed]}
"""
#: Two architectures (kernel size 3 or 5).
TWO = """
name: two
input: {channels: 3, min_size: 16}
encoder:
  stages: 2
  width: 4
  kernel_size: {choices: [3, 5]}
"""
#: EIGHT with a searched learning rate: its architectures cannot be listed.
CONTINUOUS = EIGHT.replace("name: eight", "name: floaty") + "train:\n  lr: {log_uniform: [1.0e-3, 1.0e-2]}\n"
#: 4 kernel sizes per stage over 5 stages x 2 widths x 2 skips x 2 upsamplings: too many to train.
LARGE = """
name: large
input: {channels: 3, min_size: 32}
encoder:
  stages: 5
  width: {choices: [4, 6]}
  kernel_size: {choices: [1, 3, 5, 7], per_stage: true}
skip: {choices: [none, unet_add]}
upsample: {choices: [bilinear, transposed]}
"""


def _said(result) -> str:
    """What a command wrote on stderr, as one line (the console wraps long lines)."""
    return " ".join(result.stderr.split())


def _space(tmp_path: Path, text: str = EIGHT) -> Path:
    path = tmp_path / f"{yaml.safe_load(text)['name']}.yaml"
    path.write_text(text)
    return path


def _config(tmp_path: Path, **overrides) -> BenchmarkConfig:
    options = {
        "name": "table",
        "archs": (),
        "datasets": ("shapes",),
        "seeds": 2,
        "epochs": 2,
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "image_size": 16,
        "train_samples": 16,
        "val_samples": 8,
        "recipe": TrainRecipe(epochs=2, batch_size=8),
        "concurrency": 2,
        "quiet": True,
        "kind": "table",
    }
    options.update(overrides)
    execution, rest = execution_options(options)
    return BenchmarkConfig(**rest, execution=execution)


@pytest.mark.slow
def test_a_table_trains_every_architecture_and_seed_and_stores_every_epoch(
    ray_local, tmp_path, store_tracker
) -> None:
    space_path = _space(tmp_path)
    config = _config(tmp_path)
    summary = tabulate(TableSource(str(space_path)), config)
    assert summary.counts == {"completed": 16}
    store = open_store(config.execution.db)
    runs = benchmark_runs_frame(store, "table")
    listed = {g.arch_id for g in load_space(space_path).iter_genotypes()}
    assert len(listed) == 8
    assert sorted(zip(runs["arch_id"], runs["seed"], strict=True)) == sorted(
        (arch, seed) for arch in listed for seed in (0, 1)
    )
    assert runs["params"].notna().all()
    assert runs["latency_ms"].notna().all()
    epochs = epochs_frame(store, "table")
    assert len(epochs) == 32  # every epoch of every run
    assert epochs["val_miou"].notna().all()
    stored = get_search(store, "table")
    assert stored["kind"] == "table"
    assert stored["space_name"] == "eight"
    assert stored["space_yaml"] == EIGHT
    saved = stored["config"]
    assert (saved["sample"], saved["sample_seed"]) == (None, 0)
    assert Path(saved["space"]) == space_path.resolve()
    assert (saved["seeds"], saved["epochs"], saved["image_size"], saved["train_samples"]) == (2, 2, 16, 16)
    assert {entry["label"] for entry in saved["plan_archs"]} == listed
    assert saved["class_names"]
    _exported_table_equals_the_database(store, epochs, runs, space_path, tmp_path)


@pytest.mark.slow
def test_a_table_reuses_only_results_trained_on_the_same_data(ray_local, tmp_path, store_tracker) -> None:
    # Two networks, one seed: on 32-px images, on 16-px images, on fewer train images; only a
    # table on the very same data reuses the first one's results.
    space = TableSource(str(_space(tmp_path, TWO)))
    options = {"seeds": 1, "epochs": 1, "recipe": TrainRecipe(epochs=1, batch_size=8)}
    first = tabulate(space, _config(tmp_path, name="px32", image_size=32, **options))
    assert first.counts == {"completed": 2}
    assert tabulate(space, _config(tmp_path, name="px16", **options)).counts == {"completed": 2}
    again = tabulate(space, _config(tmp_path, name="px32-again", image_size=32, **options))
    assert again.counts == {"cached": 2}
    fewer = tabulate(space, _config(tmp_path, name="fewer", image_size=32, train_samples=8, **options))
    assert fewer.counts == {"completed": 2}
    jitter = tabulate(
        space, _config(tmp_path, name="jitter", image_size=32, scale_range=(0.75, 1.25), **options)
    )
    assert jitter.counts == {"completed": 2}  # scale jitter changes what the numbers mean


def _exported_table_equals_the_database(store, epochs, runs, space_path: Path, tmp_path: Path) -> None:
    """The built table, exported and loaded: every epoch's value and every run's cost as stored."""
    table = load(export_table(store, "table", tmp_path / "table.parquet"), space=load_space(space_path))
    assert sorted(table.archs()) == sorted(set(runs["arch_id"]))
    assert (list(table.seeds), table.epochs) == ([0, 1], 2)
    by_trial = runs.set_index("trial_id")
    for row in epochs.itertuples():
        arch, seed = by_trial.loc[row.trial_id, "arch_id"], int(by_trial.loc[row.trial_id, "seed"])
        assert table.query(arch, seed, int(row.epoch), "val_miou") == pytest.approx(row.val_miou)
    for run in runs.itertuples():
        assert table.status(run.arch_id, int(run.seed)) == "completed"
        assert table.cost(run.arch_id).params == run.params


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
        RAY_TMPDIR=tempfile.mkdtemp(prefix="ray-", dir="/tmp"),
        NASFCN_DB=f"sqlite:///{tmp_path / 'nasfcn.db'}",
        COLUMNS="200",
    )
    return env


def _finished_runs(db: str) -> int:
    try:
        runs = benchmark_runs_frame(open_store(db, create=False), "crash")
    except Exception:  # not created yet
        return 0
    return int(runs["status"].isin(FINISHED_STATUSES).sum())


@pytest.mark.slow
def test_a_killed_build_resumes_with_every_run_exactly_once(tmp_path) -> None:
    env = _env(tmp_path)
    args = [
        *(sys.executable, "-m", "nasfcn.cli", "tabulate", "--space", str(_space(tmp_path))),
        *("--name", "crash", "--seeds", "2", "--epochs", "1", "--concurrency", "1"),
        *("--image-size", "16", "--train-samples", "16", "--val-samples", "8"),
        *("--storage-path", str(tmp_path / "runs")),
    ]
    driver = subprocess.Popen(
        args,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while _finished_runs(env["NASFCN_DB"]) < 3:
        assert driver.poll() is None, "the build ended before 3 runs finished"
        assert time.monotonic() < deadline, "3 runs did not finish in time"
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started: a crash
    driver.wait(30)
    store = open_store(env["NASFCN_DB"])
    before = benchmark_runs_frame(store, "crash")
    kept = before[before["status"].isin(FINISHED_STATUSES)].set_index("trial_id")
    assert 3 <= len(kept) < 16

    resumed = subprocess.run(
        [*args[:3], "tabulate", "--name", "crash", "--resume"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    text = " ".join(resumed.stdout.split())
    assert (
        f"table crash: 8 architectures x 1 datasets x 2 seeds = 16 runs of 1 epochs; {len(kept)} finished"
        in text
    )
    assert "nasfcn tabulate export crash --out" in text
    after = benchmark_runs_frame(store, "crash")
    finished = after[after["status"].isin(FINISHED_STATUSES)]
    assert len(finished) == 16
    assert not finished.duplicated(["arch_id", "seed"]).any()  # every (arch, seed) exactly once
    assert set(after["status"]) <= {*FINISHED_STATUSES, "interrupted"}
    for trial_id, row in kept.iterrows():  # what finished before the kill is kept as it was
        assert finished.set_index("trial_id").loc[trial_id, "best_miou"] == row["best_miou"]
    assert get_search(store, "crash")["status"] == "completed"


def test_a_space_too_large_is_refused_with_its_count_and_the_fix(tmp_path) -> None:
    path = _space(tmp_path, LARGE)
    size = load_space(path).size(include_train=True)
    assert size > TABLE_LIMIT
    db = tmp_path / "nasfcn.db"
    result = CliRunner().invoke(
        app, ["tabulate", "--space", str(path), "--name", "t", "--db", f"sqlite:///{db}"]
    )
    assert result.exit_code == 2, result.output
    assert f"space large has {int(size):,} architectures, more than the {TABLE_LIMIT:,}" in _said(result)
    assert "--sample N" in _said(result)
    assert "Traceback" not in result.output
    assert not db.exists()  # refused before anything is written


def test_a_space_with_a_float_range_is_refused_naming_the_knob_and_the_fix(tmp_path) -> None:
    db = tmp_path / "nasfcn.db"
    result = CliRunner().invoke(
        app,
        ["tabulate", "--space", str(_space(tmp_path, CONTINUOUS)), "--name", "t", "--db", f"sqlite:///{db}"],
    )
    assert result.exit_code == 2, result.output
    assert "cannot be listed: train.lr is a continuous range" in _said(result)
    assert "give it a value or a list of choices, or train a seeded sample with --sample N" in _said(result)
    assert not db.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sample", str(TABLE_LIMIT + 1)], f"N must be between 1 and {TABLE_LIMIT:,}"),
        (["--sample", "9"], "space eight has 8 architectures, fewer than the 9 asked for"),
        (["--sample-seed", "3"], "--sample-seed only goes with --sample N"),
        (["--data", "shapes", "--space", "no_such_space"], "space 'no_such_space': no such file"),
    ],
)
def test_bad_table_options_are_one_line_refusals(tmp_path, options, message) -> None:
    args = ["tabulate", "--space", str(_space(tmp_path)), "--name", "t", *options]
    result = CliRunner().invoke(app, [*args, "--db", f"sqlite:///{tmp_path / 'nasfcn.db'}"])
    assert result.exit_code == 2, result.output
    assert message in _said(result)
    assert "Traceback" not in result.output


def test_a_sample_is_seeded_distinct_and_drawn_from_the_space(tmp_path) -> None:
    space = load_space(_space(tmp_path))
    listed = [g.trial_key for g in space.iter_genotypes()]
    first = [g.trial_key for g in sample_genotypes(space, 5, seed=1)]
    assert first == [g.trial_key for g in sample_genotypes(space, 5, seed=1)]  # the same seed, the same
    assert len(set(first)) == 5
    assert set(first) <= set(listed)
    others = {tuple(g.trial_key for g in sample_genotypes(space, 5, seed=s)) for s in range(2, 8)}
    assert len(others | {tuple(first)}) > 1  # another seed, another sample


def test_a_continuous_space_is_sampled_by_distinct_seeded_draws(tmp_path) -> None:
    space = load_space(_space(tmp_path, CONTINUOUS))
    first = sample_genotypes(space, 20, seed=4)
    assert [g.trial_key for g in first] == [g.trial_key for g in sample_genotypes(space, 20, seed=4)]
    assert len({g.trial_key for g in first}) == 20
    assert all(1e-3 <= g.train.lr <= 1e-2 for g in first)


def test_space_specs_resolve_to_every_or_a_sample_of_the_architectures(tmp_path, store_tracker) -> None:
    path = _space(tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    every = resolve_archs((f"space:{path}",), store)
    assert [a.genotype.trial_key for a in every] == [g.trial_key for g in load_space(path).iter_genotypes()]
    assert [a.label for a in every] == [a.genotype.arch_id for a in every]
    sampled = resolve_archs((f"space:{path}:sample=3:seed=7",), store)
    assert [a.genotype for a in sampled] == sample_genotypes(load_space(path), 3, 7)
    assert parse_space_spec("space:a:b.yaml:sample=3").space == "a:b.yaml"
    with pytest.raises(BenchmarkError, match="seed= only goes with sample=N"):
        parse_space_spec("space:x.yaml:seed=2")
    with pytest.raises(BenchmarkError, match=r"space:PATH:sample=N"):
        resolve_archs((f"space:{_space(tmp_path, CONTINUOUS)}",), store)


def test_a_shipped_space_is_named_by_its_name(tmp_path, store_tracker) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    archs = resolve_archs(("space:segnet:sample=4:seed=1",), store)
    assert len(archs) == 4
    assert all(load_space("search_spaces/segnet.yaml").params_for(a.genotype) for a in archs)


def _stored_table(tmp_path: Path) -> str:
    """A table recorded as tabulate does (every architecture of EIGHT, nothing run yet)."""
    path = _space(tmp_path)
    config = _config(tmp_path, archs=(f"space:{path.resolve()}",))
    store = open_store(config.execution.db)
    space = parse_space(EIGHT)
    create_search(
        store,
        "table",
        "shapes",
        space_name=space.name,
        space_yaml=EIGHT,
        config={**config.as_dict(), "space": str(path.resolve()), "sample": None, "sample_seed": 0},
        kind="table",
    )
    store.dispose()
    return str(config.execution.db)


@pytest.mark.parametrize(
    ("typed", "refusal"),
    [
        (["--sample", "3"], "--sample 3 differs from the stored none"),
        (["--space", "segnet"], "--space segnet differs from the stored space eight"),
        (["--seeds", "3"], "--seeds 3 differs from the stored 2"),
        (["--scale-jitter", "0.75,1.25"], "--scale-jitter 0.75,1.25 differs from the stored 1,1"),
    ],
)
def test_a_resumed_table_refuses_a_typed_setting_that_changes_it(
    tmp_path, store_tracker, typed, refusal
) -> None:
    db = _stored_table(tmp_path)
    result = CliRunner().invoke(app, ["tabulate", "--name", "table", "--resume", "--db", db, *typed])
    assert result.exit_code == 2, result.output
    assert refusal in _said(result)
    assert "a resumed table keeps its settings; start a new table with another --name" in _said(result)


def test_a_benchmark_is_not_resumed_as_a_table(tmp_path, store_tracker) -> None:
    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    store = open_store(db)
    create_search(store, "bench", "shapes", config={}, kind="benchmark")
    store.dispose()
    result = CliRunner().invoke(app, ["tabulate", "--name", "bench", "--resume", "--db", db])
    assert result.exit_code == 2, result.output
    assert "--resume: no table named 'bench'" in _said(result)


def test_a_table_resumed_as_a_search_names_the_command_that_continues_it(tmp_path, store_tracker) -> None:
    db = _stored_table(tmp_path)
    result = CliRunner().invoke(app, ["search", "--name", "table", "--resume", "--db", db])
    assert result.exit_code == 2, result.output
    assert "'table' is a table; continue it with nasfcn tabulate --resume" in _said(result)
