"""Loading a search for the leaderboard, the table rows, the messages, and the static page as text."""

from __future__ import annotations

import html
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from leaderboard.data import (
    BenchmarkBoard,
    Board,
    benchmark_message,
    board_message,
    export_command,
    filter_trials,
    load_benchmark_board,
    load_board,
    load_view,
    with_seed_spread,
)
from leaderboard.static import render
from leaderboard.table import (
    compact,
    format_cell,
    pretty_genotype,
    records,
    seed_spread_text,
    status_label,
    table_columns,
    table_frame,
)
from nasfcn.space import load_space
from nasfcn.store import Store, create_search, finish_trial, upsert_trial

XSS_NAME = "<script>window.__x=1</script><img src=x onerror=window.__y=1>"


def test_load_board_reads_the_search_and_its_dataset(handmade_db: str) -> None:
    board = load_board(Store(handmade_db), "alpha")
    assert board.search == "alpha"
    assert board.status == "completed"
    assert list(board.trials["number"]) == [0, 1, 2, 3]  # ranked: 0.6, 0.2, then no result
    assert list(board.trials["status"]) == ["completed", "stopped_early", "failed", "rejected_by_constraint"]
    assert board.trials["finished_at"].notna().all()
    assert board.class_names == ("background", "<b>circle</b>", "square")
    best = board.trials.iloc[0]["trial_id"]
    at_best = board.per_class[board.per_class["trial_id"] == best].set_index("class_index")["iou"]
    assert at_best[1] == pytest.approx(0.6)  # the best epoch's, not the last one's (0.5)
    assert math.isnan(at_best[2])
    assert len(board.scored) == 2
    assert set(board.searches["name"]) == {"alpha", "beta", "lonely", "broken", "empty"}
    assert board.message() is None


def test_a_cached_trial_shows_the_curve_and_classes_it_reused(handmade_db: str) -> None:
    board = load_board(Store(handmade_db), "beta")
    cached = board.trials[board.trials["status"] == "cached"].iloc[0]
    curve = board.curve(int(cached["trial_id"]))
    assert list(curve["val_miou"]) == pytest.approx([0.3, 0.6, 0.5])
    assert set(curve["status"]) == {"cached"}
    assert set(curve["number"]) == {cached["number"]}
    assert int(cached["trial_id"]) in set(board.per_class["trial_id"])
    # Across searches on shapes: the architecture trained in alpha and reused in beta appears once.
    assert board.across["arch_id"].is_unique
    assert board.across.set_index("arch_id").loc[cached["arch_id"], "search"] == "alpha"


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("empty", "No trials yet: this page fills in as the search runs."),
        ("lonely", "Only one trial so far: nothing to compare it with yet."),
        ("broken", "No trial has a validation result yet (2 failed): the table lists each trial's error."),
    ],
)
def test_searches_with_nothing_to_compare_say_so(handmade_db: str, search: str, expected: str) -> None:
    assert load_board(Store(handmade_db), search).message() == expected


def test_board_message_for_finished_searches() -> None:
    empty = pd.DataFrame({"status": [], "best_miou": []})
    assert board_message(empty, "completed") == "This search has no trials."
    failed = pd.DataFrame({"status": ["failed", "rejected_by_constraint"], "best_miou": [np.nan, np.nan]})
    assert board_message(failed, "completed") == (
        "No trial has a validation result (1 failed, 1 rejected by constraint): "
        "the table lists each trial's error."
    )


def test_filter_trials_by_status_and_knob_values() -> None:
    trials = pd.DataFrame(
        {
            "status": ["completed", "failed", "completed"],
            "upsample": ["bilinear", "bilinear", "transposed"],
            "width": [4, 6, 6],
        }
    )
    assert list(filter_trials(trials).index) == [0, 1, 2]
    assert list(filter_trials(trials, ["completed"]).index) == [0, 2]
    assert list(filter_trials(trials, [], {"upsample": ["bilinear"], "width": ["6"]}).index) == [1]
    assert list(filter_trials(trials, ["completed"], {"upsample": []}).index) == [0, 2]


def test_export_command_is_quoted_for_the_shell() -> None:
    assert export_command("demo", 3) == "nasfcn export --search demo --trial 3"
    assert export_command(XSS_NAME, 0, "postgresql+psycopg://u:***@h/db") == (
        f"nasfcn export --search '{XSS_NAME}' --trial 0 --db 'postgresql+psycopg://u:***@h/db'"
    )


