"""A real local Ray for the search tests (2 CPUs, no dashboard), started once."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="nasfcn-ray-"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def micro_space(tmp_path: Path) -> Path:
    path = tmp_path / "micro.yaml"
    path.write_text(TINY_SPACE)
    return path
