"""Search options: checked before anything runs, stored without credentials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nasfcn.benchmark import BenchmarkConfig, BenchmarkError
from nasfcn.cli import app
from nasfcn.search import Execution, SearchConfig, SearchConfigError
from nasfcn.search._driver import default_name


def test_the_stored_config_holds_no_credential() -> None:
    config = SearchConfig(
        space="space.yaml",
        execution=Execution(
            db="postgresql+psycopg://alice@db/nas?password=Zq7s3cret",
            storage_path="s3://AKIAKEY:Zq7s3cret@bucket/runs",
        ),
    )
    stored = config.as_dict()
    assert "Zq7s3cret" not in json.dumps(stored)
    assert stored["execution"]["db"] == "postgresql+psycopg://alice@db/nas?password=***"
    assert stored["execution"]["storage_path"] == "s3://AKIAKEY:***@bucket/runs"


BAD_NAMES = ["../../escaped_name", "a/b", "..", ".", ".hidden", "-x", "a b", "", "na\u00efve", "x" * 101]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_no_plain_folder_name_is_refused(name: str) -> None:
    with pytest.raises(SearchConfigError) as info:
        SearchConfig(space="space.yaml", name=name)
    assert f"--name {name!r} cannot name a run folder" in str(info.value)
    assert "letters, digits, '.', '_' and '-'" in str(info.value)


@pytest.mark.parametrize("name", ["demo", "fcn_small-20261129-101500", "v1.2", "_x", "x" * 100])
def test_plain_folder_names_are_accepted(name: str) -> None:
    assert SearchConfig(space="space.yaml", name=name).name == name


def test_the_default_name_is_a_plain_folder_name() -> None:
    name = default_name("../../evil space/name")
    assert name.startswith("evil-space-name-")
    assert SearchConfig(space="space.yaml", name=name).name == name


def test_the_cli_refuses_a_traversal_name_before_writing_anything(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    space = Path(__file__).resolve().parents[2] / "search_spaces" / "fcn_tiny.yaml"
    argv = ["search", "--space", str(space), "--data", "folder:missing", "--name", "../../escaped_name"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2
    assert "--name '../../escaped_name' cannot name a run folder" in result.stderr
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no runs/ folder, no nasfcn.db


@pytest.mark.parametrize("scale_range", [(1.5, 1.0), (0.0, 1.0), (1.0, float("inf"))])
def test_a_bad_scale_range_names_the_option(scale_range: tuple[float, float]) -> None:
    with pytest.raises(SearchConfigError, match="--scale-jitter must be LOW,HIGH with 0 < LOW <= HIGH"):
        SearchConfig(space="x", scale_range=scale_range)
    with pytest.raises(BenchmarkError, match="--scale-jitter must be LOW,HIGH with 0 < LOW <= HIGH"):
        BenchmarkConfig(name="b", archs=("ref:fcn8s",), scale_range=scale_range)


def test_the_scale_range_is_stored_with_the_search_and_off_by_default() -> None:
    assert SearchConfig(space="x").as_dict()["scale_range"] == (1.0, 1.0)
    assert SearchConfig(space="x", scale_range=[0.75, 1.25]).scale_range == (0.75, 1.25)  # type: ignore[arg-type]
    assert BenchmarkConfig(name="b", archs=("ref:fcn8s",)).as_dict()["scale_range"] == (1.0, 1.0)