def test_table_rows_mark_statuses_and_explain_missing_results(handmade_db: str) -> None:
    board = load_board(Store(handmade_db), "beta")
    rows = table_frame(board.trials).set_index("trial")
    assert rows.loc[0, "status"] == "↺ cached"
    assert rows.loc[0, "note"].startswith("result reused from trial id ")
    alpha = table_frame(load_board(Store(handmade_db), "alpha").trials)
    assert list(alpha["status"]) == ["✓ completed", "▼ stopped early", "✕ failed", "⊘ rejected"]
    assert list(alpha["note"])[2:] == [
        "TrainingDiverged: loss is nan",
        "params 4e3 exceeds --max-params 3000",
    ]
    plain = records(alpha)
    assert plain[2]["best_miou"] is None  # NaN: an empty cell that sorts last
    assert isinstance(plain[0]["params"], int)


def test_notes_name_reference_designs_and_errors() -> None:
    trials = pd.DataFrame(
        {
            "trial_id": [1, 2],
            "rank": [1.0, np.nan],
            "number": [0, 1],
            "arch_id": ["a", "b"],
            "status": ["completed", "failed"],
            "best_miou": [0.5, np.nan],
            "best_pixel_accuracy": [0.9, np.nan],
            "params": [1, 2],
            "flops": [1, 2],
            "latency_ms": [1.0, 2.0],
            "epochs_trained": [1, 0],
            "skip": ["none", "none"],
            "upsample": ["bilinear", "bilinear"],
            "attention": ["none", "none"],
            "kernels": ["3/3", "3/3"],
            "stages": [2, 2],
            "width": [4, 4],
            "reference": ["fcn8s", None],
            "error": [None, "RuntimeError: boom"],
            "cached_from": [None, None],
        }
    )
    assert list(table_frame(trials)["note"]) == ["reference design fcn8s", "RuntimeError: boom"]
    final = trials.assign(extends=[np.nan, 3.0], error=[None, None])
    assert list(table_frame(final)["note"]) == [
        "reference design fcn8s",
        "final run: trial 3's network trained for longer",
    ]


def test_genotypes_print_indented_with_per_stage_lists_on_one_line() -> None:
    text = pretty_genotype('{"encoder": {"kernel_size": [3, 5, 7], "downsample": "maxpool"}, "skip": "a, b"}')
    assert text.splitlines() == [
        "{",
        '  "encoder": {',
        '    "downsample": "maxpool",',
        '    "kernel_size": [3, 5, 7]',
        "  },",
        '  "skip": "a, b"',
        "}",
    ]


def test_cells_and_counts_format_compactly() -> None:
    assert format_cell(np.nan, "ratio") == "–"
    assert format_cell(0.61234, "ratio") == "0.612"
    assert format_cell(2.0, "int") == "2"
    assert format_cell(12_345_678, "count") == "12.3M"
    assert compact(999) == "999"
    assert compact(999.6) == "1k"
    assert status_label("stopped_early") == "▼ stopped early"
    assert status_label("something_new") == "something_new"


def board_data(page: str) -> dict:
    """The static page's one data block (rows, details and figures are drawn from it)."""
    (block,) = re.findall(r'<script type="application/json" id="board-data">(.*?)</script>', page, re.S)
    return json.loads(block)


def test_static_page_is_self_contained_with_every_trial_and_detail(handmade_db: str) -> None:
    board = load_board(Store(handmade_db), "alpha")
    page = render(board)
    assert page.count("window.PlotlyConfig") == 1  # Plotly's JavaScript inlined exactly once
    assert "<script src" not in page
    assert 'src="http' not in page
    data = board_data(page)
    assert data["table"]["ids"] == list(board.trials["trial_id"])  # every trial, in rank order
    assert data["detail"]["numbers"] == list(board.trials["number"])
    assert data["detail"]["export"] == ["nasfcn export --search alpha --trial", f"--db {handmade_db}"]
    assert "<b>circle</b>" not in page  # a class name is text, in the figures too:
    assert "\\u003cb\\u003ecircle" in page  # the data block's raw text, escaped for HTML
    assert data["class_names"][1] == "<b>circle</b>"  # the page escapes it for Plotly (esc in board.js)
    assert "&lt;b&gt;circle&lt;/b&gt;" in json.dumps(data["figures"])  # escaped for Plotly
    assert "TrainingDiverged: loss is nan" in data["detail"]["errors"]


