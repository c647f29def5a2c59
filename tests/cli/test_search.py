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
