"""An arena in SQL: every strategy x repeat x trial a trial row, its epochs the table's."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from nasfcn.arena import ArenaPlan, ArenaTable, run_arena, store_arena
from nasfcn.store import arena_trials_frame, epochs_frame, get_search, leaderboard_frame, open_store
from nasfcn.store._schema import Trial
from nasfcn.table import Table, load

PLAN = ArenaPlan(("random", "tpe"), ("fifo", "asha"), trials=7, repeats=3, concurrency=2, seed=4)


def test_every_simulated_trial_is_stored_with_the_table_values(table_files: dict, tmp_path: Path) -> None:
    table = load(table_files["arena8f"])  # with a run that fails after one epoch
    run = run_arena(ArenaTable(table), PLAN, "stored")
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    store_arena(store, run)
    facts = get_search(store, "stored")
    assert facts is not None
    assert (facts["kind"], facts["dataset"]) == ("arena", "arena:arena8f")
    config = facts["config"]
    assert config["table_hash"] == table.facts["checksum"]
    assert (config["strategies"], config["schedulers"]) == (["random", "tpe"], ["fifo", "asha"])
    assert (config["trials"], config["repeats"], config["concurrency"], config["seed"]) == (7, 3, 2, 4)
    assert (config["target"], config["budget"]) == (run.target.value, run.summary.budget)

    trials = leaderboard_frame(store, "stored").merge(arena_trials_frame(store, "stored"), on="trial_id")
    assert len(trials) == 4 * 3 * 7  # pairs x repeats x trials
    assert trials.groupby(["strategy", "scheduler", "repeat"]).size().eq(7).all()
    replayed = pd.concat([r.trials for r in run.results], ignore_index=True)  # pairs, repeats, trials
    by_number = trials.sort_values("number")
    assert list(by_number["arch_id"]) == list(replayed["arch_id"])
    assert list(by_number["seed"]) == list(replayed["table_seed"])  # the table run each trial replayed
    epochs = epochs_frame(store, "stored")
    assert len(epochs) == int(replayed["epochs"].sum())
    assert set(trials["status"]) <= {"completed", "stopped_early", "failed"}
    assert "stopped_early" in set(trials["status"])
    for row in trials.sample(12, random_state=0).itertuples():
        mine = epochs[epochs["trial_id"] == row.trial_id].sort_values("epoch")
        assert len(mine) == row.epochs_trained
        expected = table.curve(row.arch_id, int(row.seed))[: row.epochs_trained]
        assert mine["val_miou"].to_numpy() == pytest.approx(expected)
        if row.epochs_trained:
            assert row.best_miou == pytest.approx(expected.max())
    failed = trials[trials["status"] == "failed"]
    assert (failed["error"] == "training diverged: loss is NaN").all()


def test_the_stored_trials_say_which_replay_they_belong_to(table: Table, tmp_path: Path) -> None:
    run = run_arena(ArenaTable(table), ArenaPlan(("random",), ("asha",), 5, 2, seed=10), "tiny")
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    store_arena(store, run)
    with store.session_scope() as session:
        params = [
            json.loads(t) for t in session.execute(select(Trial.params_json).order_by(Trial.number)).scalars()
        ]
    assert params[0] == {"arena": {"strategy": "random", "scheduler": "asha", "repeat": 0, "trial": 0}}
    assert params[-1] == {"arena": {"strategy": "random", "scheduler": "asha", "repeat": 1, "trial": 4}}


@pytest.mark.parametrize(
    "options",
    [["--search", "tiny"], ["--search", "tiny", "--trial", "3"], ["--search", "tiny", "--rank", "1"], []],
    ids=["best", "trial", "rank", "latest"],
)
def test_a_stored_arena_is_not_exported(table: Table, tmp_path: Path, options: list[str]) -> None:
    """Simulated trials have no weights: one line says so, whichever trial is asked for."""
    from typer.testing import CliRunner

    from nasfcn.cli import app

    run = run_arena(ArenaTable(table), ArenaPlan(("random",), ("fifo",), 4, 1), "tiny")
    db = f"sqlite:///{tmp_path / 'a.db'}"
    store = open_store(db)
    store_arena(store, run)
    store.dispose()
    out = tmp_path / "bundle"
    result = CliRunner().invoke(app, ["export", *options, "--out", str(out), "--db", db])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert " ".join(result.stderr.split()) == (
        "search 'tiny' is an arena: its trials were replayed from table 'arena8', not trained, so they "
        "have no weights to export; train the architecture with nasfcn train --genotype or nasfcn search, "
        "then export that trial"
    )
    assert not out.exists()
