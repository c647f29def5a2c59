"""``benchmarks/confirm_arena.py`` on the small table where a lucky run fools the best single run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasfcn.arena import ArenaTable
from nasfcn.confirm import ConfirmPolicy
from nasfcn.table import Table

SMALL = ["--repeats", "4", "--trials", "10", "--concurrency", "2", "--calibrate", "2"]


def _rows(markdown: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| strategy |"))
    return [
        [c.strip() for c in line.strip("|").split("|")] for line in lines[start + 2 :] if line.startswith("|")
    ]


def test_every_setting_is_measured_against_the_unconfirmed_search(
    load_script, lucky_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script("confirm_arena", fresh=True)
    args = ["--table", str(lucky_file), *SMALL, "--strategies", "random,tpe", "--settings", "1x1,2x1,2x2"]
    done = bench.main([*args, "--out", str(tmp_path)])
    printed = capsys.readouterr()
    markdown = (tmp_path / "confirm_arena.md").read_text()
    assert printed.out == markdown == done["markdown"]
    assert "ETA" in printed.err  # progress on stderr
    rows = _rows(markdown)
    assert [(r[0], r[1]) for r in rows] == [
        (strategy, setting)
        for strategy in ("random", "tpe")
        for setting in ("none", "top 1 x 1 seeds", "top 2 x 1 seeds", "top 2 x 2 seeds")
    ]
    summary = json.loads((tmp_path / "confirm_arena.json").read_text())
    assert summary == json.loads(json.dumps(done["json"]))
    for row in summary["rows"]:
        assert row["repeats"] == 4
        if row["setting"] == "none":
            assert (row["trials"], row["confirm_epochs"], row["p_value"]) == (10, 0, None)
            assert row["curse_before"] == row["curse_after"]  # the export is the best single run
        else:
            assert row["trials"] < 10  # the confirmation's epochs come out of the search's trials
            assert 0 < row["confirm_epochs"] <= 2 * 2 * 4
            assert row["p_value"] is not None


def test_the_trial_count_comes_closest_to_the_baseline_epochs(load_script, lucky_table: Table) -> None:
    bench = load_script("confirm_arena", fresh=True)
    replay = bench.Replayer(ArenaTable(lucky_table), 2, lambda result: None)
    policy, seeds = ConfirmPolicy(2, 2), [0, 1, 2]

    def median(trials: int) -> float:
        return float(np.median(bench.total_epochs(replay(replay.search("random", trials, policy), seeds))))

    goal = float(np.median(bench.total_epochs(replay(replay.search("random", 16, None), seeds))))
    chosen = bench.equal_trials(replay, "random", policy, 16, goal, seeds)
    assert 1 < chosen < 16
    assert median(chosen) <= goal < median(chosen + 1) or median(chosen - 1) < goal <= median(chosen)
    assert abs(median(chosen) - goal) <= min(abs(median(chosen - 1) - goal), abs(median(chosen + 1) - goal))


def test_a_confirmation_the_lucky_run_fools_lowers_the_curse(load_script, lucky_table: Table) -> None:
    """Against the replay's own best single run, the confirmed export's curse is never larger."""
    bench = load_script("confirm_arena", fresh=True)
    replay = bench.Replayer(ArenaTable(lucky_table), 2, lambda result: None)
    results = replay(replay.search("random", 12, ConfirmPolicy(2, 1)), range(8))
    figures = [bench.per_replay(r, 0.69) for r in results]
    assert all(f["curse_after"] <= f["curse_before"] + 1e-9 for f in figures)
    assert any(f["regret"] < f["single_regret"] for f in figures)  # seed 7: the steady network wins


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--settings", "2x3"], "the table has 3 seeds, so at most 2"),
        (["--settings", "2y3"], "give K x S settings as 1x1,3x2"),
        (["--calibrate", "0"], "--calibrate must be >= 1, got 0"),
    ],
)
def test_a_setting_the_table_cannot_replay_is_one_line(
    load_script, lucky_file: Path, extra: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        load_script("confirm_arena", fresh=True).main(["--table", str(lucky_file), *extra])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err
