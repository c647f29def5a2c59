"""``nasfcn tabulate export`` and ``nasfcn tabulate report``, through the CLI."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.table import load


def test_export_then_report_from_the_file(tabulation, tmp_path: Path) -> None:
    out = tmp_path / "t8.parquet"
    db = str(tabulation.store.engine.url)
    result = CliRunner().invoke(app, ["tabulate", "export", "t8", "--out", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    assert "8 architectures x 2 seeds x 2 epochs" in result.output
    assert load(out).archs()
    html = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["tabulate", "report", str(out), "--out", str(html)])
    assert result.exit_code == 0, result.output
    assert "ICC(1)" in result.output
    assert "Pareto front" in result.output
    assert html.read_text().startswith("<!doctype html>")


def test_report_reads_a_table_from_the_database(tabulation) -> None:
    db = str(tabulation.store.engine.url)
    result = CliRunner().invoke(app, ["tabulate", "report", "t8", "--db", db])
    assert result.exit_code == 0, result.output
    assert (
        "t8: space bench8, dataset shapes, 8 architectures x 2 seeds x 2 epochs, 1 failed runs"
        in result.output
    )


def test_refusals_are_one_line_and_exit_2(known, store, tmp_path: Path) -> None:
    known.write_tabulation(store, "half", finish=False)
    db = str(store.engine.url)
    result = CliRunner().invoke(
        app, ["tabulate", "export", "half", "--out", str(tmp_path / "h.parquet"), "--db", db]
    )
    assert result.exit_code == 2
    assert "2 unfinished runs of 16" in result.output
    assert "nasfcn tabulate --resume --name half" in result.output
    assert "Traceback" not in result.output
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    result = CliRunner().invoke(app, ["tabulate", "report", str(bad)])
    assert result.exit_code == 2
    assert "not a readable Parquet file" in result.output


def test_a_table_has_a_benchmark_report_too(tabulation, tmp_path: Path) -> None:
    """A table is a benchmark of every architecture: its ranked report with intervals and ties."""
    out = tmp_path / "t8.md"
    db = str(tabulation.store.engine.url)
    result = CliRunner().invoke(app, ["benchmark", "report", "t8", "--db", db, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# Benchmark `t8`")
    assert "8 architectures x 1 datasets x 2 seeds" in text
