"""The search tests' tiny space (the real local Ray, ``ray_local``, is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture
def micro_space(tmp_path: Path) -> Path:
    path = tmp_path / "micro.yaml"
    path.write_text(TINY_SPACE)
    return path
