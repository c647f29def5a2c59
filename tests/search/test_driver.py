"""The driver's own faults: the search log on a full disk says so once; a run stopped past
registration (Ray unreachable, the database away) leaves nothing `running`."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nasfcn.search._log import log_to_file

FULL = Path("/dev/full")  # every write fails with ENOSPC, as on a full disk


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux) to fail writes with ENOSPC")
def test_a_search_log_on_a_full_disk_says_so_once_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("nasfcn.search")
    with log_to_file(FULL):
        for number in range(5):
            log.info("trial %d completed", number)
            log.warning("database unavailable, retry %d", number)
    err = capsys.readouterr().err
    assert "Logging error" not in err
    assert "Traceback" not in err
    assert err.splitlines() == [
        "search log /dev/full: cannot write ([Errno 28] No space left on device); no more log messages"
    ]


# --- a run stopped by something else than Tune leaves nothing `running` --------------------


def _search_config(tmp_path: Path, space: Path, **overrides):
    from nasfcn.search import SearchConfig, execution_options

    options = {
        "space": str(space),
        "data": "shapes",
        "name": "stopped",
        "trials": 2,
        "epochs": 1,
        "image_size": 32,
        "train_samples": 32,
        "val_samples": 16,
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "quiet": True,
    }
    options.update(overrides)
    execution, rest = execution_options(options)
    return SearchConfig(**rest, execution=execution)


def _statuses(db: str, name: str) -> tuple[str, list[str]]:
    from nasfcn.store import leaderboard_frame, open_store, searches_frame

    store = open_store(db)
    try:
        search = searches_frame(store).set_index("name").loc[name, "status"]
        return str(search), sorted(leaderboard_frame(store, name)["status"])
    finally:
        store.dispose()


def test_a_search_whose_ray_cannot_start_is_left_interrupted(
    tmp_path: Path, micro_space: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreachable --ray-address (or any error past registration) once left the search `running`."""
    from nasfcn.search import _lifecycle, run_search

    def unreachable(address: str | None, run_folder: Path | None = None) -> None:
        raise ConnectionError(f"could not connect to the Ray cluster at {address}")

    monkeypatch.setattr(_lifecycle, "start_ray", unreachable)
    config = _search_config(tmp_path, micro_space, ray_address="127.0.0.1:1")
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:1"):
        run_search(config)
    assert _statuses(config.execution.db, "stopped") == ("interrupted", [])


def test_a_benchmark_whose_database_stays_away_stops_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database give-up in a benchmark once escaped as a StoreError and left it `running`."""
    from nasfcn.benchmark import BenchmarkConfig, run_benchmark
    from nasfcn.search import Execution, SearchStoppedError, _lifecycle
    from nasfcn.store import DatabaseUnavailableError
    from nasfcn.train import TrainRecipe

    def database_away(run, console) -> bool:
        raise DatabaseUnavailableError("database sqlite:///x unreachable for 90 s while recording trial 0")

    monkeypatch.setattr(_lifecycle, "start_ray", lambda address, run_folder=None: None)
    monkeypatch.setattr(_lifecycle, "run_trials", database_away)
    config = BenchmarkConfig(
        name="away",
        archs=("ref:unet:4",),
        datasets=("shapes",),
        seeds=1,
        epochs=1,
        execution=Execution(
            db=f"sqlite:///{tmp_path / 'nasfcn.db'}", storage_path=str(tmp_path / "runs"), quiet=True
        ),
        image_size=32,
        train_samples=32,
        val_samples=16,
        recipe=TrainRecipe(epochs=1, batch_size=8),
    )
    with pytest.raises(SearchStoppedError) as stopped:
        run_benchmark(config)
    message = str(stopped.value)
    assert "while recording trial 0: search stopped; finished trials are saved" in message
    assert "the search and its running trials are marked interrupted" in message
    assert message.endswith("continue with nasfcn benchmark --resume --name away")
    assert _statuses(config.execution.db, "away")[0] == "interrupted"


# --- a resume of another kind of run names that kind -----------------------------------------


@pytest.mark.parametrize(
    ("kind", "refusal"),
    [
        (
            "arena",
            "--resume: 'runs' is an arena (searches simulated against a table, nothing trained), not a "
            "search: nothing to resume; replay it with nasfcn arena --table TABLE --name runs --replace",
        ),
        ("table", "--resume: 'runs' is a table; continue it with nasfcn tabulate --resume"),
        ("benchmark", "--resume: 'runs' is a benchmark; continue it with nasfcn benchmark --resume"),
    ],
)
def test_a_resume_of_another_kind_of_run_is_one_line_naming_the_kind(
    tmp_path: Path, store_tracker: list, kind: str, refusal: str
) -> None:
    from typer.testing import CliRunner

    from nasfcn.cli import app
    from nasfcn.store import create_search, open_store

    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    create_search(open_store(db), "runs", "shapes", config={}, kind=kind)
    result = CliRunner().invoke(app, ["search", "--name", "runs", "--resume", "--db", db])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert " ".join(result.stderr.split()) == refusal  # one message (the console wraps long lines)
