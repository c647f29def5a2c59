"""``nasfcn arena``'s refusals: one line on stderr, exit code 2, before any table is read."""

from __future__ import annotations

from pathlib import Path

import optuna
from typer.testing import CliRunner

from nasfcn.catalogue import SCHEDULERS, Strategy
from nasfcn.cli import app
from nasfcn.search import SEARCHERS, optuna_strategy, unregister_strategy

runner = CliRunner()


def _refusal(args: list[str]) -> str:
    result = runner.invoke(app, ["arena", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_unknown_strategy_lists_the_registered_ones_with_a_new_one(tmp_path: Path) -> None:
    @optuna_strategy(Strategy("cli-arena-test", "random, registered by a test"))
    def _sampler(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)

    missing = tmp_path / "no-such-table.parquet"  # never opened: the names are checked first
    try:
        line = _refusal(["--table", str(missing), "--strategies", "random,cli-arena-tset"])
    finally:
        unregister_strategy("cli-arena-test")
    assert line.startswith("--strategies: unknown strategy 'cli-arena-tset' (did you mean 'cli-arena-test'?)")
    assert set(line.split("registered: ")[1].split(", ")) == {*SEARCHERS.names(), "cli-arena-test"}


def test_an_unknown_scheduler_lists_the_registered_ones(tmp_path: Path) -> None:
    line = _refusal(["--table", str(tmp_path / "t.parquet"), "--schedulers", "fifo,pbt"])
    assert line == f"--schedulers: unknown scheduler 'pbt'; registered: {', '.join(SCHEDULERS.names())}"


def test_a_reduced_fidelity_is_refused_before_the_table_is_read(tmp_path: Path) -> None:
    line = _refusal(["--table", str(tmp_path / "t.parquet"), "--fidelity", "resolution=0.5"])
    assert line.startswith("--fidelity 'resolution=0.5': nasfcn arena replays tables trained at full size")
    assert "only --fidelity epochs is allowed" in line


def test_a_missing_table_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "t.parquet"
    assert (
        _refusal(["--table", str(missing), "--db", f"sqlite:///{tmp_path / 'a.db'}"])
        == f"{missing}: no such file"
    )


def test_a_baseline_that_is_not_a_pair_is_refused_before_the_table_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-table.parquet"  # never opened: the pairs are checked first
    args = ["--table", str(missing), "--strategies", "tpe,random", "--schedulers", "asha"]
    assert _refusal([*args, "--baseline", "tpe+fifo"]) == (
        "--baseline 'tpe + fifo' is not one of the arena's pairs; it has tpe + asha, random + asha"
    )
    assert _refusal([*args, "--baseline", "tpe"]) == (
        "--baseline 'tpe': give one STRATEGY+SCHEDULER pair, e.g. random+fifo"
    )
    # The default may be absent when left unsaid (no p-values), not when the user names it.
    assert _refusal([*args, "--baseline", "random+fifo"]) == (
        "--baseline 'random + fifo' is not one of the arena's pairs; it has tpe + asha, random + asha"
    )