def test_static_page_escapes_every_stored_text(handmade_db: str) -> None:
    store = Store(handmade_db)
    search = create_search(store, XSS_NAME, "shapes", config={"class_names": ["<i>a</i>"]})
    genotype = load_space("search_spaces/fcn_tiny.yaml").sample(0)
    trial = upsert_trial(store, search, 0, genotype, dataset="shapes", recipe={}, status="running")
    finish_trial(store, trial, "failed", error="<img src=x onerror=alert(1)>")
    page = render(load_board(store, XSS_NAME))
    assert "<script>window.__x" not in page
    assert "<img src=x" not in page
    assert f'<span id="search-name">{html.escape(XSS_NAME)}</span>' in page
    assert f"<title>nasfcn leaderboard · {html.escape(XSS_NAME)}</title>" in page
    data = board_data(page)  # stored text is data there, put into the page with textContent
    assert data["detail"]["errors"] == ["<img src=x onerror=alert(1)>"]
    assert data["search"] == XSS_NAME
    assert "No trial has a validation result yet (1 failed)" in page


def test_static_page_of_a_search_without_trials_is_a_message(handmade_db: str) -> None:
    page = render(load_board(Store(handmade_db), "empty"))
    assert '<p class="message" id="message">No trials yet' in page
    assert "window.PlotlyConfig" not in page  # nothing to draw, nothing to load
    assert 'id="trials"' not in page


def _spread(rows: list[tuple[str, str, int, float, float]]) -> pd.DataFrame:
    """A seed_spread_frame: (trial_key, recipe, seeds, mean, sd) per row."""
    return pd.DataFrame(
        [
            {"arch_id": "a", "trial_key": key, "recipe": recipe, "seeds": n, "miou_mean": m, "miou_std": sd}
            for key, recipe, n, m, sd in rows
        ]
    )


def test_seed_spread_prefers_the_searchs_recipe_then_the_most_seeds() -> None:
    space = load_space("search_spaces/fcn_tiny.yaml")
    genotypes = [space.sample(i) for i in range(4)]
    trials = pd.DataFrame({"genotype_json": [g.to_json() for g in genotypes], "best_miou": [0.5] * 4})
    keys = [g.trial_key for g in genotypes]
    spread = _spread(
        [
            (keys[0], "A", 2, 0.61, 0.01),  # the search's recipe: chosen over more seeds elsewhere
            (keys[0], "B", 5, 0.70, 0.02),
            (keys[1], "B", 3, 0.40, 0.03),  # another recipe only: shown, flagged
            (keys[1], "C", 4, 0.45, 0.04),
            (keys[2], "A", 1, 0.90, np.nan),  # one seed is no spread
        ]
    )
    out = with_seed_spread(trials, spread, "A")
    assert list(out["seeds_n"].fillna(0)) == [2, 4, 0, 0]
    assert list(out["seeds_mean"])[:2] == pytest.approx([0.61, 0.45])
    assert list(out["seeds_other_recipe"]) == [False, True, False, False]
    assert [seed_spread_text(row) for row in out.to_dict("records")] == [
        "0.610 ± 0.010 (2)",
        "0.450 ± 0.040 (4) other recipe",
        None,
        None,
    ]
    empty = with_seed_spread(trials, pd.DataFrame(columns=list(spread.columns)), "A")
    assert empty["seeds_n"].isna().all()


def test_the_search_board_shows_seed_spread_where_repeated_runs_exist(benchmark_db: str) -> None:
    board = load_board(Store(benchmark_db), "s")
    rows = table_frame(board.trials).set_index("note")
    # mine and unet ran on shapes with seeds 0-2 in the benchmark, with the search's recipe
    assert rows.loc["", "seeds"] == "0.810 ± 0.010 (3)"
    assert rows.loc["reference design unet", "seeds"] == "0.803 ± 0.015 (3)"
    assert "seeds" in [c.key for c in table_columns(table_frame(board.trials))]


def test_without_repeated_runs_the_seed_column_is_left_out(handmade_db: str) -> None:
    frame = table_frame(load_board(Store(handmade_db), "alpha").trials)
    assert frame["seeds"].isna().all()
    assert "seeds" not in [c.key for c in table_columns(frame)]
    page = render(load_board(Store(handmade_db), "alpha"))
    assert "seeds: mean" not in page


