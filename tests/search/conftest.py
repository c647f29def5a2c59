"""The search tests' tiny space and trials that fail on purpose (the real local Ray,
``ray_local``, is in tests/conftest.py)."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

TINY_SPACE = """
name: micro
input: {channels: 3, min_size: 16}
encoder:
  stages: {choices: [2, 3]}
  width: {choices: [4, 6]}
  kernel_size: {choices: [3, 5]}
skip: {choices: [none, fcn16s, unet_add]}
upsample: {choices: [bilinear, transposed]}
"""


#: Two networks (kernel size 3 or 5), fixed training knobs: random draws repeat them.
TWO_ARCHS = """
name: two
input: {channels: 3, min_size: 16}
encoder:
  stages: 2
  width: 4
  kernel_size: {choices: [3, 5]}
"""


@pytest.fixture
def two_archs(tmp_path: Path) -> Path:
    path = tmp_path / "two.yaml"
    path.write_text(TWO_ARCHS)
    return path


@pytest.fixture
def micro_space(tmp_path: Path) -> Path:
    path = tmp_path / "micro.yaml"
    path.write_text(TINY_SPACE)
    return path


#: What ``trial_failures`` makes a trial do: raise, diverge (a learning rate of 1e12 with plain
#: SGD), or meet a full disk when it saves its first checkpoint.
FAILURES = ("raise", "diverge", "disk_full")


@pytest.fixture
def trial_failures(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """``fail({arch_id: "raise" | "diverge" | "disk_full"})``: those architectures' trials fail so
    in the searches that follow (``fail({})``: none fails again).

    The driver hands Ray Tune a wrapper of the real trainable; Ray ships it to the workers
    by value, so the failures need no hook in the production code.
    """
    from ray import cloudpickle

    from nasfcn.search import _tune

    real = _tune.train_candidate
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)

    def fail(plan: dict[str, str]) -> None:
        unknown = set(plan.values()) - set(FAILURES)
        assert not unknown, f"unknown failures {unknown}; use {FAILURES}"
        monkeypatch.setattr(_tune, "train_candidate", _failing(real, dict(plan)) if plan else real)

    try:
        yield fail
    finally:
        cloudpickle.unregister_pickle_by_value(module)


def _failing(train: Callable[..., None], plan: dict[str, str]) -> Callable[..., None]:
    """``train`` (the trainable), with the trials of ``plan``'s architectures failing as it says."""

    def trainable(config: dict[str, Any], settings: Any, datasets: dict[str, Any] | None = None) -> None:
        from nasfcn.genotype import Genotype

        genotype = Genotype.from_json(config["genotype"])
        failure = plan.get(genotype.arch_id)
        if failure == "raise":
            raise RuntimeError(f"injected failure for {genotype.arch_id}")
        if failure == "diverge":
            untrained = Genotype.from_dict({**genotype.to_dict(), "train": {}})
            overrides = {**(config.get("recipe_overrides") or {}), "lr": 1e12, "optimizer": "sgd"}
            config = {**config, "genotype": untrained.to_json(), "recipe_overrides": overrides}
        if failure == "disk_full":
            with _checkpoints_meet_a_full_disk():
                return train(config, settings, datasets)
        return train(config, settings, datasets)

    return trainable


@contextmanager
def _checkpoints_meet_a_full_disk() -> Iterator[None]:
    """While the trial runs, saving a checkpoint fails with ENOSPC (the trial's worker only)."""
    from ray import tune

    report = tune.report

    def full(metrics: dict[str, Any], *, checkpoint: Any = None, **kwargs: Any) -> None:
        if checkpoint is not None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), checkpoint.path)
        report(metrics, **kwargs)

    tune.report = full
    try:
        yield
    finally:
        tune.report = report
