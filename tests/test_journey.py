"""The README's first-search journey, run exactly as the README shows it.

The commands are read from the README block between ``<!-- journey -->`` and
``<!-- /journey -->`` and run one by one as a new user would, in a fresh folder that holds
the shipped spaces and two small image folders in the documented ``folder:`` layout. If
the README changes a command, this test runs the changed command; if a command stops
working, the README cannot keep showing it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nasfcn.data import generate_shapes

ROOT = Path(__file__).resolve().parents[1]
NASFCN = Path(sys.executable).with_name("nasfcn")


def journey_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- journey -->\s*```bash\n(.*?)```\s*<!-- /journey -->", text, flags=re.DOTALL)
    assert match, "README.md lost its <!-- journey --> block"
    joined = match.group(1).replace("\\\n", " ")
    commands = [line.split("  #")[0].strip() for line in joined.splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


def _write_folder(root: Path, seed: int, count: int, merge: dict[int, int], classes: list[str]) -> None:
    """Shapes scenes in the images/ + masks/ layout, with classes merged as ``merge`` says."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    images, masks = generate_shapes(seed, "train", count, (48, 48))
    lookup = np.arange(256, dtype=np.uint8)
    for old, new in merge.items():
        lookup[old] = new
    for i in range(count):
        Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(root / "images" / f"{i:04d}.png")
        Image.fromarray(lookup[masks[i].numpy().astype(np.uint8)]).save(root / "masks" / f"{i:04d}.png")
    (root / "classes.txt").write_text("\n".join(classes) + "\n")


def test_the_readme_journey_block_is_a_whole_journey() -> None:
    verbs = [shlex.split(c)[1] for c in journey_commands()]
    assert verbs == ["search", "trials", "leaderboard", "export", "predict", "finetune"]


@pytest.mark.slow
def test_the_readme_journey_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "search_spaces", tmp_path / "search_spaces")
    _write_folder(tmp_path / "my_data", 7, 40, {}, ["background", "circle", "square", "triangle"])
    _write_folder(tmp_path / "more_data", 8, 30, {3: 2}, ["background", "round", "angular"])
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "COLUMNS": "200",
        "NASFCN_DB": f"sqlite:///{tmp_path / 'nasfcn.db'}",
    }
    outputs = {}
    for command in journey_commands():
        argv = shlex.split(command)
        assert argv[0] == "nasfcn", command
        result = subprocess.run(
            [str(NASFCN), *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"`{command}` failed:\n{result.stdout}\n{result.stderr}"
        outputs[argv[1]] = result.stdout

    assert re.search(r"first finished in \d+ s: completed [1-9]", outputs["search"]), outputs["search"]
    assert (tmp_path / "leaderboard.html").stat().st_size > 1_000_000  # Plotly inlined
    metrics = json.loads((tmp_path / "my_model" / "metrics.json").read_text())
    assert [stage["name"] for stage in metrics["finetune"]["stages"]] == ["head", "decoder", "full"]
    preprocess = json.loads((tmp_path / "my_model" / "preprocess.json").read_text())
    assert preprocess["class_names"] == ["background", "round", "angular"]
    masks = sorted(m for m in (tmp_path / "masks").glob("*.png") if not m.stem.endswith("_overlay"))
    assert [m.name for m in masks] == ["0001.png", "0002.png"]
    for mask in masks:
        with Image.open(mask) as image:
            assert image.size == (48, 48)  # each at its image's own size
            assert image.mode == "P"  # a palette PNG
