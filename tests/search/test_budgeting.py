"""The driver's budget accounting: what a new search plans with, what a resume has left."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import update

from nasfcn.genotype import EncoderGene, Genotype
from nasfcn.search import SearchConfig, execution_options, run_search, with_execution
from nasfcn.search._budget import DEFAULT_EPOCH_CAP, UNCAPPED_TRIALS, Cost, plan
from nasfcn.search._budgeting import BUDGET, budget_start, budgeted, used_before
from nasfcn.search._config import FINAL_SHARE, LONG_BUDGET_MIN, LONG_FINAL_SHARE
from nasfcn.store import create_search, finish_trial, get_search, open_store, record_epoch, upsert_trial
from nasfcn.store._schema import Trial

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _dispose_stores(store_tracker: list) -> None:
    """Close every pooled connection a test opened."""


def _config(tmp_path: Path, **options) -> SearchConfig:
    options = {
        "space": "search_spaces/fcn_tiny.yaml",
        "name": "b",
        "db": f"sqlite:///{tmp_path / 'n.db'}",
        "storage_path": str(tmp_path / "runs"),
        "image_size": 32,
        "train_samples": 16,
        "val_samples": 8,
        "quiet": True,
        **options,
    }
    execution, rest = execution_options(options)
    return SearchConfig(**rest, execution=execution)


def _trial(store, sid: int, number: int, start_s: float, end_s: float | None, epochs: list[float]) -> None:
    genotype = Genotype(encoder=EncoderGene(stages=2, width=4 + number), skip="none", upsample="bilinear")
    row = upsert_trial(store, sid, number, genotype, dataset="shapes", recipe={}, status="running")
    for epoch, seconds in enumerate(epochs, start=1):
        record_epoch(store, row, epoch, {"val_miou": 0.1, "seconds": seconds})
    if end_s is not None:
        finish_trial(store, row, "completed")
    with store.session_scope() as session:
        session.execute(
            update(Trial)
            .where(Trial.id == row)
            .values(
                started_at=T0 + timedelta(seconds=start_s),
                finished_at=None if end_s is None else T0 + timedelta(seconds=end_s),
            )
        )


def test_a_new_budgeted_search_plans_epochs_and_trials_unless_given(tmp_path: Path) -> None:
    plain = budgeted(_config(tmp_path, time_budget_min=2.0), frozenset({"time_budget_min"}))
    assert (plain.epochs, plain.trials) == (DEFAULT_EPOCH_CAP, UNCAPPED_TRIALS)
    capped = budgeted(
        _config(tmp_path, time_budget_min=2.0, trials=7, epochs=5), frozenset({"trials", "epochs"})
    )
    assert (capped.epochs, capped.trials) == (5, 7)
    unbudgeted = _config(tmp_path)
    assert budgeted(unbudgeted, frozenset()) is unbudgeted


def test_final_runs_default_on_from_a_long_budget_and_a_resume_keeps_its_share(tmp_path: Path) -> None:
    short = budgeted(_config(tmp_path, time_budget_min=LONG_BUDGET_MIN - 5), frozenset({"time_budget_min"}))
    assert short.final_share == FINAL_SHARE == 0.0  # at 5 minutes final runs lost (RESULTS.md)
    long = budgeted(_config(tmp_path, time_budget_min=LONG_BUDGET_MIN), frozenset({"time_budget_min"}))
    assert long.final_share == LONG_FINAL_SHARE
    asked = _config(tmp_path, time_budget_min=30.0, final_share=0.0)
    assert budgeted(asked, frozenset({"time_budget_min", "final_share"})).final_share == 0.0
    # a resume given a longer budget keeps the stored share: budgeted() leaves it to merge_stored
    resumed = with_execution(_config(tmp_path, time_budget_min=30.0), resume=True)
    assert budgeted(resumed, frozenset({"time_budget_min"})).final_share == FINAL_SHARE


def test_a_resume_has_what_the_earlier_trials_did_not_use(tmp_path: Path) -> None:
    config = _config(tmp_path, time_budget_min=5.0)
    store = open_store(config.execution.db)
    shape = plan(300, 2, Cost(2.0, 1.0), 16)
    sid = create_search(store, "b", "shapes", config={BUDGET: {"total_s": 300, "plans": [shape.as_dict()]}})
    _trial(store, sid, 0, 0, 60, [20, 20])
    _trial(store, sid, 1, 30, 90, [30])  # overlaps the first: 30 s more
    _trial(store, sid, 2, 1000, None, [15, 15])  # a killed driver's: up to its last epoch
    assert used_before(store, "b") == pytest.approx(90 + 30)
    start = budget_start(config, store)
    assert start is not None
    assert start.total_s == 300
    assert start.used_before_s == 0
    resumed = _config(tmp_path, time_budget_min=5.0, resume=True)
    start = budget_start(resumed, store)
    assert start is not None
    assert (start.total_s, start.used_before_s, start.seconds) == (
        300,
        pytest.approx(120),
        pytest.approx(180),
    )
    assert start.shape == shape  # a resume keeps the stored plan's epochs and rungs


def test_a_resume_whose_budget_is_spent_runs_nothing_and_says_so(tmp_path: Path) -> None:
    config = _config(tmp_path, time_budget_min=1.0)
    store = open_store(config.execution.db)
    sid = create_search(store, "b", "shapes", space_name="fcn_tiny", config=config.as_dict(), kind="search")
    _trial(store, sid, 0, 0, 70, [30, 30])
    console = Console(record=True, width=200)
    summary = run_search(_config(tmp_path, time_budget_min=1.0, resume=True), console=console)
    text = console.export_text()
    assert "the time budget of 1 min is spent (earlier runs' trials ran 1.2 min)" in text
    assert "a larger --time-budget extends the search" in text
    assert summary.counts == {"completed": 1}
    stored = get_search(store, "b")
    assert stored is not None
    assert stored["status"] == "completed"
    assert stored["config"][BUDGET]["used_before_s"] == pytest.approx(70)
