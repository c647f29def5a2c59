"""``nasfcn arena`` end to end on the small known table: terminal, JSON, HTML, SQL, leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from nasfcn.arena import ArenaPlan, ArenaTable, compare, replays
from nasfcn.cli import app
from nasfcn.store import get_search, leaderboard_frame, open_store
from nasfcn.store._schema import Trial
from nasfcn.table import Table

SMALL = ["--strategies", "random,tpe", "--schedulers", "fifo,asha", "--trials", "6", "--repeats", "3"]
SMALL += ["--concurrency", "2", "--seed", "5"]


def _arena(table: Path, folder: Path, *extra: str, db: str = "a.db", out: str = "a1") -> Result:
    """``nasfcn arena`` of the arena "a1" on ``table``, its files named ``out`` in ``folder``."""
    args = ["arena", "--table", str(table), *SMALL, "--db", f"sqlite:///{folder / db}", "--name", "a1"]
    args += ["--json", str(folder / f"{out}.json"), "--html", str(folder / f"{out}.html"), *extra]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def first(table_files: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    folder = tmp_path_factory.mktemp("arena-cli")
    return folder, _arena(table_files["arena8"], folder)


def test_the_terminal_names_target_budget_and_every_pair(first) -> None:
    folder, result = first
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "a1: 4 pairs x 3 repeats x 6 trials on table arena8" in out
    assert "target: true mean val mIoU >= 0.6420 (top 1% of 8 architectures: 1 at or above it)" in out
    assert "budget: regret at equal epochs is compared at " in out
    for header in ("epochs to target", "reached", "p vs random + fifo (Holm)", "mean rank", "winner's curse"):
        assert header in out
    rows = [line for line in out.splitlines() if line.startswith("│ ") and " + " in line]
    assert len(rows) == 4
    assert "baseline" in rows[0]
    assert "12/12 replays" in result.stderr  # the progress display, on stderr
    assert f"summary: {folder / 'a1.json'}" in out


def test_the_json_agrees_with_compare_called_directly(first, table: Table) -> None:
    folder, _ = first
    data = json.loads((folder / "a1.json").read_text())
    board = ArenaTable(table)
    plan = ArenaPlan(("random", "tpe"), ("fifo", "asha"), 6, 3, 2, 5)
    direct = compare(replays(board, plan.searches(), 3, seed=5), board.target(0.01), seed=5)
    assert data["budget_epochs"] == direct.budget
    assert data["target"]["miou"] == pytest.approx(direct.target)
    for entry, row in zip(data["pairs"], direct.summary.to_dict("records"), strict=True):
        assert entry["pair"] == row["pair"]
        assert entry["regret_at_budget"]["median"] == pytest.approx(row["regret_at_budget"])
        assert entry["reached_share"] == pytest.approx(row["reached_share"])
        assert entry["winners_curse"]["median"] == pytest.approx(row["winners_curse"])


def test_baseline_picks_the_pair_every_other_is_tested_against(table_files: dict, tmp_path: Path) -> None:
    result = _arena(table_files["arena8"], tmp_path, "--baseline", "tpe + asha")
    assert result.exit_code == 0, result.output
    assert "p vs tpe + asha (Holm)" in result.stdout
    assert "random + fifo (Holm)" not in result.stdout
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("│ ")}
    assert "baseline" in rows["tpe + asha"]
    assert "baseline" not in rows["random + fifo"]
    data = json.loads((tmp_path / "a1.json").read_text())
    assert data["baseline"] == "tpe + asha"
    assert [p["pair"] for p in data["pairs"] if p["p_value"] is None] == ["tpe + asha"]
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        stored = get_search(store, "a1")
    finally:
        store.dispose()
    assert stored is not None
    assert stored["config"]["baseline"] == "tpe + asha"


def test_the_html_report_and_the_sql_rows(first) -> None:
    folder, _ = first
    page = (folder / "a1.html").read_text()
    for anchor in ("regret-epochs", "regret-time", "epochs-to-target", "ranks", "summary"):
        assert f"<section id='{anchor}'>" in page
    store = open_store(f"sqlite:///{folder / 'a.db'}")
    try:
        assert len(leaderboard_frame(store, "a1")) == 4 * 3 * 6  # pairs x repeats x trials
    finally:
        store.dispose()


def test_the_leaderboard_shows_an_arena(first) -> None:
    folder, _ = first
    out = folder / "board.html"
    db = f"sqlite:///{folder / 'a.db'}"
    result = CliRunner().invoke(app, ["leaderboard", "--search", "a1", "--db", db, "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "table arena8 (arena)" in page
    for column in ('"key":"strategy"', '"key":"scheduler"', '"key":"repeat"'):
        assert column in page


def test_the_same_seed_writes_the_same_json(table_files: dict, tmp_path: Path) -> None:
    for db, out in (("a.db", "first"), ("b.db", "again")):  # the same name, another database
        result = _arena(table_files["arena8"], tmp_path, db=db, out=out)
        assert result.exit_code == 0, result.output
    assert (tmp_path / "first.json").read_bytes() == (tmp_path / "again.json").read_bytes()
    other = _arena(table_files["arena8"], tmp_path, "--seed", "6", db="c.db", out="other")
    assert other.exit_code == 0, other.output
    assert (tmp_path / "other.json").read_bytes() != (tmp_path / "first.json").read_bytes()


def test_a_rerun_of_a_name_is_refused_unless_replaced(first, table_files: dict) -> None:
    folder, _ = first
    before = (folder / "a1.json").read_text()
    refused = _arena(table_files["arena8"], folder, "--seed", "9")
    assert refused.exit_code == 2
    assert refused.stderr.strip().splitlines() == [
        f"an arena named 'a1' already exists in sqlite:///{folder / 'a.db'}: "
        "choose another --name, or --replace it"
    ]
    assert "Traceback" not in refused.output
    assert (folder / "a1.json").read_text() == before  # nothing replayed, nothing written
    replaced = _arena(table_files["arena8"], folder, "--replace", "--trials", "4")
    assert replaced.exit_code == 0, replaced.output
    store = open_store(f"sqlite:///{folder / 'a.db'}")
    try:
        assert len(leaderboard_frame(store, "a1")) == 4 * 3 * 4
    finally:
        store.dispose()


def test_a_multi_objective_strategy_with_one_objective_is_one_line(table_files: dict, tmp_path: Path) -> None:
    result = _arena(table_files["arena8"], tmp_path, "--strategies", "random,nsga2")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot replay nsga2 + fifo on " in result.stderr
    assert "--strategy nsga2 is multi-objective" in result.stderr
    assert not (tmp_path / "a1.json").exists()


def test_a_table_is_read_from_the_database_by_name(table_files: dict, tmp_path: Path) -> None:
    db = f"sqlite:///{table_files['arena8'].parent / 'arena.db'}"  # where the tables were built
    args = [
        "arena",
        "--table",
        "arena8",
        *SMALL,
        "--db",
        db,
        "--name",
        "from-db",
        "--html",
        str(tmp_path / "r.html"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "from-db: 4 pairs x 3 repeats x 6 trials on table arena8 (hash " in result.stdout
    store = open_store(db)
    try:
        assert len(leaderboard_frame(store, "from-db")) == 4 * 3 * 6
    finally:
        store.dispose()


def test_confirm_top_ends_every_replayed_search_confirming(lucky_file: Path, tmp_path: Path) -> None:
    confirming = ["--confirm-top", "2", "--confirm-seeds", "1"]
    result = _arena(lucky_file, tmp_path, "--schedulers", "fifo", "--strategies", "random", *confirming)
    assert result.exit_code == 0, result.output
    assert (
        "confirmation: every search ends by confirming its top 2 networks over 1 extra table seeds each "
        "(8 epochs, counted in its epochs); the export is the best pooled mean"
    ) in " ".join(result.stdout.split())
    data = json.loads((tmp_path / "a1.json").read_text())
    assert (data["confirm_top"], data["confirm_seeds"]) == (2, 1)
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with store.session_scope() as session:
            params = list(session.execute(select(Trial.params_json)).scalars())
    finally:
        store.dispose()
    assert len(params) == 3 * (6 + 2 * 1)  # repeats x (trials + confirmation runs)
    replayed = [json.loads(p)["arena"] for p in params]
    assert sum("confirms" in r for r in replayed) == 3 * 2


def test_without_confirm_top_the_arena_confirms_nothing(first) -> None:
    folder, result = first
    assert "confirmation:" not in result.stdout
    data = json.loads((folder / "a1.json").read_text())
    assert (data["confirm_top"], data["confirm_seeds"]) == (None, None)


def test_more_confirmation_seeds_than_the_table_allows_is_one_line(lucky_file: Path, tmp_path: Path) -> None:
    result = _arena(lucky_file, tmp_path, "--confirm-seeds", "3")
    assert result.exit_code == 2
    said = " ".join(result.stderr.split())  # one message, wrapped to the terminal's width
    assert said.startswith("cannot replay random + fifo on ")
    assert "--confirm-seeds 3: each confirmation run needs a table seed its trial did not draw" in said
    assert said.endswith("the table has 3 seeds, so at most 2")
    assert "Traceback" not in result.output
    assert not (tmp_path / "a1.json").exists()


def test_the_help_says_confirmation_is_off_by_default() -> None:
    result = CliRunner().invoke(app, ["arena", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Off by default in the arena" in " ".join(result.stdout.split())
