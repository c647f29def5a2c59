"""``benchmarks/tune_baseline.py``: the hand-written baseline stays free of nasfcn, and its family builds."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import numpy as np
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tune_baseline.py"


def _imported_modules(source: str) -> set[str]:
    """Every module the file imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_the_baseline_imports_nothing_of_nasfcn():
    modules = _imported_modules(SCRIPT.read_text())
    assert {"ray", "ray.tune.search.optuna", "ray.tune.schedulers", "torch"} <= modules  # it is read at all
    assert not [m for m in modules if m.split(".")[0] in ("nasfcn", "leaderboard") or m.startswith(".")]


def test_the_import_check_sees_an_import_inside_a_function():
    source = "import torch\n\ndef f():\n    from nasfcn.data import load_dataset\n    import nasfcn.cli\n"
    assert {"nasfcn.data", "nasfcn.cli"} <= _imported_modules(source)


def test_every_configuration_of_its_family_segments_odd_sizes(load_script):
    baseline = load_script("tune_baseline", fresh=True)
    space = {**baseline.SPACE, "width": [8]}  # widths change channels, not the wiring
    for values in itertools.product(*space.values()):
        config = dict(zip(space, values, strict=True))
        model = baseline.build(config, classes=3).eval()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 36, 44))
        assert out.shape == (1, 3, 36, 44), config


def _folder(root: Path) -> Path:
    """A tiny folder dataset: 4 train, 2 val, 2 test images of 16 x 16 with 3 classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub in ("images", "masks", "splits"):
        (root / sub).mkdir(parents=True)
    stems = {"train": ["a", "b", "c", "d"], "val": ["e", "f"], "test": ["g", "h"]}
    for split, names in stems.items():
        for name in names:
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                root / "images" / f"{name}.png"
            )
            Image.fromarray(rng.integers(0, 3, (16, 16), dtype=np.uint8)).save(root / "masks" / f"{name}.png")
        (root / "splits" / f"{split}.txt").write_text("\n".join(names) + "\n")
    (root / "classes.txt").write_text("background\nx\ny\n")
    return root


def test_a_trial_trains_on_the_data_tune_hands_it_and_reports_val_miou(load_script, tmp_path, monkeypatch):
    from ray import tune

    baseline = load_script("tune_baseline", fresh=True)
    data = baseline.load_folder(_folder(tmp_path / "data"))
    assert data["classes"] == 3
    assert [len(data["splits"][s][0]) for s in ("train", "val", "test")] == [4, 2, 2]
    reports = []
    monkeypatch.setattr(
        tune, "report", lambda metrics, checkpoint=None: reports.append((metrics, checkpoint))
    )
    monkeypatch.setattr(tune.Checkpoint, "from_directory", staticmethod(lambda folder: folder))
    config = {"depth": 3, "width": 8, "kernel": 3, "skip": "concat", "up": "transposed", "se": True}
    # tune.with_parameters hands a trial the object itself, not an object-store reference
    baseline.train_fn({**config, "lr": 3e-3, "seed": 0}, data=data, max_epochs=2)
    assert [metrics["epoch"] for metrics, _ in reports] == [1, 2]
    assert all(0.0 <= metrics["val_miou"] <= 1.0 for metrics, _ in reports)
    assert reports[0][1] is not None  # the first epoch is the best so far: checkpointed
