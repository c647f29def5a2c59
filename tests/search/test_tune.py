"""How ``start_ray`` starts a local Ray and joins a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nasfcn.search import _tune
from nasfcn.search._liveness import LOCAL_HEALTH_CHECKS


@pytest.fixture
def ray_init(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """What ``ray.init`` was called with (Ray itself is not started)."""
    import ray

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {})
    monkeypatch.setattr(_tune, "session_folder", lambda: str(tmp_path))
    monkeypatch.setattr(_tune, "start_watchdog", lambda folder: None)
    monkeypatch.setattr(_tune, "_WATCHDOGS", [])
    for key in LOCAL_HEALTH_CHECKS:
        monkeypatch.delenv(f"RAY_{key}", raising=False)
    return calls


def test_a_local_ray_tolerates_a_busy_machine(ray_init: list[dict[str, Any]]) -> None:
    _tune.start_ray(None)
    assert ray_init[0]["_system_config"] == LOCAL_HEALTH_CHECKS


def test_a_cluster_keeps_its_own_health_checks(ray_init: list[dict[str, Any]]) -> None:
    _tune.start_ray("10.0.0.1:6379")
    assert ray_init[0]["address"] == "10.0.0.1:6379"
    assert "_system_config" not in ray_init[0]
