"""The search tests' tiny space, trials that fail on purpose, and one finished search on a
folder with a test split that several modules assert on (the real local Ray, ``ray_local``,
is in tests/conftest.py)."""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
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


def _marked_folder(root: Path, side: int = 24) -> Path:
    """A folder dataset whose test masks are all class 2, a class no train or val mask has: a
    test image in a run's val figures would show as ground truth of class 2 there."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    splits = {"train": [f"t{i}" for i in range(8)], "val": ["v0", "v1", "v2"], "test": ["x0", "x1"]}
    for folder in ("images", "masks", "splits"):
        (root / folder).mkdir(parents=True)
    for split, names in splits.items():
        for name in names:
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            mask = np.full((side, side), 2 if split == "test" else 0, dtype=np.uint8)
            if split != "test":
                mask[:, side // 2 :] = 1
            Image.fromarray(pixels).save(root / "images" / f"{name}.png")
            Image.fromarray(mask).save(root / "masks" / f"{name}.png")
        (root / "splits" / f"{split}.txt").write_text("\n".join(names) + "\n")
    (root / "classes.txt").write_text("background\nright_half\ntest_marker\n")
    return root


@dataclass(frozen=True)
class HeldOutSearch:
    """The finished search ``heldout`` on ``data`` (24 x 24 px, val 3 images, test 2): two trials
    of the micro space, the best confirmed over two more seeds. Its database stays as the search
    left it; each test works on a copy (``copy``), the checkpoints are shared read-only."""

    data: Path
    db: Path
    name: str = "heldout"
    side: int = 24
    val_images: int = 3
    test_images: int = 2

    def copy(self, folder: Path) -> str:
        """The URL of a copy of the search's database in ``folder``: SQLite's backup, which reads
        what the write-ahead log still holds (a copy of the file alone may miss the search)."""
        target = folder / "heldout.db"
        with closing(sqlite3.connect(self.db)) as source, closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
        return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def held_out_search(ray_local: None, tmp_path_factory: pytest.TempPathFactory) -> HeldOutSearch:
    """One search, run once for the session: the held-out test split's tests of the search,
    the confirmation and the export each assert on it (two searches of it cost minutes on 2 cores)."""
    from nasfcn.search import SearchConfig, execution_options, run_search
    from nasfcn.train import TrainRecipe

    root = tmp_path_factory.mktemp("heldout")
    (root / "micro.yaml").write_text(TINY_SPACE)
    search = HeldOutSearch(data=_marked_folder(root / "marked"), db=root / "nasfcn.db")
    options = {
        "space": str(root / "micro.yaml"),
        "data": f"folder:{search.data}",
        "name": search.name,
        "trials": 2,
        "epochs": 1,
        "strategy": "random",
        "scheduler": "fifo",
        "seed": 5,
        "db": f"sqlite:///{search.db}",
        "storage_path": str(root / "runs"),
        "image_size": search.side,
        "val_samples": 8,
        "recipe": TrainRecipe(epochs=1, batch_size=8),
        "concurrency": 2,
        "quiet": True,
        "confirm_top": 1,
        "confirm_seeds": 2,
    }
    execution, rest = execution_options(options)
    run_search(SearchConfig(**rest, execution=execution))
    return search
