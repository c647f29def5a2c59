"""``nasfcn search --proxies``: a bad name is one line listing valid ones; the default is the library's."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nasfcn.catalogue import PROXIES
from nasfcn.cli import _search, app
from nasfcn.search import DEFAULT_SEARCH_PROXIES

runner = CliRunner()


@pytest.mark.parametrize("given", ["synflo", "synflow,fisherr", "synflow,none"])
def test_an_unknown_proxy_is_refused_in_one_line(tmp_path: Path, given: str) -> None:
    result = runner.invoke(app, ["search", "--db", f"sqlite:///{tmp_path / 'n.db'}", "--proxies", given])
    assert result.exit_code == 2
    bad = next(name for name in given.split(",") if name not in PROXIES)
    assert result.stderr.strip() == (
        f"--proxies: unknown zero-cost proxy {bad!r}; valid: {', '.join(PROXIES.names())} "
        "(comma-separated), or none"
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "n.db").exists()


@pytest.mark.parametrize(
    ("given", "names"), [("none", ()), ("None", ()), ("synflow, zen", ("synflow", "zen")), ("", ())]
)
def test_proxies_are_a_comma_list_or_none(given: str, names: tuple[str, ...]) -> None:
    assert _search._proxies(given) == names


def test_the_default_is_the_search_default() -> None:
    assert _search._proxies(_search._DEFAULT_PROXIES) == DEFAULT_SEARCH_PROXIES
