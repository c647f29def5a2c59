"""Files and functions stay small enough to read (issue 19): no file in ``nasfcn/`` or
``leaderboard/`` over 600 lines, no function or method over 80 lines unless a
``# long: <reason>`` comment right above its ``def`` (or on the ``def`` line) says why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nasfcn", "leaderboard")
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
REASON = "# long:"


def oversized(source: str, name: str) -> list[str]:
    """What in ``source`` (the file ``name``) is over its limit, one line each."""
    lines = source.splitlines()
    found = []
    if len(lines) > MAX_FILE_LINES:
        found.append(f"{name}: {len(lines)} lines (at most {MAX_FILE_LINES})")
    for node in ast.walk(ast.parse(source, filename=name)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > MAX_FUNCTION_LINES and not _has_reason(lines, node):
            found.append(
                f"{name}:{node.lineno}: {node.name} is {length} lines (at most {MAX_FUNCTION_LINES}, "
                f"or say why in a '{REASON} <reason>' comment above the def)"
            )
    return found


def _has_reason(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A ``# long: <reason>`` with a reason in the comment lines right above the def (and its
    decorators), on a decorator line or on the def line."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    candidates = lines[first - 1 : node.lineno]
    above = first - 2
    while above >= 0 and lines[above].lstrip().startswith("#"):
        candidates.append(lines[above])
        above -= 1
    return any(marker and reason.strip() for marker, reason in (_split(text) for text in candidates))


def _split(text: str) -> tuple[str, str]:
    _, marker, reason = text.partition(REASON)
    return marker, reason


def _sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_no_file_or_function_is_over_its_limit() -> None:
    found = []
    for path in _sources():
        name = path.relative_to(ROOT).as_posix()
        found += oversized(path.read_text(encoding="utf-8"), name)
    assert not found, "split these along their jobs:\n" + "\n".join(found)


def _function(lines: int, above: str = "", decorator: str = "", def_comment: str = "") -> str:
    """Source of a function ``f`` of ``lines`` lines, its ``def`` on line 3."""
    head = [line for line in (above, decorator) if line]
    head = ["import os"] * (2 - len(head)) + head
    body = [f"    x{i} = {i}" for i in range(lines - 1)]
    return "\n".join([*head, f"def f():{def_comment}", *body]) + "\n"


def test_a_function_over_the_limit_is_named() -> None:
    assert oversized(_function(MAX_FUNCTION_LINES), "ok.py") == []
    found = oversized(_function(MAX_FUNCTION_LINES + 1), "pkg/big.py")
    assert found == [
        "pkg/big.py:3: f is 81 lines (at most 80, or say why in a '# long: <reason>' comment above the def)"
    ]


def test_a_method_over_the_limit_is_named() -> None:
    method = _function(MAX_FUNCTION_LINES + 5).replace("\n", "\n    ")
    found = oversized(f"class C:\n    {method}\n", "pkg/cls.py")
    assert len(found) == 1
    assert found[0].startswith("pkg/cls.py:4: f is 85 lines")


def test_a_file_over_the_limit_is_named() -> None:
    source = "".join(f"x{i} = {i}\n" for i in range(MAX_FILE_LINES + 1))
    assert oversized(source, "pkg/long.py") == ["pkg/long.py: 601 lines (at most 600)"]
    assert oversized(source[: source.index(f"x{MAX_FILE_LINES} =")], "pkg/short.py") == []


@pytest.mark.parametrize(
    "where",
    [
        {"above": "# long: a flat table of options"},
        {"def_comment": "  # long: a flat table of options"},
        {"above": "# long: one typed option per line", "decorator": "@app.command()"},
        {"above": "# long: one typed option per line,\n# and each passed to its config field"},
    ],
    ids=["above", "on-the-def-line", "above-the-decorator", "a-comment-block-above"],
)
def test_a_written_reason_excuses_a_long_function(where: dict[str, str]) -> None:
    assert oversized(_function(MAX_FUNCTION_LINES + 20, **where), "pkg/opts.py") == []


@pytest.mark.parametrize("above", ["# long:", "# long:   ", "# a flat table of options", "x = 1  # long"])
def test_a_missing_or_empty_reason_excuses_nothing(above: str) -> None:
    assert len(oversized(_function(MAX_FUNCTION_LINES + 20, above=above), "pkg/opts.py")) == 1


def test_a_reason_further_up_excuses_nothing() -> None:
    source = "# long: meant for something else\n\n" + _function(MAX_FUNCTION_LINES + 20)
    assert len(oversized(source, "pkg/far.py")) == 1
