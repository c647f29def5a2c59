"""``nasfcn leaderboard`` and ``nasfcn serve`` as a user runs them, and the live app without a browser."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from plotly.utils import PlotlyJSONEncoder
from typer.testing import CliRunner

from leaderboard import app as live
from leaderboard.data import load_board, load_view
from nasfcn.cli import app
from nasfcn.store import Store, open_store

runner = CliRunner()


def test_leaderboard_writes_one_html_file_and_prints_its_path(handmade_db: str, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "alpha.html"
    result = runner.invoke(app, ["leaderboard", "--db", handmade_db, "--search", "alpha", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out.resolve()) in result.stdout.replace("\n", "")
    page = out.read_text(encoding="utf-8")
    assert '<span id="search-name">alpha</span>' in page
    assert page.count('<script type="application/json" id="board-data">') == 1
    assert '"ids":[1,2,3,4]' in page  # the table's four rows, drawn from that block in the page


def test_leaderboard_defaults_to_the_latest_search(handmade_db: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["leaderboard", "--db", handmade_db])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "leaderboard.html").read_text(encoding="utf-8")
    assert '<span id="search-name">empty</span>' in page  # created last
    assert "No trials yet" in page


def test_unknown_search_is_one_line_listing_the_searches(handmade_db: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["leaderboard", "--db", handmade_db, "--search", "nope", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"no search named 'nope' in {handmade_db}; searches: alpha, beta, lonely, broken, empty"
    ]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("with_schema", [False, True])
def test_a_database_without_searches_says_to_run_one(
    tmp_path: Path, store_tracker, with_schema: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    if with_schema:
        open_store(url)  # tables, but no search yet
    result = runner.invoke(app, ["leaderboard", "--db", url, "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "yet: run `nasfcn search` first" in line
    assert "Traceback" not in result.output
    assert (tmp_path / "fresh.db").exists() == with_schema  # a read never creates a database


def test_serve_listens_on_loopback_by_default(monkeypatch) -> None:
    assert inspect.signature(live.serve).parameters["host"].default == "127.0.0.1"
    calls: list[tuple] = []
    monkeypatch.setattr(live, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    result = runner.invoke(app, ["serve", "--db", "sqlite:///unused.db"])
    assert result.exit_code == 0, result.output
    assert calls == [(("sqlite:///unused.db",), {"host": "127.0.0.1", "port": 8050, "refresh_s": 5.0})]
    assert "http://127.0.0.1:8050/" in result.stdout


def test_serve_passes_host_port_and_refresh_through(monkeypatch) -> None:
    calls: list[tuple] = []
    monkeypatch.setattr(live, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    args = ["serve", "--db", "sqlite:///u.db", "--host", "0.0.0.0", "--port", "9000", "--refresh", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert calls[0][1] == {"host": "0.0.0.0", "port": 9000, "refresh_s": 2.0}


def test_serve_refuses_a_bad_database_url() -> None:
    result = runner.invoke(app, ["serve", "--db", "not a url"])
    assert result.exit_code == 2
    assert "cannot parse database URL" in result.stderr


def test_live_app_serves_its_layout_and_interval(handmade_db: str) -> None:
    dash_app = live.create_app(Store(handmade_db), refresh_s=3.0)
    client = dash_app.server.test_client()
    assert client.get("/").status_code == 200
    layout = json.dumps(client.get("/_dash-layout").get_json())
    for component_id in ("search", "table", "board-figures", "detail"):
        assert f'"id": "{component_id}"' in layout
    section = json.dumps(live.figure_section(), cls=PlotlyJSONEncoder)  # after the first rows
    for component_id in ("pareto", "curves", "heatmap", "compare", "across"):
        assert f'"id": "{component_id}"' in section
    assert '"interval": 3000' in layout
    assert client.get("/trial/1").status_code == 200  # routes are served by the same page


def test_detail_page_shows_stored_text_as_text(handmade_db: str) -> None:
    board = load_board(Store(handmade_db), "alpha")
    failed = int(board.trials[board.trials["status"] == "failed"].iloc[0]["trial_id"])
    page = json.dumps(live.detail_page(board, failed), default=lambda c: c.to_plotly_json())
    assert "TrainingDiverged: loss is nan" in page  # as typed: React renders it as text
    assert "nasfcn export --search alpha --trial 2" in page
    assert '"href": "/?search=alpha"' in page


def test_leaderboard_of_a_benchmark_writes_the_benchmark_view(benchmark_db: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.html"
    result = runner.invoke(app, ["leaderboard", "--db", benchmark_db, "--search", "bench", "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "<h1>Benchmark: " in page
    assert 'id="benchmark-table"' in page
    assert page.count('<section id="dataset-') == 2  # an error-bar plot per dataset


def test_live_benchmark_page_shows_table_plots_and_report_as_text(benchmark_db: str) -> None:
    board = load_view(Store(benchmark_db), "bench")
    parts = live.benchmark_page(board)
    page = json.dumps(parts, default=lambda c: c.to_plotly_json())
    graphs = [p for p in parts if getattr(p, "id", "").startswith("benchmark-figure-")]
    assert [g.figure.layout.title.text for g in graphs] == [
        "shapes: mean val mIoU with 95% CI",
        "digits: mean val mIoU with 95% CI",
    ]
    (table,) = [p for p in parts if getattr(p, "id", None) == "benchmark-table"]
    head, body = table.children
    assert len(head.children) == 2  # the datasets over their columns
    assert len(body.children) == 3  # one row per architecture
    assert [r.children[1].children for r in body.children] == ["unet (ref)", "mine", "fcn8s (ref)"]
    assert "RuntimeError: <b>out of memory</b>" in page  # as typed: React renders it as text
    assert f"nasfcn benchmark report bench --out bench.md --db {benchmark_db}" in page
    layout = json.dumps(
        live.create_app(Store(benchmark_db)).server.test_client().get("/_dash-layout").get_json()
    )
    assert '"id": "benchmark-board"' in layout
