"""When a run's Ray nodes count as gone, and the health checks a local Ray is given."""

from __future__ import annotations

import pickle

import pytest

from nasfcn.search._liveness import (
    LOCAL_HEALTH_CHECKS,
    LOCAL_LOST,
    NodeWatch,
    local_system_config,
    lost_nodes,
)

ME, OTHER = "a" * 56, "b" * 56


@pytest.mark.parametrize(
    ("nodes", "local", "lost"),
    [
        ([{"NodeID": ME, "Alive": True}], ME, False),
        ([{"NodeID": ME, "Alive": False}], ME, True),  # declared dead by the GCS
        ([{"NodeID": OTHER, "Alive": True}], ME, True),  # ours is not even listed any more
        ([{"NodeID": ME, "Alive": False}, {"NodeID": OTHER, "Alive": True}], ME, True),
        ([{"NodeID": ME, "Alive": False}, {"NodeID": OTHER, "Alive": True}], None, False),  # a cluster
        ([{"NodeID": ME, "Alive": False}, {"NodeID": OTHER, "Alive": False}], None, True),
        ([], None, True),
    ],
)
def test_lost_nodes(nodes: list[dict], local: str | None, lost: bool) -> None:
    why = lost_nodes(nodes, local, None if local else "10.0.0.1:6379")
    assert (why is not None) == lost
    if lost:
        assert why == (LOCAL_LOST if local else "no node of the Ray cluster at 10.0.0.1:6379 is alive")


def test_a_local_ray_waits_about_two_minutes_of_silence() -> None:
    checks = LOCAL_HEALTH_CHECKS
    silence_s = checks["health_check_failure_threshold"] * (
        checks["health_check_period_ms"] + checks["health_check_timeout_ms"]
    )
    assert 60_000 <= silence_s <= 180_000  # Ray's default: 5 x (3 s + 10 s) = 65 s
    assert local_system_config({}) == checks


def test_health_checks_set_in_the_environment_stay_the_users() -> None:
    config = local_system_config({"RAY_health_check_period_ms": "1000", "PATH": "/bin"})
    assert "health_check_period_ms" not in config
    assert config["health_check_failure_threshold"] == LOCAL_HEALTH_CHECKS["health_check_failure_threshold"]


def test_a_watch_of_a_live_local_ray_does_not_stop_it(ray_local: None) -> None:
    watch = NodeWatch(None, poll_s=0.1)
    assert watch.check() is None
    assert not watch.stop_all()
    copy = pickle.loads(pickle.dumps(watch))  # Tune keeps its stopper with the experiment state
    assert copy.local_node == watch.local_node
    assert copy.check() is None


def test_a_watch_keeps_its_verdict() -> None:
    watch = NodeWatch("10.0.0.1:6379")  # a cluster: no local node asked for
    watch.lost = LOCAL_LOST
    assert watch.stop_all()
    assert watch.check() == LOCAL_LOST
    assert not watch("trial", {})