def test_a_benchmark_loads_as_the_benchmark_view(benchmark_db: str) -> None:
    store = Store(benchmark_db)
    board = load_view(store, "bench")
    assert isinstance(board, BenchmarkBoard)
    assert isinstance(load_view(store, "s"), Board)
    assert board.datasets == ("shapes", "digits")  # the benchmark's order
    assert board.message() is None
    assert board.summary() == (
        "3 architectures x 2 datasets x 3 seeds, 1 epoch each · 18 runs: 17 completed, 1 failed"
    )
    assert board.report_command() == f"nasfcn benchmark report bench --out bench.md --db {benchmark_db}"
    assert list(board.failures()["label"]) == ["fcn8s"]
    assert load_benchmark_board(store, "bench").results.equals(board.results)


def test_benchmark_table_has_per_dataset_columns_in_aggregated_rank_order(benchmark_db: str) -> None:
    board = load_view(Store(benchmark_db), "bench")
    columns = board.columns
    assert [c.key for c in columns[:3]] == ["mean_rank", "label", "arch_id"]
    assert [c.group for c in columns[3:]] == ["shapes"] * 5 + ["digits"] * 5
    assert [c.title for c in columns[3:8]] == ["rank", "val mIoU ± sd", "95% CI", "runs", "tie group"]
    table = board.table().set_index("label")
    # shapes ranks: mine 1, unet 2, fcn8s 3; digits: unet 1, mine 2, fcn8s 3. Mean ranks 1.5, 1.5, 3;
    # the tie goes to the higher mean mIoU over datasets (unet).
    assert list(table.index) == ["unet (ref)", "mine", "fcn8s (ref)"]
    assert list(table["mean_rank"]) == [1.5, 1.5, 3.0]
    assert list(table["d0_rank"]) == [2, 1, 3]
    assert list(table["d1_rank"]) == [1, 2, 3]
    assert table.loc["mine", "d0_miou"] == "0.810 ± 0.010"
    low, high = (0.81 - 4.302653 * 0.01 / 3**0.5, 0.81 + 4.302653 * 0.01 / 3**0.5)
    assert table.loc["mine", "d0_ci"] == f"[{low:.3f}, {high:.3f}]"
    assert table.loc["fcn8s (ref)", "d1_runs"] == "2 (1 failed)"
    assert table.loc["unet (ref)", "d0_group"] == "1="  # tied with mine, the best on shapes
    assert table.loc["mine", "d0_group"] == "1="
    assert table.loc["fcn8s (ref)", "d0_group"] == "2"
    assert table.loc["mine", "d1_group"] == "2"
    assert bool(table.loc["unet (ref)", "d0_tied"])
    assert not table.loc["fcn8s (ref)", "d0_tied"]


@pytest.mark.parametrize(
    ("benchmark", "expected"),
    [
        ("empty", "No runs yet: this page fills in as the benchmark runs."),
        (
            "broken",
            "No run has a validation result (2 failed): the failed runs are listed with their errors.",
        ),
        ("single", "One run per architecture and dataset so far: no spread, confidence interval or tie test"),
    ],
)
def test_benchmarks_with_nothing_to_compare_say_so(benchmark_db: str, benchmark: str, expected: str) -> None:
    board = load_view(Store(benchmark_db), benchmark)
    assert board.message().startswith(expected)
    page = render(board)
    assert html.escape(expected) in page


def test_benchmark_message_for_finished_benchmarks() -> None:
    empty = pd.DataFrame(columns=["arch_id", "dataset", "seed", "status", "best_miou"])
    assert benchmark_message(empty, "completed") == "This benchmark has no runs."
    assert benchmark_message(empty, "running").startswith("No runs yet")


def test_static_benchmark_page_shows_table_plots_method_and_report(benchmark_db: str) -> None:
    page = render(load_view(Store(benchmark_db), "bench"))
    assert '<span id="search-name">bench</span>' in page
    assert page.count("window.PlotlyConfig") == 1  # Plotly inlined once, for both plots
    assert "<script src" not in page
    body = page.split('id="benchmark-table"')[1].split("</table>")[0]
    assert body.count("<tr>") == 2 + 3  # two header rows, one row per architecture
    assert '<th colspan="5" class="dataset" scope="colgroup">shapes</th>' in body
    assert '<td class="tied">1=</td>' in body
    assert 'id="dataset-0"' in page
    assert 'id="dataset-1"' in page
    assert "paired t-test" in page
    assert "Holm" in page
    assert '<code id="report-command">nasfcn benchmark report bench --out bench.md' in page
    assert html.escape("RuntimeError: <b>out of memory</b>") in page
    assert "<b>out of memory</b>" not in page
    assert 'id="trials"' not in page  # not the search board


