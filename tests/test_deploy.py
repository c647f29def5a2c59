"""The docker-compose stack and its image: checked as files (CI has no Docker engine).

`docker-compose config` (Debian's package, installed by .ci/run) validates the file
against the Compose specification; the rest asserts the promises docs/cluster.md makes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"postgres", "ray-head", "ray-worker", "ray-worker-cpu", "leaderboard", "search"}
RAY_PORTS = {6379, 8265, 10001}  # GCS, dashboard (and job API), Ray Client
POSTGRES_PORT = 5432


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


_PORT = re.compile(
    r"^(?:(?P<host>\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):)?(?:(?P<published>\$\{[^}]*\}|\d+):)?(?P<target>\d+)"
)


def _published(port: object) -> tuple[str | None, int]:
    """(host address or None for every interface, container port) of a ports: entry."""
    if isinstance(port, dict):
        return port.get("host_ip"), int(port["target"])
    match = _PORT.match(str(port))
    assert match, f"unreadable ports entry {port!r}"
    return match["host"], int(match["target"])


def test_the_stack_has_its_services_and_volumes() -> None:
    compose = _compose()
    assert set(compose["services"]) == SERVICES
    assert {"pgdata", "runs"} <= set(compose["volumes"])
    for name in SERVICES - {"postgres"}:
        service = compose["services"][name]
        assert service["image"] == "nasfcn:latest"
        assert service["build"]["context"] == "."
        assert "runs:/work/runs" in service["volumes"], f"{name} must share the checkpoints volume"
        assert "postgres:5432" in service["environment"]["NASFCN_DB"]


def test_gpu_workers_reserve_nvidia_gpus() -> None:
    worker = _compose()["services"]["ray-worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert "--address=ray-head:6379" in worker["command"]


def test_postgres_has_a_health_check_and_no_committed_secret() -> None:
    compose = _compose()
    postgres = compose["services"]["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"]
    assert not (ROOT / ".env").exists() or ".env" in (ROOT / ".gitignore").read_text()
    assert "POSTGRES_PASSWORD=" in (ROOT / ".env.example").read_text()
    database_url = compose["services"]["leaderboard"]["environment"]["NASFCN_DB"]
    assert re.search(r":\$\{POSTGRES_PASSWORD:\?[^}]*\}@", database_url), "password only from .env"


def test_nothing_is_published_beyond_loopback() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            host, target = _published(port)
            assert host == "127.0.0.1", f"{name} publishes {port!r} on every interface"
            assert target not in RAY_PORTS, f"{name} publishes a Ray port ({target})"
    head = _compose()["services"]["ray-head"]
    assert "ports" not in head, "Ray's dashboard and job API stay inside the compose network"


def test_the_leaderboard_serves_the_database_and_the_search_joins_the_cluster() -> None:
    services = _compose()["services"]
    assert services["leaderboard"]["command"].startswith("nasfcn serve")
    assert services["search"]["entrypoint"] == ["/work/docker/search.sh"]
    script = (ROOT / "docker" / "search.sh").read_text()
    assert "--num-cpus=0" in script
    assert 'nasfcn search --ray-address "$address"' in script
    assert os.access(ROOT / "docker" / "search.sh", os.X_OK)


def test_the_image_is_multi_stage_non_root_and_cpu_by_default() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", dockerfile, flags=re.MULTILINE)
    assert stages == ["build", "runtime"]
    assert re.search(r"^USER nasfcn$", dockerfile, flags=re.MULTILINE)
    assert "ARG TORCH_VARIANT=cpu" in dockerfile
    assert "ARG BASE_IMAGE=" in dockerfile
    assert "torch==${TORCH_VERSION}" in dockerfile
    assert "ARG TORCH_VERSION=2.13.0" in dockerfile


def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: .ci/run installs Debian's docker-compose")
        pytest.skip("no docker-compose here (CI installs it)")
    base = [*cli, "--project-directory", str(ROOT), "--env-file", str(ROOT / ".env.example")]
    for profiles in ([], ["--profile", "gpu", "--profile", "cpu", "--profile", "search"]):
        result = subprocess.run(
            [*base, *profiles, "-f", str(COMPOSE), "config", "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    empty = tmp_path / "empty.env"  # a fresh clone before `cp .env.example .env`
    empty.write_text("")
    missing = subprocess.run(
        [
            *cli,
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(empty),
            "-f",
            str(COMPOSE),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode != 0
    assert "set POSTGRES_PASSWORD" in missing.stderr


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("127.0.0.1:${POSTGRES_PORT:-5432}:5432", ("127.0.0.1", 5432)),
        ("8050:8050", (None, 8050)),
        ("0.0.0.0:8265:8265/tcp", ("0.0.0.0", 8265)),
        ("6379", (None, 6379)),
        ({"target": 5432, "host_ip": "127.0.0.1", "published": 5432}, ("127.0.0.1", 5432)),
    ],
)
def test_ports_entries_are_read_with_their_host_address(entry: object, expected: tuple) -> None:
    assert _published(entry) == expected
