"""The command line, driven as a user would through typer's CliRunner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nasfcn import __version__
from nasfcn.cli import app, main
from nasfcn.errors import NasfcnError

runner = CliRunner()
TINY = "search_spaces/fcn_tiny.yaml"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_validate_shipped_spaces() -> None:
    paths = sorted(str(p) for p in Path("search_spaces").glob("*.yaml"))
    result = runner.invoke(app, ["spaces", "validate", *paths])
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": ok (") == len(paths)


def test_validate_bad_space_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nencoder: {kernel_size: {choices: [3, 4]}}\nupsample: nearest\n")
    result = runner.invoke(app, ["spaces", "validate", TINY, str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: 2 errors in the search space" in result.stderr
    assert "encoder.kernel_size.choices[1]: 4 is not allowed" in result.stderr
    assert "upsample: nearest is not allowed" in result.stderr
    assert "Traceback" not in result.output
    assert "fcn_tiny" in result.stdout  # the good file is still reported


def test_show_lists_knobs_conditions_and_size() -> None:
    result = runner.invoke(app, ["spaces", "show", "search_spaces/fcn_small.yaml"])
    assert result.exit_code == 0, result.output
    assert "encoder.kernel_size" in result.stdout
    assert "per stage" in result.stdout
    assert "encoder.downsample == strided_conv" in result.stdout
    assert "distinct architectures: 7,665,600" in result.stdout


def test_show_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["spaces", "show", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "file not found" in result.stderr


def test_sample_prints_a_cost_table() -> None:
    result = runner.invoke(app, ["spaces", "sample", TINY, "--n", "3", "--seed", "5", "--classes", "6"])
    assert result.exit_code == 0, result.output
    from nasfcn.space import load_space

    space = load_space(TINY)
    for seed in (5, 6, 7):
        assert space.sample(seed).arch_id in result.stdout
    assert "FLOPs" in result.stdout
    assert "latency ms" in result.stdout


def test_search_refuses_bad_asha_options_before_starting(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'n.db'}"
    result = runner.invoke(
        app, ["search", "--space", TINY, "--db", db, "--grace-period", "0", "--reduction-factor", "1"]
    )
    assert result.exit_code == 2
    assert "--grace-period must be >= 1 epoch, got 0" in result.stderr
    assert "--reduction-factor must be >= 2, got 1" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "n.db").exists()


HUGE_SPACE = """
name: huge
input: {channels: 3, min_size: 32}
encoder:
  stages: {choices: [3, 4, 5]}
  width: {choices: [8, 16, 32]}
  blocks_per_stage: {choices: [1, 2, 3]}
  kernel_size: {choices: [1, 3, 5, 7], per_stage: true}
  norm: {choices: [batch, group]}
  activation: {choices: [relu, silu]}
attention:
  type: {choices: [none, se, spatial, cbam]}
skip: {choices: [none, fcn16s, fcn8s, unet_concat, unet_add]}
upsample: {choices: [bilinear, transposed]}
"""


def test_grid_on_a_huge_space_is_refused_before_anything_is_written(tmp_path: Path, store_tracker) -> None:
    from nasfcn.space import ENUMERATION_LIMIT, load_space, size_text
    from nasfcn.store import open_store, searches_frame

    huge = tmp_path / "huge.yaml"
    huge.write_text(HUGE_SPACE)
    size = load_space(huge).size()
    assert size > ENUMERATION_LIMIT
    db = f"sqlite:///{tmp_path / 'n.db'}"
    storage = tmp_path / "runs"
    result = runner.invoke(
        app,
        [
            "search",
            "--space",
            str(huge),
            "--strategy",
            "grid",
            "--name",
            "g",
            "--db",
            db,
            "--storage-path",
            str(storage),
        ],
    )
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert (
        f"--strategy grid: space huge has {size_text(size)} architectures, more than the 1,000,000" in message
    )
    assert "use a smaller space (fewer choices" in message
    assert "or another --strategy: random, tpe, nsga2, surrogate or zc" in message
    assert "Traceback" not in result.output
    assert searches_frame(open_store(db)).empty
    assert not storage.exists()


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``nasfcn ARGS`` through the entry point: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["nasfcn", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return stopped.value.code, capsys.readouterr().err


def test_a_nasfcn_error_from_any_command_is_one_masked_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from nasfcn.store import Store

    def refuse(self: Store) -> None:
        raise NasfcnError("postgresql://nasfcn:hunter2@db.example:5432/runs cannot be upgraded now")

    monkeypatch.setattr(Store, "upgrade", refuse)
    code, err = _main(monkeypatch, capsys, "db", "upgrade", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "cannot be upgraded now" in err
    assert "hunter2" not in err
    assert "Traceback" not in err


def test_a_bad_learning_rate_for_search_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _main(monkeypatch, capsys, "search", "--space", TINY, "--lr", "0")
    assert code == 2
    assert err.strip() == "invalid training recipe: lr must be > 0, got 0.0"