def test_static_benchmark_page_escapes_stored_text(benchmark_db: str) -> None:
    store = Store(benchmark_db)
    bench = create_search(
        store,
        XSS_NAME,
        "<i>data</i>",
        config={"datasets": ["<i>data</i>"], "seeds": 2, "plan_archs": []},
        kind="benchmark",
    )
    genotype = load_space("search_spaces/fcn_tiny.yaml").sample(0)
    trial = upsert_trial(store, bench, 0, genotype, dataset="<i>data</i>", recipe={}, status="running")
    finish_trial(store, trial, "failed", error="<img src=x onerror=alert(1)>")
    page = render(load_view(store, XSS_NAME))
    assert "<script>window.__x" not in page
    assert "<img src=x" not in page
    assert "<i>data</i>" not in page
    assert f'<span id="search-name">{html.escape(XSS_NAME)}</span>' in page
    assert html.escape("<img src=x onerror=alert(1)>") in page


def test_static_page_ranks_confirmed_networks_by_pooled_mean_with_tie_groups(confirmed_search) -> None:
    from nasfcn.store import leaderboard_frame, set_test_metrics

    store = confirmed_search()
    trial = int(leaderboard_frame(store, "conf").set_index("number").loc[7, "trial_id"])
    set_test_metrics(store, trial, {"miou": 0.55, "images": 32})
    board = load_board(store, "conf")
    table = board_data(render(board))["table"]
    numbers = dict(zip(board.trials["trial_id"], board.trials["number"], strict=True))
    assert [numbers[i] for i in table["ids"]] == [7, 1, 6, 9, 2, 8, 0, 5, 4, 3]  # B, D, A, then C
    assert table["sort"]["rank"] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    keys = [c["key"] for c in table["columns"]]
    assert keys.index("test_miou") == keys.index("best_miou") + 1  # test beside val
    assert table["sort"]["test_miou"][0] == 0.55
    assert table["sort"]["test_miou"][1] is None
    confirmed = table["cells"]["confirmed"]
    cells = confirmed if isinstance(confirmed, list) else [confirmed["values"][i] for i in confirmed["index"]]
    assert cells[0] == "0.750 ± 0.010 [0.725, 0.775] (3), tie group 1"
    assert cells[6].endswith("(3), tie group 1")  # A's wide interval reaches the leader's
    assert cells[3].endswith("(3), tie group 2")
    assert cells[9] == "–"  # C was not confirmed: a blank cell


def test_static_page_of_a_search_without_confirmation_has_no_confirmed_column(handmade_db: str) -> None:
    table = board_data(render(load_board(Store(handmade_db), "alpha")))["table"]
    assert "confirmed" not in [c["key"] for c in table["columns"]]


def test_seed_spread_of_trials_sharing_a_genotype_is_each_ones_alone() -> None:
    space = load_space("search_spaces/fcn_tiny.yaml")
    genotypes = [space.sample(i) for i in range(3)]
    order = [2, 0, 1, 0, 0, 2, 1, 1, 0, 2, 2, 0]  # an arena's trials re-run a few networks
    trials = pd.DataFrame(
        {
            "arch_id": [genotypes[k].arch_id for k in order],
            "genotype_json": [genotypes[k].to_json() for k in order],
            "best_miou": [0.5] * len(order),
        }
    )
    keys = [g.trial_key for g in genotypes]
    spread = _spread([(keys[0], "A", 3, 0.61, 0.01), (keys[1], "B", 2, 0.40, 0.03)])
    spread.loc[1, "arch_id"] = genotypes[1].arch_id
    spread.loc[0, "arch_id"] = genotypes[0].arch_id
    out = with_seed_spread(trials, spread, "A")
    for k, genotype in enumerate(genotypes):
        alone = with_seed_spread(trials[trials["arch_id"] == genotype.arch_id].head(1), spread, "A")
        mine = out[trials["arch_id"] == genotype.arch_id]
        for column in ("seeds_n", "seeds_mean", "seeds_std", "seeds_other_recipe"):
            assert mine[column].tolist() == pytest.approx(alone[column].tolist() * len(mine), nan_ok=True), k
    assert out["seeds_n"].fillna(0).tolist() == [{0: 3, 1: 2, 2: 0}[k] for k in order]
