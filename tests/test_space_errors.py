"""Bad space files: every case names the file, the field path, the bad value and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nasfcn.errors import NasfcnError
from nasfcn.space import MAX_SPACE_BYTES, SpaceError, load_space, parse_space

GOOD = """
name: ok
encoder:
  stages: {choices: [2, 3]}
  width: 8
skip: {choices: [none, fcn16s]}
"""


def _errors(text: str) -> SpaceError:
    with pytest.raises(SpaceError) as info:
        parse_space(textwrap.dedent(text), source="bad.yaml")
    return info.value


def _one(text: str) -> tuple[str, str]:
    err = _errors(text)
    assert len(err.issues) == 1, err
    return err.issues[0].path, err.issues[0].message


def test_a_space_error_is_a_nasfcn_error_and_still_a_value_error() -> None:
    with pytest.raises(NasfcnError) as info:
        parse_space("name: [not, a, name]\n", source="bad.yaml")
    assert isinstance(info.value, SpaceError)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("bad.yaml: 1 error")


CASES = [
    # (id, yaml, expected field path, fragments of the message)
    ("unknown top key", "name: x\nencodr: {stages: 3}\n", "encodr", ["did you mean 'encoder'"]),
    (
        "unknown knob",
        "name: x\nencoder: {kernal_size: 3}\n",
        "encoder.kernal_size",
        ["did you mean 'kernel_size'", "valid:"],
    ),
    (
        "wrong type",
        "name: x\nencoder: {stages: four}\n",
        "encoder.stages",
        ["expected an integer", "four"],
    ),
    (
        "bad choice",
        "name: x\nencoder: {kernel_size: {choices: [1, 3, 4]}}\n",
        "encoder.kernel_size.choices[2]",
        ["4 is not allowed", "allowed: 1, 3, 5, 7"],
    ),
    (
        "empty choices",
        "name: x\nupsample: {choices: []}\n",
        "upsample.choices",
        ["is empty", "bilinear, transposed, pixel_shuffle, max_unpool"],
    ),
    (
        "misspelled registry name",
        "name: x\nupsample: {choices: [bilinear, transpose]}\n",
        "upsample.choices[1]",
        ["transpose is not allowed", "did you mean 'transposed'"],
    ),
    (
        "range out of bounds",
        "name: x\nencoder: {stages: {int: [1, 9]}}\ninput: {min_size: 1024}\n",
        "encoder.stages.int[1]",
        ["9 is out of range", "int in [1, 8]"],
    ),
    (
        "low above high",
        "name: x\nencoder: {width: {int: [32, 8]}}\n",
        "encoder.width.int",
        ["low 32 is greater than high 8"],
    ),
    (
        "max_unpool without maxpool",
        "name: x\nencoder: {downsample: strided_conv}\nupsample: {choices: [bilinear, max_unpool]}\n",
        "upsample",
        ["max_unpool reuses max-pooling indices", "only allows strided_conv", "add maxpool"],
    ),
    (
        "fcn8s too shallow",
        "name: x\nencoder: {stages: {choices: [2, 3]}}\nskip: {choices: [none, fcn8s]}\n",
        "skip",
        ["fcn8s needs encoder.stages >= 3", "allows 2"],
    ),
    (
        "too deep for min size",
        "name: x\ninput: {min_size: 32}\nencoder: {stages: {choices: [4, 6]}}\n",
        "encoder.stages",
        ["6 stages downsample by 64", "input.min_size 32", "at most 5 stages"],
    ),
    (
        "condition on unknown knob",
        "name: x\nattention: {type: {choices: [none, se]},\n"
        "  where: {choices: [encoder, both], when: 'attention.kind != none'}}\n",
        "attention.where.when",
        ["'attention.kind', which is not a knob", "did you mean 'attention.type'"],
    ),
    (
        "condition on undeclared knob",
        "name: x\nencoder: {dilation: {choices: [1, 2], when: 'train.optimizer == sgd'}}\n",
        "encoder.dilation.when",
        ["train.optimizer, which this space does not set"],
    ),
    (
        "condition with impossible value",
        "name: x\nattention: {type: {choices: [none, se]},\n"
        "  where: {choices: [encoder, both], when: 'attention.type != cbm'}}\n",
        "attention.where.when",
        ["attention.type can never be cbm", "none, se"],
    ),
    (
        "condition syntax",
        "name: x\nencoder: {dilation: {choices: [1, 2], when: 'encoder.norm = batch'}}\n",
        "encoder.dilation.when",
        ["cannot parse condition", "attention.type != none"],
    ),
    (
        "two forms",
        "name: x\nencoder: {width: {choices: [8], int: [8, 16]}}\n",
        "encoder.width",
        ["exactly one of", "found: choices, int"],
    ),
    (
        "per_stage on a global knob",
        "name: x\nencoder: {norm: {choices: [batch], per_stage: true}}\n",
        "encoder.norm.per_stage",
        ["only per-stage knobs", "encoder.kernel_size"],
    ),
    ("missing name", "encoder: {stages: 3}\n", "name", ["required"]),
    (
        "misspelled spec key",
        "name: x\nencoder: {width: {choises: [8, 16]}}\n",
        "encoder.width.choises",
        ["did you mean 'choices'"],
    ),
    (
        "duplicate choice",
        "name: x\nskip: {choices: [none, none]}\n",
        "skip.choices[1]",
        ["listed twice"],
    ),
    (
        "log scale from zero",
        "name: x\ntrain: {lr: {float: [0.0, 0.1], log: true}}\n",
        "train.lr.float",
        ["log scale needs low > 0"],
    ),
    (
        "float range on an int knob",
        "name: x\nencoder: {width: {float: [8, 16]}}\n",
        "encoder.width.float",
        ["integer knob", "int: [low, high]"],
    ),
    (
        "bool knob",
        "name: x\nhead: {extra_conv: {choices: [false, maybe]}}\n",
        "head.extra_conv.choices[1]",
        ["expected true or false"],
    ),
    (
        "bare list",
        "name: x\nskip: [none, fcn8s]\n",
        "skip",
        ["bare list is ambiguous", "{choices: [none, fcn8s]}"],
    ),
    (
        "range with a disallowed value",
        "name: x\nencoder: {kernel_size: {int: [1, 5]}}\n",
        "encoder.kernel_size.int",
        ["includes 2, which is not allowed"],
    ),
    (
        "null where not allowed",
        "name: x\nencoder: {width: null}\n",
        "encoder.width",
        ["null is not allowed"],
    ),
    ("input key", "name: x\ninput: {chanels: 3}\n", "input.chanels", ["did you mean 'channels'"]),
    (
        "condition on a per-stage knob",
        "name: x\nencoder: {kernel_size: {choices: [3, 5], per_stage: true},\n"
        "  dilation: {choices: [1, 2], when: 'encoder.kernel_size == 3'}}\n",
        "encoder.dilation.when",
        ["chosen per stage"],
    ),
]


@pytest.mark.parametrize(("text", "path", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_space_reports_path_and_fix(text: str, path: str, fragments: list[str]) -> None:
    found_path, message = _one(text)
    assert found_path == path
    for fragment in fragments:
        assert fragment in message, message
    rendered = str(_errors(text))
    assert rendered.startswith("bad.yaml: 1 error in the search space")
    assert path in rendered


def test_good_base_is_valid() -> None:
    assert parse_space(GOOD).name == "ok"


def test_all_errors_of_a_file_are_reported_at_once() -> None:
    err = _errors(
        """
        name: x
        encoder:
          kernal_size: 3
          stages: {choices: [3, 99]}
        upsample: {choices: [bilinear, nearest]}
        """
    )
    paths = [issue.path for issue in err.issues]
    assert paths == ["encoder.kernal_size", "encoder.stages.choices[1]", "upsample.choices[1]"]
    assert str(err).startswith("bad.yaml: 3 errors")


def test_yaml_syntax_error_names_line() -> None:
    path, message = _one("name: x\nencoder: {stages: [3\n")
    assert path == ""
    assert "invalid YAML at line" in message


def test_duplicate_yaml_keys_are_refused() -> None:
    _, message = _one("name: x\nskip: none\nskip: fcn8s\n")
    assert "duplicate key 'skip'" in message


def test_condition_cycle_is_reported() -> None:
    err = _errors(
        """
        name: x
        encoder:
          norm: {choices: [batch, none], when: "encoder.activation == relu"}
          activation: {choices: [relu, silu], when: "encoder.norm == batch"}
        """
    )
    assert "cycle" in str(err)
    assert "encoder.norm" in str(err)


def test_not_a_mapping() -> None:
    _, message = _one("- just\n- a list\n")
    assert "must be a mapping of sections, got a list" in message


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpaceError) as info:
        load_space(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(info.value)
    assert "file not found" in str(info.value)


# -- hostile files: refused before they cost time or memory ------------------------------------


def _laughs(levels: int) -> str:
    """A "billion laughs": each anchor is nine aliases of the previous one (9**levels values),
    used by a real knob."""
    lines = ["name: x", "description:", '  - &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  - &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join([*lines, "encoder:", f"  width: {{choices: *a{levels - 1}}}", ""])


HOSTILE = [
    # (id, yaml, fragments of the message); each one is cheap to refuse, none is cheap to accept
    ("alias bomb", _laughs(6), ["refused at line", "more than 10,000 values once its aliases"]),
    (
        "nested 100k deep",
        "name: x\ndescription: " + "[" * 100_000 + "]" * 100_000 + "\n",
        ["refused at line 2", "nested deeper than 64 levels"],
    ),
    (
        "alias inside itself",
        "name: x\ndescription: &a [*a]\n",
        ["an alias refers to the node that contains it"],
    ),
]


@pytest.mark.parametrize(("text", "fragments"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_yaml_is_refused_with_the_reason(text: str, fragments: list[str]) -> None:
    path, message = _one(text)
    assert path == ""
    for fragment in fragments:
        assert fragment in message, message


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(GOOD + "# padding\n" * (MAX_SPACE_BYTES // 10))
    with pytest.raises(SpaceError) as info:
        load_space(big)
    assert str(info.value).startswith(f"{big}: 1 error")
    assert "refused: larger than 1,048,576 bytes" in str(info.value)


@pytest.mark.slow
def test_cli_refuses_a_billion_laughs_in_one_error(tmp_path: Path, cli_under_memory_limit) -> None:
    """Expanded, this file is 387 million values: 70 s and 5.5 GB before a MemoryError once."""
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text(_laughs(9))
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: x\nencoder: {width: " + "[" * 100_000 + "]" * 100_000 + "}\n")
    validate = cli_under_memory_limit(["spaces", "validate", str(bomb), str(deep)], 1)
    # search loads Ray and torch (about 2 GiB of address space) before it reads the space
    search = cli_under_memory_limit(["search", "--space", str(bomb), "--db", f"sqlite:///{tmp_path}/x.db"], 3)
    for result in (validate, search):
        assert result.returncode == 2, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert f"{bomb}: 1 error in the search space" in result.stderr
        assert "more than 10,000 values once its aliases" in result.stderr
    assert f"{deep}: 1 error in the search space" in validate.stderr
    assert "nested deeper than 64 levels" in validate.stderr
