"""The static file at scale: the trials are in it once, as data, never as one figure per trial."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from leaderboard.static import write_leaderboard
from nasfcn.store import Store

#: What one more trial may add to the file: its row, facts, genotype codes, curve and per-class
#: IoU as data come to about 0.6 kB; one embedded figure per trial costs 10 kB and more.
PER_TRIAL_BYTES = 2_000
#: The 2,000-trial file, Plotly's JavaScript (4.8 MB) included.
MAX_2000_BYTES = 9_000_000


def _write(url: str, search: str, path: Path) -> str:
    store = Store(url)
    try:
        return write_leaderboard(store, path, search).read_text(encoding="utf-8")
    finally:
        store.dispose()


def _data(page: str) -> dict:
    (block,) = re.findall(r'<script type="application/json" id="board-data">(.*?)</script>', page, re.S)
    return json.loads(block)


@pytest.mark.slow
def test_the_file_grows_by_data_per_trial_not_by_figures(bulk_db, tmp_path: Path) -> None:
    small = _write(*bulk_db(200), tmp_path / "small.html")
    big = _write(*bulk_db(2_000), tmp_path / "big.html")
    growth = (len(big.encode()) - len(small.encode())) / 1_800
    assert growth < PER_TRIAL_BYTES, f"{growth:.0f} bytes per trial"
    assert len(big.encode()) < MAX_2000_BYTES
    # One data block and the same scripts and figures whatever the number of trials.
    assert big.count('type="application/json"') == small.count('type="application/json"') == 1
    assert big.count("<script") == small.count("<script")
    assert big.count('class="detail"') == small.count('class="detail"') == 0  # built on click
    small_data, big_data = _data(small), _data(big)
    assert len(big_data["figures"]) == len(small_data["figures"])
    assert len(big_data["table"]["ids"]) == 2_000
    assert len(big_data["curves"]) == len(big_data["classes"]) == 2_000


@pytest.mark.slow
def test_big_overview_plots_use_webgl_and_sample_the_learning_curves(bulk_db, tmp_path: Path) -> None:
    data = _data(_write(*bulk_db(2_000), tmp_path / "big.html"))
    pareto = data["figures"][0]
    (completed,) = [
        t for t in pareto["data"] if t.get("meta", {}).get("status") == "completed" and t["visible"] is True
    ]
    assert completed["type"] == "scattergl"  # over 1,000 points: WebGL
    assert "hovertext" not in completed  # the short hover: trial and numbers, a click opens the rest
    curves = next(f for f in data["figures"] if f["layout"]["title"]["text"].startswith("Learning curves"))
    title = curves["layout"]["title"]["text"]
    assert "the best 20 of" in title
    assert "random sample of 400" in title
    roles = [t.get("meta", {}).get("role") for t in curves["data"]]
    assert roles[0] == "sample"  # the sample underneath, then the best 20 one by one
    assert len(roles) == 21


@pytest.mark.slow
def test_an_arena_page_is_the_same_whether_its_trials_share_their_architectures_reads_or_not(
    arena_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, search = arena_db(2)
    slim = _write(url, search, tmp_path / "slim.html")  # genotype and cost read once per architecture
    monkeypatch.setattr("nasfcn.store._arena._replay_fields", lambda dialect: None)
    generic = _write(url, search, tmp_path / "generic.html")  # every trial's own row, as any search's
    assert len(_data(slim)["table"]["ids"]) == 2 * 2 * 50
    assert slim == generic
