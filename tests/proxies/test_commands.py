"""nasfcn proxies evaluate, end to end on a small table file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats
from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.proxies import score, table_candidates
from nasfcn.table import load

runner = CliRunner()


@pytest.mark.slow
def test_evaluate_writes_the_figures_as_json_and_one_scatter_per_proxy(
    hand_table: tuple, tmp_path: Path
) -> None:
    path = hand_table[0]
    out, page = tmp_path / "proxies.json", tmp_path / "proxies.html"
    args = ["proxies", "evaluate", "--table", str(path), "--names", "params,synflow", "--names", "naswot"]
    result = runner.invoke(app, [*args, "--batch-size", "4", "--json", str(out), "--html", str(page)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["source"] == str(path)
    assert figures["archs"] == 6
    assert figures["batch"] == {"images": 4, "image_size": [32, 32], "seed": 0}
    assert list(figures["proxies"]) == ["params", "synflow", "naswot", "ensemble:all"]
    scores = score(table_candidates(load(path)), ["params", "synflow", "naswot"], batch_size=4)
    for name in ("params", "synflow", "naswot"):
        row = figures["proxies"][name]
        assert row["spearman"] == pytest.approx(
            stats.spearmanr(scores.values[name], scores.quality).statistic
        )
        assert row["kendall"] == pytest.approx(
            stats.kendalltau(scores.values[name], scores.quality).statistic
        )
        assert set(row) == {"n", "spearman", "spearman_ci", "kendall", "top10_precision", "seconds", "errors"}
        assert row["spearman_ci"][0] <= row["spearman_ci"][1]
        assert row["errors"] == 0
    assert "zero-cost proxies vs trained quality" in result.stdout
    html = page.read_text()
    assert html.count("rho ") == 3  # one scatter per proxy, titled with its rho
    assert "hand.parquet" in html


def test_an_unknown_proxy_is_one_line_and_exit_2(hand_table: tuple) -> None:
    result = runner.invoke(
        app, ["proxies", "evaluate", "--table", str(hand_table[0]), "--names", "params,synflw"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "--names: unknown zero-cost proxy 'synflw' (did you mean 'synflow'?); valid: params, flops, latency, "
        "synflow, naswot, jacov, grad_norm, snip, grasp, fisher, zen"
    )


def test_a_file_that_is_no_table_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "not.parquet"
    path.write_text("no parquet here")
    result = runner.invoke(app, ["proxies", "evaluate", "--table", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}: not a readable Parquet file")
    assert "Traceback" not in result.output


def _write_search(url: str, genotypes: list) -> dict[str, float]:
    """A search on tiny shapes data: architecture 0 completed twice, 1 and 2 once, 3 failed."""
    from nasfcn.store import create_search, finish_trial, open_store, record_epoch, upsert_trial

    store = open_store(url)
    config = {"data": "shapes", "image_size": 32, "train_samples": 16, "val_samples": 4, "seed": 0}
    sid = create_search(store, "s1", "shapes", config=config, recipe={"epochs": 1})
    runs = [(0, 0.2), (0, 0.4), (1, 0.5), (2, 0.1), (3, 0.9)]
    for number, (arch, miou) in enumerate(runs):
        trial = upsert_trial(
            store, sid, number, genotypes[arch], dataset="shapes", recipe={}, status="running"
        )
        record_epoch(store, trial, 1, {"val_miou": miou})
        finish_trial(
            store, trial, "failed" if arch == 3 else "completed", error="boom" if arch == 3 else None
        )
    return {genotypes[0].arch_id: 0.3, genotypes[1].arch_id: 0.5, genotypes[2].arch_id: 0.1}


@pytest.mark.slow
def test_evaluate_judges_a_searchs_completed_trials(tmp_path: Path, helpers) -> None:
    from nasfcn.proxies import compute, minibatch, search_candidates
    from nasfcn.store import leaderboard_frame, open_store, search_details

    url = f"sqlite:///{tmp_path / 's.db'}"
    genotypes = helpers.bench_genotypes(4)
    quality = _write_search(url, genotypes)
    out = tmp_path / "s.json"
    args = ["proxies", "evaluate", "--search", "s1", "--db", url, "--names", "params,snip"]
    result = runner.invoke(app, [*args, "--batch-size", "4", "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["source"] == "search s1"
    assert figures["archs"] == 3  # the failed trial's architecture is left out, a repeated one counted once
    store = open_store(url)
    candidates = search_candidates(search_details(store, "s1"), leaderboard_frame(store, "s1"))
    assert candidates.quality == pytest.approx(quality)
    batch = minibatch(helpers.shapes_bundle(), 4, 0)
    snip = [compute(candidates.genotypes[a], batch, ["snip"])["snip"].value for a in candidates.genotypes]
    expected = stats.spearmanr(snip, [quality[a] for a in candidates.genotypes]).statistic
    assert figures["proxies"]["snip"]["spearman"] == pytest.approx(expected)


def test_evaluate_needs_a_table_or_a_search_not_both(hand_table: tuple) -> None:
    for args in ([], ["--table", str(hand_table[0]), "--search", "s1"]):
        result = runner.invoke(app, ["proxies", "evaluate", *args])
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            "give --table FILE or --search NAME (one of them); see nasfcn proxies evaluate --help"
        )


@pytest.mark.slow
def test_evaluate_uses_a_searchs_stored_scores_and_stores_the_missing_ones(tmp_path: Path, helpers) -> None:
    from nasfcn.proxies import compute, minibatch
    from nasfcn.store import open_store, proxy_scores_frame, record_proxy_scores

    url = f"sqlite:///{tmp_path / 's.db'}"
    genotypes = helpers.bench_genotypes(4)
    quality = _write_search(url, genotypes)
    store = open_store(url)
    shape = "4x3x32x32"  # --batch-size 4 of the search's 32 px images
    stored = dict(zip(sorted(quality, key=quality.get), [3.0, 2.0, 1.0], strict=True))  # reversed order
    for arch, value in stored.items():
        record_proxy_scores(store, arch, "shapes", shape, 0, {"params": {"value": value, "seconds": 0.5}})
    out = tmp_path / "s.json"
    args = ["proxies", "evaluate", "--search", "s1", "--db", url, "--names", "params,synflow"]
    result = runner.invoke(app, [*args, "--batch-size", "4", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "stored the scores of 3 architectures; 0 had every score stored already" in result.stderr
    figures = json.loads(out.read_text())
    assert figures["proxies"]["params"]["spearman"] == pytest.approx(-1.0)  # the stored values, not counts
    scores = proxy_scores_frame(store, "s1", seed=0, shape=shape)
    params = scores[scores["proxy"] == "params"].set_index("arch_id")["value"].to_dict()
    assert params == stored  # reused, not recomputed or overwritten
    batch = minibatch(helpers.shapes_bundle(), 4, 0)
    synflow = scores[scores["proxy"] == "synflow"].set_index("arch_id")["value"].to_dict()
    by_arch = {g.arch_id: g for g in genotypes}
    assert synflow == {
        a: pytest.approx(compute(by_arch[a], batch, ["synflow"])["synflow"].value) for a in quality
    }

    again = runner.invoke(app, [*args, "--batch-size", "4"])  # every score held now: nothing computed
    assert again.exit_code == 0, again.output
    assert "stored the scores" not in again.stderr
