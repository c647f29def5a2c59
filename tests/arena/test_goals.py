"""``benchmarks/arena_goals.py`` and ``benchmarks/search_efficiency.py`` on the arena's small table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nasfcn.arena import ArenaSearch, ArenaTable, per_repeat, target_of, wilcoxon
from nasfcn.search import SEARCHERS
from nasfcn.stats import holm
from nasfcn.table import load


def _rows(markdown: str, header: str) -> list[list[str]]:
    """The cells of the markdown table whose header line starts with ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.slow
def test_one_command_gives_the_headline_and_every_sweep_setting(
    load_script, table_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    goals = load_script("arena_goals", fresh=True)
    args = ["--table", str(table_files["arena8"]), "--repeats", "3", "--trials", "8"]
    done = goals.main([*args, "--concurrency", "2", "--out", str(tmp_path)])
    printed = capsys.readouterr()
    markdown = (tmp_path / "arena_goals.md").read_text()
    assert printed.out == markdown == done["markdown"]
    assert "ETA" in printed.err  # progress on stderr

    headline = _rows(markdown, "| pair |")
    assert [row[0] for row in headline] == ["random + fifo", "tpe + asha"]
    assert "epochs to target, tpe + asha / random + fifo" in markdown
    sweep = _rows(markdown, "| knob |")
    settings = [(row[0], row[1]) for row in sweep]
    # arena8 trains 4 epochs: a quarter is grace 1, so the graces are 1, 2, 3, each x factors 2, 3, 4
    asha = [s for k, s in settings if k.startswith("ASHA")]
    assert asha == [
        f"grace {g}{' (= epochs/4)' if g == 1 else ''}, factor {f}{' (default)' if (g, f) == (1, 2) else ''}"
        for g in (1, 2, 3)
        for f in (2, 3, 4)
    ]
    assert [s for k, s in settings if k == "TPE n_startup_trials"] == ["4 (default)", "8", "16"]
    # Optuna 5's TPESampler (nasfcn's tpe) is multivariate for one objective and has constant_liar on
    assert [s for k, s in settings if k.startswith("TPE multivariate")] == [
        "independent",
        "multivariate (default)",
        "multivariate + group",
    ]
    assert [s for k, s in settings if k == "TPE constant_liar (concurrency 2)"] == ["off", "on (default)"]
    # arena8's latency differs per architecture: it is NSGA-II's second objective
    assert [s for k, s in settings if k.startswith("NSGA-II")] == ["8 (default)", "16"]
    assert settings[0] == ("baseline", "random + fifo")
    versus = {(row[0], row[1]): row[-1] for row in sweep}
    assert (
        versus[("ASHA grace period x reduction factor", "grace 1 (= epochs/4), factor 2 (default)")] == "n/a"
    )
    assert versus[("TPE n_startup_trials", "4 (default)")] == "n/a"  # the default search itself
    assert versus[("baseline", "random + fifo")] == "n/a"
    assert versus[("TPE n_startup_trials", "8")] != "n/a"

    summary = json.loads((tmp_path / "arena_goals.json").read_text())
    assert summary == json.loads(json.dumps(done["json"]))
    assert len(summary["sweep"]["rows"]) == len(sweep)
    assert {row["repeats"] for row in summary["sweep"]["rows"]} == {3}
    assert [p["setting"] for p in summary["headline"]["pairs"]] == ["random + fifo", "tpe + asha"]
    # the one clearly best architecture is the target; the winner's curse is measured per pair
    assert summary["headline"]["target"]["reaching"] == 1
    assert all(p["winners_curse"]["median"] is not None for p in summary["headline"]["pairs"])
    # the sweep's strategies were registered for the run only
    assert not {"tpe-s8", "tpe-uv", "tpe-noliar", "nsga2-p16"} & set(SEARCHERS.names())


@pytest.mark.slow
def test_every_sweep_setting_is_tested_against_the_default_paired_by_seed(
    table_files: dict[str, Path], load_script
) -> None:
    goals = load_script("arena_goals", fresh=True)
    board = ArenaTable(load(table_files["arena8"]))
    head = goals.headline(board, target_of(board), repeats=6, trials=6, concurrency=2, seed=0)
    default = head.tpe.search
    planned = [goals.Setting("ASHA", "factor 2", default, default=True)]
    planned += [
        goals.Setting("ASHA", f"factor {f}", ArenaSearch("tpe", "asha", 6, 2, ("miou",), 1, f))
        for f in (3, 4)
    ]
    planned += [goals.Setting("TPE n_startup_trials", "4", default, default=True)]
    swept = goals.sweep(board, head, planned, repeats=6, seed=0)
    rows = {row.setting: row for row in swept.rows}

    def regrets(search: ArenaSearch) -> list[float]:
        results = goals.replays(board, [search], 6, 0)
        frame = per_repeat(results, head.target.value, swept.budget).sort_values("seed")
        return frame["regret_at_budget"].tolist()

    raw = [wilcoxon(regrets(rows[f"factor {f}"].search), regrets(default)) for f in (3, 4)]
    assert [rows[f"factor {f}"].p_vs_default for f in (3, 4)] == pytest.approx(raw)
    assert [rows[f"factor {f}"].p_vs_default_holm for f in (3, 4)] == pytest.approx(holm(raw))
    for setting in ("random + fifo", "factor 2", "4"):  # the baseline and the default search itself
        assert math.isnan(rows[setting].p_vs_default)
    table = _rows("\n".join(goals.sweep_markdown(swept)), "| knob |")
    header = next(line for line in goals.sweep_markdown(swept) if line.startswith("| knob |"))
    assert header.rstrip(" |").endswith("p vs default (Holm)")
    assert [row[-1] for row in table][1] == "n/a"  # the default row
    assert table[2][-1] == goals._p(rows["factor 3"].p_vs_default_holm)
    assert rows["factor 3"].as_dict()["p_vs_default_holm"] == pytest.approx(holm(raw)[0])


def test_the_sweep_repeats_are_cut_to_fit_and_say_so(load_script) -> None:
    goals = load_script("arena_goals", fresh=True)
    assert goals.plan_sweep_repeats(None, 100, 20, 0.3, 20.0) == (100, "")  # 600 s fit in 20 min
    repeats, note = goals.plan_sweep_repeats(None, 100, 20, 1.0, 20.0)
    assert repeats == 60
    assert note.startswith("the sweep ran 60 of 100 repeats")
    assert goals.plan_sweep_repeats(None, 100, 20, 10.0, 1.0)[0] == 20  # never below 20
    assert goals.plan_sweep_repeats(30, 100, 20, 10.0, 1.0)[0] == 30


def test_search_efficiency_replays_the_arena_goals_headline(
    load_script, table_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    efficiency, goals = load_script("search_efficiency", fresh=True), load_script("arena_goals", fresh=True)
    out = tmp_path / "efficiency.json"
    efficiency.main(
        ["--table", str(table_files["arena8"]), "--repeats", "3", "--trials", "6", "--json", str(out)]
    )
    printed = capsys.readouterr().out
    assert "epochs to target, tpe + asha / random + fifo" in printed
    board = ArenaTable(load(table_files["arena8"]))
    head = goals.headline(board, target_of(board), repeats=3, trials=6, concurrency=4, seed=0)
    assert json.loads(out.read_text()) == json.loads(json.dumps(head.as_dict()))


@pytest.mark.parametrize(
    ("args", "says"),
    [([], "give --table FILE"), (["--table", "t.parquet", "--train"], "give one of them")],
)
def test_search_efficiency_needs_a_table_or_train(
    load_script, args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        load_script("search_efficiency", fresh=True).main(args)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_a_target_no_architecture_reaches_is_one_line(
    load_script, table_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        load_script("arena_goals", fresh=True).main(
            ["--table", str(table_files["arena8"]), "--target", "0.99"]
        )
    assert exit_.value.code == 2
    assert "--target '0.99': no architecture of" in capsys.readouterr().err
