"""A search strategy is one registration: the catalogue, ``--strategy``, its help and the searcher."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from nasfcn import catalogue
from nasfcn.catalogue import Strategy
from nasfcn.cli import app
from nasfcn.search import (
    SEARCHERS,
    SearchConfig,
    SearchConfigError,
    SearcherInputs,
    optuna_strategy,
    register_strategy,
    unregister_strategy,
)
from nasfcn.space import load_space
from nasfcn.store import leaderboard_frame, open_store

runner = CliRunner()


@pytest.fixture
def qmc() -> Iterator[str]:
    """A throwaway Optuna-backed strategy, registered for one test."""
    # QMCSampler imports scipy's qmc on its first draw, inside Ray Tune's define-by-run call,
    # where a slow import (over a second on a loaded machine) becomes Tune's warning.
    pytest.importorskip("scipy.stats.qmc")

    @optuna_strategy(Strategy("qmc", "quasi-Monte Carlo: evenly spread samples"))
    def _qmc(seed: int, objectives: int) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():  # "QMCSampler is experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed)

    yield "qmc"
    unregister_strategy("qmc")


def _inputs(space: Path) -> SearcherInputs:
    return SearcherInputs(
        space=load_space(space),
        metrics=["val_miou"],
        modes=["max"],
        seed=0,
        first_number=0,
        finished=[],
        replays=[],
        cache=None,
        train_defaults={},
    )


def test_the_registration_builds_a_searcher_on_its_sampler(qmc: str, micro_space: Path) -> None:
    searcher = SEARCHERS.get(qmc)(_inputs(micro_space))
    assert isinstance(searcher._ot_study.sampler, optuna.samplers.QMCSampler)
    assert catalogue.STRATEGIES.get(qmc).doc == "quasi-Monte Carlo: evenly spread samples"
    assert SearchConfig(space="x.yaml", strategy=qmc).strategy == qmc


def test_unregistering_takes_the_strategy_out_of_the_catalogue(micro_space: Path) -> None:
    optuna_strategy(Strategy("qmc", "quasi-Monte Carlo"))(lambda seed, objectives: None)
    unregister_strategy("qmc")
    assert "qmc" not in catalogue.STRATEGIES
    assert "qmc" not in SEARCHERS
    with pytest.raises(
        SearchConfigError,
        match="--strategy must be one of random, tpe, nsga2, grid, surrogate, zc, got 'qmc'",
    ):
        SearchConfig(space="x.yaml", strategy="qmc")


def test_a_taken_name_is_refused_and_leaves_the_registries_as_they_were() -> None:
    before = (catalogue.STRATEGIES.names(), SEARCHERS.names())
    with pytest.raises(ValueError, match="search strategy 'tpe' is already registered"):
        optuna_strategy(Strategy("tpe", "another TPE"))(lambda seed, objectives: None)
    with pytest.raises(ValueError, match="search strategy 'tpe' is already registered"):
        register_strategy("tpe")(lambda inputs: None)
    assert (catalogue.STRATEGIES.names(), SEARCHERS.names()) == before


def test_a_registered_name_must_be_catalogued() -> None:
    with pytest.raises(KeyError, match="unknown search strategy 'qmc'"):
        register_strategy("qmc")(lambda inputs: None)
    assert "qmc" not in SEARCHERS


@pytest.mark.slow
def test_a_registered_strategy_runs_a_search_from_the_cli(
    ray_local, qmc: str, micro_space: Path, tmp_path: Path
) -> None:
    shown = runner.invoke(app, ["search", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "random, tpe, nsga2, grid, surrogate, zc or qmc." in " ".join(shown.stdout.split())

    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    args = ["search", "--space", str(micro_space), "--strategy", qmc, "--scheduler", "fifo", "--name", "q"]
    sizes = ["--trials", "2", "--epochs", "1", "--image-size", "32", "--train-samples", "32"]
    where = ["--db", db, "--storage-path", str(tmp_path / "runs"), "--concurrency", "2"]
    result = runner.invoke(app, [*args, *sizes, *where])
    assert result.exit_code == 0, result.output
    assert "2 trials x 1 epochs, qmc + fifo" in " ".join(result.stdout.split())
    board = leaderboard_frame(open_store(db), "q")
    assert sorted(board["status"]) == ["completed", "completed"]
    assert board["params"].notna().all()


def test_a_pickled_plan_search_leaves_its_database_lookups_behind() -> None:
    """Ray pickles searchers; the lookups hold a database connection and must not travel."""
    import pickle

    from nasfcn.search import PlannedRun, PlanSearch
    from nasfcn.space import load_space

    genotype = next(iter(load_space("search_spaces/fcn_tiny.yaml").iter_genotypes(include_train=False)))
    search = PlanSearch(
        [PlannedRun(genotype, "shapes", 0)], "val_miou", {"lr": 0.01}, 0, lookup=lambda g, r: None
    )
    search.score_proxies(lambda g: ["synflow"])
    copy = pickle.loads(pickle.dumps(search))
    assert (copy._lookup, copy._cache, copy._proxies) == (None, None, None)
    assert copy._runs == search._runs
    assert copy.suggest("t0")["recipe_overrides"] == {"seed": 0}
