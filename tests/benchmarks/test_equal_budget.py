"""``benchmarks/equal_budget.py``: aggregation, CIs, the markdown table and resuming, on made-up cells."""

from __future__ import annotations

import io
import json
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def eb(load_script) -> ModuleType:
    return load_script("equal_budget")


# Test mIoU per method and seed on shapes at 5 minutes, and one seed of photos.
SCORES = {
    "nasfcn": [0.62, 0.66, 0.64],
    "random": [0.55, 0.60, 0.59],  # margins 7, 6, 5 points: met
    "reference": [0.61, 0.64, 0.62],  # margins 1, 2, 2: not met
    "baseline": [0.60, 0.63, 0.62],  # margins 2, 3, 2: mean 2.33, not met
}


def _cells(eb: ModuleType) -> list:
    cells = [
        eb.Cell("shapes", 5.0, seed, method, test_miou=score, val_miou=score + 0.05, wall_s=300.0)
        for method, scores in SCORES.items()
        for seed, score in enumerate(scores)
    ]
    cells.append(eb.Cell("photos", 5.0, 0, "nasfcn", test_miou=0.5, val_miou=0.55, wall_s=300.0))
    cells.append(eb.Cell("photos", 5.0, 0, "random", test_miou=0.4, val_miou=0.45, wall_s=300.0))
    cells.append(eb.Cell("photos", 5.0, 1, "random", test_miou=0.3, val_miou=0.35, wall_s=300.0))  # unpaired
    return cells


