"""``nasfcn search --time-budget``: refusals in one line, and a real budgeted search that ends in time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.search._budgeting import BUDGET, used_before
from nasfcn.search._deadline import overrun_allowance_s
from nasfcn.store import get_search, leaderboard_frame, open_store

runner = CliRunner()
TINY = "search_spaces/fcn_tiny.yaml"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--time-budget must be a positive number of minutes, got 0.0"),
        ("-5", "--time-budget must be a positive number of minutes, got -5.0"),
        ("nan", "--time-budget must be a positive number of minutes, got nan"),
    ],
)
def test_a_bad_time_budget_is_refused_in_one_line(tmp_path: Path, value: str, message: str) -> None:
    result = runner.invoke(app, ["search", "--db", f"sqlite:///{tmp_path / 'n.db'}", "--time-budget", value])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"invalid search options:\n  {message}".strip()
    assert "Traceback" not in result.output
    assert not (tmp_path / "n.db").exists()


def test_a_time_budget_that_is_no_number_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", "--db", f"sqlite:///{tmp_path / 'n.db'}", "--time-budget", "ten"])
    assert result.exit_code == 2
    assert "Invalid value for '--time-budget': Input should be a valid number" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("command", "needed"),
    [
        ("search", ["--name", "x"]),
        ("tabulate", ["--name", "x", "--space", "fcn_tiny"]),
        ("benchmark", ["--name", "x", "--archs", "ref:fcn8s"]),
        ("train", ["--space", TINY]),
    ],
)
def test_a_bad_scale_jitter_is_a_usage_error_naming_the_option(
    tmp_path: Path, command: str, needed: list[str]
) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'n.db'}"] if command != "train" else ["--out", str(tmp_path / "t")]
    result = runner.invoke(app, [command, *db, *needed, "--scale-jitter", "1.25,0.75"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.stderr.split())
    assert "Invalid value for '--scale-jitter': scale jitter must be 'off' or LOW,HIGH" in said
    assert "got '1.25,0.75'" in said
    assert "Traceback" not in result.output
    assert not (tmp_path / "n.db").exists()
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_a_half_minute_budget_plans_runs_and_ends_within_it(ray_local, tmp_path: Path, store_tracker) -> None:
    db = f"sqlite:///{tmp_path / 'n.db'}"
    args = ["search", "--space", TINY, "--data", "shapes", "--time-budget", "0.5", "--name", "budget"]
    args += [
        "--db",
        db,
        "--storage-path",
        str(tmp_path / "runs"),
        "--image-size",
        "32",
        "--train-samples",
        "64",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "time budget 0.5 min: trials and up to 16 epochs planned" in result.output
    assert "plan " in result.output
    assert "trials x up to" in result.output
    assert "time budget: used 0." in result.output
    assert "of 0.5 min" in result.output
    store = open_store(db)
    stored = get_search(store, "budget")
    assert stored is not None
    assert stored["status"] == "completed"
    plans = stored["config"][BUDGET]["plans"]
    assert plans
    # the first plan follows the first epoch's report, or the first trial's end when a loaded
    # machine delivers that first (Ray's event order): either way it is made from measured cost
    assert plans[0]["why"] in {"measured the first epoch", "a trial finished"}
    assert plans[0]["trials"] >= 1
    # Ended within the budget by the driver's own accounting, never a clock of the test's: the
    # summary's share used (the driver's clock starts with the command) within the budget plus
    # the stated overrun allowance (Ray's stop and the driver's settling on a loaded machine), and
    # the wall time its trials ran (what a resume charges) within the budget plus one epoch at the
    # measured cost (an epoch starts only if, at its median cost, it ends before the deadline).
    assert stored["config"][BUDGET]["total_s"] == 30
    share = re.search(r"time budget: used\s+[\d.]+\s+of\s+0\.5\s+min\s+\((\d+)%\)", result.output)
    assert share is not None, result.output
    assert int(share.group(1)) / 100 * 30 <= 30 + overrun_allowance_s(30) + 0.15  # 0.15: the % rounding
    assert used_before(store, "budget") <= 30 + plans[-1]["epoch_s"]
    statuses = set(leaderboard_frame(store, "budget")["status"])
    assert statuses <= {"completed", "stopped_early", "cached"}, statuses
    log = (tmp_path / "runs" / "search.log").read_text()
    assert f"time budget plan ({plans[0]['why']})" in log


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("half", "--fidelity 'half': 'half' sets nothing; use 'epochs' (every epoch at full size) or "),
        ("resolution=2", "--fidelity resolution must be in (0, 1], got 2.0"),
        ("size=0.5", "--fidelity 'size=0.5': unknown or repeated setting 'size'"),
        ("resolution=0.2", "--fidelity resolution=0.2 trains at 6 px from --image-size 32: a reduced side"),
    ],
)
def test_a_bad_fidelity_is_refused_in_one_line(tmp_path: Path, value: str, message: str) -> None:
    db = tmp_path / "n.db"
    result = runner.invoke(
        app, ["search", "--db", f"sqlite:///{db}", "--image-size", "32", "--fidelity", value]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "invalid search options:"
    assert len(lines) == 2
    assert message in lines[1]
    assert "Traceback" not in result.output
    assert not db.exists()


def _tune_results(folder: Path) -> dict[int, list[dict]]:
    """Every result each trial reported to Ray Tune (its result.json), by trial number."""
    import json

    found: dict[int, list[dict]] = {}
    for path in folder.rglob("result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            found[int(rows[0]["config"]["number"])] = rows
    return found


@pytest.mark.slow
def test_fidelity_budgets_drive_asha_and_the_first_epochs_train_small(
    ray_local, tmp_path: Path, store_tracker
) -> None:
    from nasfcn.recipe import Fidelity
    from nasfcn.search._budget import asha_decisions

    db = f"sqlite:///{tmp_path / 'n.db'}"
    args = ["search", "--space", TINY, "--data", "shapes", "--name", "fid", "--db", db]
    args += ["--storage-path", str(tmp_path / "runs"), "--image-size", "32", "--train-samples", "32"]
    args += ["--trials", "6", "--epochs", "4", "--grace-period", "2", "--concurrency", "1"]
    args += ["--fidelity", "resolution=0.5,subset=0.5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fidelity: epochs 1-2 at 16 px on 50% of the train images (cost 0.125 of an epoch each)" in (
        result.output
    )

    fidelity = Fidelity(0.5, 0.5, low_epochs=2)
    decisions = asha_decisions(4, 2, 2, fidelity)
    assert decisions == (2, 3, 4)  # budgets 1/8, 1/4 | 5/4, 9/4: rungs 1/4, (1/2 skipped), 1, 2
    store = open_store(db)
    frame = leaderboard_frame(store, "fid")
    stopped = frame[frame["status"] == "stopped_early"]
    assert len(stopped) >= 1  # ASHA stopped someone, and only at a decision
    assert set(stopped["epochs_trained"]) <= set(decisions[:-1])
    assert set(frame["status"]) <= {"completed", "stopped_early"}
    stored = get_search(store, "fid")
    assert stored is not None
    assert stored["recipe"]["fidelity"] == {"resolution": 0.5, "subset": 0.5, "low_epochs": 2}  # cache key

    reported = _tune_results(tmp_path / "runs")
    assert len(reported) == 6
    for rows in reported.values():
        epochs = [row for row in rows if row.get("nasfcn_status") == "running"]
        for row in epochs:
            low = row["epoch"] <= 2
            assert row["train_side"] == (16 if low else 32)
            assert row["train_fraction"] == (0.5 if low else 1.0)
            assert row["budget"] == fidelity.budget(row["epoch"])
            assert row["val_miou"] is not None  # validated at full size every epoch
