"""``make demo``'s search: the default search given a budget (RESULTS.md, "What holds a short run back")."""

from __future__ import annotations

import inspect
from pathlib import Path

from nasfcn.cli._search import search
from nasfcn.data import DataConfig
from nasfcn.demo import demo_config
from nasfcn.search import SearchConfig
from nasfcn.search._resume import given_fields


def test_the_demo_is_the_default_search_on_a_budget_of_minutes() -> None:
    config = demo_config()
    assert 2 <= (config.time_budget_min or 0) <= 3  # the README's "about 2-3 minutes"
    default_space = inspect.signature(search).parameters["space"].default
    assert Path(config.space).resolve() == Path(default_space).resolve()
    # Nothing about the training or the scheduler differs from what `nasfcn search` does.
    given = given_fields(config) - {"space", "data", "time_budget_min", "execution.storage_path"}
    assert given == set(), given
    assert config.recipe == SearchConfig(space="x").recipe


def test_the_demo_trains_with_the_measured_recipe() -> None:
    config = demo_config()
    # Without a warm-up and with scale jitter, a width-16 U-Net stood at 0.26 after 12 epochs.
    assert config.recipe.warmup_epochs is None  # 15% of the planned epochs
    assert DataConfig().scale_range == (1.0, 1.0)
