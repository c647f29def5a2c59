"""Zero-cost proxies at a trial's cost step: scored once per network, stored, reused, kept on resume."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nasfcn.genotype import Genotype
from nasfcn.search import (
    DEFAULT_SEARCH_PROXIES,
    SearchConfig,
    SearchConfigError,
    execution_options,
    run_search,
)
from nasfcn.search._searcher import GridSearch
from nasfcn.space import load_space
from nasfcn.store import leaderboard_frame, open_store, proxy_scores_frame, search_details
from nasfcn.train import TrainRecipe

#: One architecture: every trial of a search of it builds the same network.
ONE_NETWORK = """
name: one
input: {channels: 3, min_size: 16}
encoder:
  stages: 2
  width: 4
  kernel_size: 3
skip: unet_add
upsample: bilinear
"""


@pytest.fixture
def one_network(tmp_path: Path) -> Path:
    path = tmp_path / "one.yaml"
    path.write_text(ONE_NETWORK)
    return path


def _config(tmp_path: Path, space: Path, **overrides: Any) -> SearchConfig:
    options: dict[str, Any] = {
        "space": str(space),
        "data": "shapes",
        "name": "p",
        "trials": 2,
        "epochs": 1,
        "strategy": "random",
        "scheduler": "fifo",
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "image_size": 32,
        "train_samples": 32,
        "val_samples": 16,
        "recipe": TrainRecipe(epochs=1, batch_size=8),
        "concurrency": 1,
        "cache": False,  # the second trial trains the same network again
        "quiet": True,
    }
    options.update(overrides)
    execution, rest = execution_options(options)
    return SearchConfig(**rest, execution=execution)


@pytest.fixture
def raising_snip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """In the searches that follow, the ``snip`` proxy always raises in the trials' workers, and
    each trial writes the proxies its config asks it to score to the returned file (one JSON
    line per trial). The driver hands Ray this module's wrapper of the real trainable by value."""
    from ray import cloudpickle

    from nasfcn.search import _tune

    asked = tmp_path / "asked.jsonl"
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    monkeypatch.setattr(_tune, "train_candidate", _snip_raises(_tune.train_candidate, str(asked)))
    try:
        yield asked
    finally:
        cloudpickle.unregister_pickle_by_value(module)


def _snip_raises(train: Callable[..., None], asked: str) -> Callable[..., None]:
    def trainable(config: dict[str, Any], settings: Any, datasets: dict[str, Any] | None = None) -> None:
        from nasfcn.proxies import PROXIES

        with open(asked, "a", encoding="utf-8") as file:
            file.write(json.dumps(config.get("proxies")) + "\n")

        def boom(model: Any, batch: Any, generator: Any) -> float:
            raise RuntimeError("injected proxy failure")

        real = PROXIES.get("snip")
        PROXIES.remove("snip")
        PROXIES.add("snip", boom)
        try:
            train(config, settings, datasets)
        finally:
            PROXIES.remove("snip")
            PROXIES.add("snip", real)

    return trainable


@pytest.mark.slow
def test_proxies_are_stored_once_per_network_a_raising_one_as_its_error(
    ray_local, tmp_path: Path, one_network: Path, raising_snip: Path
) -> None:
    summary = run_search(_config(tmp_path, one_network, proxies=("synflow", "snip")))

    assert summary.counts == {"completed": 2}  # the raising proxy stopped no trial
    asked = [json.loads(line) for line in raising_snip.read_text().splitlines()]
    assert asked == [["synflow", "snip"], []]  # the repeated network reused the stored scores
    store = open_store(f"sqlite:///{tmp_path / 'nasfcn.db'}")
    scores = proxy_scores_frame(store, "p").set_index("proxy")
    arch = leaderboard_frame(store, "p")["arch_id"].unique().tolist()
    assert sorted(scores.index) == ["snip", "synflow"]
    assert scores["arch_id"].unique().tolist() == arch
    assert scores.loc["synflow", "value"] > 0
    assert not isinstance(scores.loc["synflow", "error"], str)
    assert scores.loc["snip", "error"] == "RuntimeError: injected proxy failure"
    assert scores.loc["snip", "value"] != scores.loc["snip", "value"]  # NULL: NaN in the frame
    assert (scores["input"] == "16x3x32x32").all()
    assert (scores["seed"] == 0).all()
    assert (scores["seconds"] >= 0).all()
    assert (scores["device"] == "cpu").all()
    config = search_details(store, "p")["config"]  # kept for --resume, and the board's key
    assert config["proxies"] == ["synflow", "snip"]
    assert config["proxy_input"] == "16x3x32x32"

    with pytest.raises(SearchConfigError, match=r"--proxies zen differs from the stored synflow,snip"):
        run_search(_config(tmp_path, one_network, proxies=("zen",), resume=True, trials=3))


def test_the_search_config_stores_its_proxies_and_refuses_unknown_ones(tmp_path: Path) -> None:
    config = _config(tmp_path, Path("search_spaces/fcn_tiny.yaml"))
    assert config.proxies == DEFAULT_SEARCH_PROXIES
    assert config.as_dict()["proxies"] == list(DEFAULT_SEARCH_PROXIES)
    assert _config(tmp_path, Path("x.yaml"), proxies=()).as_dict()["proxies"] == []
    with pytest.raises(
        SearchConfigError, match=r"--proxies: unknown zero-cost proxy 'synflo'; valid: params,"
    ):
        _config(tmp_path, Path("x.yaml"), proxies=("synflo",))


def test_each_trial_config_names_the_proxies_the_store_lacks() -> None:
    space = load_space("search_spaces/fcn_tiny.yaml")
    held = {"synflow"}
    seen: list[str] = []

    def missing(genotype: Genotype) -> list[str]:
        seen.append(genotype.arch_id)
        return [name for name in ("synflow", "zen") if name not in held]

    searcher = GridSearch(space, "val_miou", "max", first_number=0, done=set())
    searcher.score_proxies(missing)
    config = searcher.suggest("t0")
    assert config is not None
    assert config["proxies"] == ["zen"]
    assert seen == [Genotype.from_json(config["genotype"]).arch_id]
    restored = GridSearch.__new__(GridSearch)
    restored.__setstate__(searcher.__getstate__())  # Ray's copy leaves the database lookup behind
    assert restored._proxies is None