def _table(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_means_cis_and_paired_margins(eb):
    shapes, photos = eb.aggregate(_cells(eb))
    assert (shapes.data, shapes.minutes) == ("shapes", 5.0)
    nasfcn = shapes.methods["nasfcn"]
    assert nasfcn.n == 3
    assert nasfcn.mean == pytest.approx(0.64)
    # t-interval: sd 0.02, t(0.975, 2) = 4.303, half width 4.303 * 0.02 / sqrt(3)
    assert nasfcn.ci_high - nasfcn.mean == pytest.approx(4.303 * 0.02 / 3**0.5, rel=1e-3)
    margins = {d.method: d for d in shapes.differences}
    assert margins["random"].summary.mean == pytest.approx(6.0)
    assert margins["random"].met
    assert margins["baseline"].summary.mean == pytest.approx(7 / 3)
    assert not margins["baseline"].met
    assert not margins["reference"].met
    assert photos.methods["random"].n == 2
    assert {d.method: d.summary.n for d in photos.differences} == {"random": 1}  # paired on seed 0 only
    assert photos.differences[0].summary.mean == pytest.approx(10.0)


def test_markdown_table_has_a_row_per_dataset_and_budget(eb):
    rows = _table("\n".join(eb.markdown(eb.aggregate(_cells(eb)))))
    header, _, shapes, photos = rows
    assert header[:6] == ["dataset", "budget", *eb.TITLES.values()]
    assert shapes[:3] == ["shapes", "5 min", "0.640 [0.590, 0.690]"]
    assert shapes[6] == "+6.0 [+3.5, +8.5] met"
    assert shapes[8].endswith("not met")
    assert photos[2] == "0.500 (n=1)"
    assert photos[4] == "—"  # no reference cells
    assert photos[6] == "+10.0 (n=1, met)"


def test_json_is_strict_and_says_which_goals_are_met(eb):
    cells = _cells(eb)
    result = json.loads(json.dumps(eb.as_json(eb.aggregate(cells), cells), allow_nan=False))
    shapes = result["rows"][0]
    assert shapes["default_minus"]["random"]["met"] is True
    assert shapes["default_minus"]["reference"]["met"] is False
    assert result["rows"][1]["test_miou"]["nasfcn"]["ci_low"] is None  # one seed: no interval
    assert len(result["cells"]) == len(cells)


def test_reference_epochs_fill_what_the_probe_left(eb):
    # 300 s budget; the probe took 40 s of which 10 s was its epoch: 30 s start-up again, 230 s of epochs
    assert eb.reference_epochs(300.0, 40.0, 10.0) == 23
    assert eb.reference_epochs(60.0, 70.0, 10.0) == 1  # never fewer than one


def test_a_rerun_skips_saved_cells_and_redoes_unfinished_ones(eb, tmp_path, monkeypatch):
    ran = []

    def fake(ctx, cell, work):
        ran.append(cell.name)
        (work / "partial").write_text("x")
        return {"test_miou": 0.5, "val_miou": 0.6, "wall_s": 1.0, "note": "made up"}

    monkeypatch.setitem(eb.RUNNERS, "nasfcn", fake)
    monkeypatch.setitem(eb.RUNNERS, "random", fake)
    cells = eb.planned(["shapes"], [1.0], 2, ["nasfcn", "random"])
    ctx = eb.Context(tmp_path, 2, io.StringIO())
    assert eb.run_all(ctx, cells[:3])[1] == []
    assert len(ran) == 3
    (tmp_path / "work" / cells[3].name).mkdir(parents=True)  # an interrupted attempt: no cell file
    ran.clear()
    done, failures = eb.run_all(ctx, cells)
    assert ran == [cells[3].name]
    assert failures == []
    assert [cell.test_miou for cell in done] == [0.5] * 4
    assert done[0].detail == {"note": "made up"}
    assert "ETA" in ctx.log.getvalue()


def test_a_failed_cell_is_named_and_the_others_still_run(eb, tmp_path, monkeypatch):
    def fake(ctx, cell, work):
        if cell.seed == 0:
            raise eb.CellError(f"{cell.name}: a command exited 1")
        return {"test_miou": 0.5, "val_miou": 0.6, "wall_s": 1.0}

    monkeypatch.setitem(eb.RUNNERS, "nasfcn", fake)
    cells = eb.planned(["shapes"], [1.0], 3, ["nasfcn"])
    ctx = eb.Context(tmp_path, 2, io.StringIO())
    done, failures = eb.run_all(ctx, cells)
    assert failures == [f"{cells[0].name}: a command exited 1"]
    assert [cell.test_miou for cell in done] == [None, 0.5, 0.5]  # seeds 1 and 2 ran after the failure
    assert eb.load_cell(tmp_path, cells[0]) is None  # not saved: a rerun retries it
    assert "FAILED" in ctx.log.getvalue()


def test_main_writes_the_results_then_fails_naming_the_failed_cells(eb, tmp_path, monkeypatch):
    def fake(ctx, cell, work):
        if cell.method == "random":
            raise eb.CellError(f"{cell.name}: the export has no test figures")
        return {"test_miou": 0.5, "val_miou": 0.6, "wall_s": 1.0}

    monkeypatch.setitem(eb.RUNNERS, "nasfcn", fake)
    monkeypatch.setitem(eb.RUNNERS, "random", fake)
    argv = ["--data", "shapes", "--minutes", "1", "--seeds", "1", "--methods", "nasfcn,random"]
    with pytest.raises(SystemExit, match=r"1 cell\(s\) failed.*\n  shapes-1m-s0-random: the export"):
        eb.main([*argv, "--out", str(tmp_path)])
    assert json.loads((tmp_path / "equal_budget.json").read_text())  # what finished is reported


def test_bad_options_are_one_line_usage_errors(eb, capsys):
    for argv, says in (
        (["--data", "voc:x"], "give generated datasets"),
        (["--minutes", "5,abc"], "give positive minutes"),
        (["--methods", "nasfcn,grid"], "give one or more of nasfcn, random, reference, baseline"),
    ):
        with pytest.raises(SystemExit) as info:
            eb.main([*argv, "--out", "unused"])
        assert info.value.code == 2
        assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("minutes", "runs", "exported"), [(5.0, ["-probe", ""], ""), (0.01, ["-probe"], "-probe")]
)
def test_references_train_for_what_the_probe_leaves(eb, tmp_path, monkeypatch, minutes, runs, exported):
    calls, exports = [], []

    class Ctx:
        def nasfcn(self, *argv, log_name):
            calls.append((argv[argv.index("--name") + 1], argv[argv.index("--epochs") + 1]))

    def export(ctx, name, url, work):
        exports.append(name)
        return {"test_miou": 0.5, "val_miou": 0.6, "arch_id": "x"}

    monkeypatch.setattr(eb, "data_folder", lambda ctx, spec, seed: tmp_path)
    monkeypatch.setattr(eb, "_epoch_seconds", lambda url, name: 10.0)
    monkeypatch.setattr(eb, "_exported", export)
    cell = eb.Cell("shapes", minutes, 0, "reference")
    result = eb.run_reference(Ctx(), cell, tmp_path)
    assert [name for name, _ in calls] == [cell.name + suffix for suffix in runs]
    assert calls[0][1] == "1"  # the probe: one epoch
    assert exports == [cell.name + exported]
    if len(runs) == 2:  # 300 s less the probe's (near zero) time, at 10 s an epoch
        assert calls[1][1] == str(result["epochs"])
        assert 28 <= result["epochs"] <= 30


def test_search_args_reach_the_searches_and_a_search_cell_of_other_args_runs_again(eb, tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(eb.Context, "command", lambda self, argv, log_name: commands.append(argv))
    monkeypatch.setattr(eb, "_exported", lambda ctx, name, url, work: {"test_miou": 0.5, "val_miou": 0.6})
    ctx = eb.Context(tmp_path, 2, io.StringIO(), ("--epochs", "32"))
    search, reference = eb.planned(["shapes"], [5.0], 1, ["random", "reference"])
    result = eb.run_search(ctx, search, tmp_path, "random")
    assert commands[-1][-4:] == ["--strategy", "random", "--epochs", "32"]
    assert result["search_args"] == ["--epochs", "32"]
    saved = eb.Cell("shapes", 5.0, 0, "random", test_miou=0.5, val_miou=0.6, wall_s=1.0, detail=result)
    eb.save_cell(tmp_path, saved)
    eb.save_cell(tmp_path, eb.Cell("shapes", 5.0, 0, "reference", test_miou=0.7, val_miou=0.7, wall_s=1.0))
    assert eb.load_cell(tmp_path, search, ["--epochs", "32"]) == saved
    assert eb.load_cell(tmp_path, search) is None  # the default search: not this cell
    assert eb.load_cell(tmp_path, reference) is not None  # no search: its args do not matter
    assert eb.load_cell(tmp_path, reference, ["--epochs", "32"]) is not None
