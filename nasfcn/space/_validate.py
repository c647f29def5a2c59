"""Loading and validation: a space file in, a ``SearchSpace`` or a ``SpaceError`` listing every
problem out."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from nasfcn.catalogue import (
    index_keeping_downsampling,
    keeps_pool_indices,
    min_stages,
    needs_pool_indices,
    one_of,
)
from nasfcn.registry import did_you_mean
from nasfcn.space._catalog import (
    CATALOG,
    INPUT_KEYS,
    INTRINSIC_DEPENDS,
    KNOBS,
    SECTIONS,
    SPEC_FORMS,
    SPEC_OPTIONS,
    TOP_LEVEL_KEYS,
    TOP_LEVEL_KNOBS,
    KnobDef,
)
from nasfcn.space._conditions import Condition, parse_condition
from nasfcn.space._errors import SpaceError, SpaceIssue, _show
from nasfcn.space._knobs import Knob
from nasfcn.space._space import SearchSpace
from nasfcn.space._yaml import MAX_SPACE_BYTES, load_yaml, yaml_problem


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a space file; raises ``SpaceError`` listing every problem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPACE_BYTES + 1)
    except FileNotFoundError:
        raise SpaceError(
            str(path),
            [SpaceIssue("", "file not found; shipped spaces live in search_spaces/")],
        ) from None
    except OSError as err:
        raise SpaceError(str(path), [SpaceIssue("", f"cannot read the file: {err}")]) from err
    _check_size(len(raw), str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpaceError(str(path), [SpaceIssue("", f"cannot read the file: {err}")]) from err
    return parse_space(text, source=str(path))


def _check_size(size: int, source: str) -> None:
    if size > MAX_SPACE_BYTES:
        raise SpaceError(
            source,
            [SpaceIssue("", f"refused: larger than {MAX_SPACE_BYTES:,} bytes; a space file needs a few KB")],
        )


def parse_space(text: str, source: str = "<string>") -> SearchSpace:
    _check_size(len(text.encode("utf-8")), source)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        raise SpaceError(source, [SpaceIssue("", yaml_problem(err))]) from err
    return _Validator(source, text).space(data)


class _Validator:
    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text
        self.issues: list[SpaceIssue] = []

    def error(self, path: str, message: str) -> None:
        self.issues.append(SpaceIssue(path, message))

    # -- the whole file ------------------------------------------------------------------
    def space(self, data: Any) -> SearchSpace:
        if not isinstance(data, dict):
            raise SpaceError(
                self.source,
                [SpaceIssue("", f"a space file must be a mapping of sections, got {_kind(data)}")],
            )
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                self.error(
                    str(key),
                    f"unknown key{did_you_mean(str(key), TOP_LEVEL_KEYS)}; "
                    f"valid: {', '.join(TOP_LEVEL_KEYS)}",
                )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            self.error("name", f"required: a non-empty string naming the space, got {_show(name)}")
            name = ""
        description = data.get("description", "")
        if not isinstance(description, str):
            self.error("description", "must be a string")
            description = ""
        in_channels, min_size = self.input_section(data.get("input", {}))

        written: dict[str, Any] = {}
        for section in SECTIONS[1:]:
            block = data.get(section, {})
            if block is None:
                block = {}
            if not isinstance(block, dict):
                self.error(section, f"must be a mapping of knobs, got {_kind(block)}")
                continue
            names = [k.path.split(".", 1)[1] for k in CATALOG if k.path.startswith(section + ".")]
            for key, spec in block.items():
                if str(key) not in names:
                    self.error(
                        f"{section}.{key}",
                        f"unknown knob{did_you_mean(str(key), names)}; valid: {', '.join(names)}",
                    )
                else:
                    written[f"{section}.{key}"] = spec
        for key in TOP_LEVEL_KNOBS:
            if key in data:
                written[key] = data[key]

        knobs = {
            d.path: self.knob(d, written[d.path]) if d.path in written else _default_knob(d)
            for d in CATALOG
            if d.path in written or not d.train
        }
        knobs = {p: k for p, k in knobs.items() if k is not None}
        if self.issues:
            raise SpaceError(self.source, self.issues)
        order = self.check_conditions(knobs)
        self.check_buildable(knobs, min_size)
        if self.issues:
            raise SpaceError(self.source, self.issues)
        return SearchSpace(
            name=name,
            knobs=knobs,
            order=order,
            in_channels=in_channels,
            min_size=min_size,
            description=description,
            source=self.source,
            text=self.text,
        )

    def input_section(self, block: Any) -> tuple[int, int]:
        result = {k: default for k, (_, _, default) in INPUT_KEYS.items()}
        if not isinstance(block, dict):
            self.error("input", f"must be a mapping with {', '.join(INPUT_KEYS)}, got {_kind(block)}")
            return result["channels"], result["min_size"]
        for key, value in block.items():
            if key not in INPUT_KEYS:
                self.error(
                    f"input.{key}",
                    f"unknown key{did_you_mean(str(key), tuple(INPUT_KEYS))}; valid: {', '.join(INPUT_KEYS)}",
                )
                continue
            low, high, _ = INPUT_KEYS[key]
            if not _is_int(value) or not low <= value <= high:
                self.error(f"input.{key}", f"must be an integer in [{low}, {high}], got {_show(value)}")
            else:
                result[key] = value
        return result["channels"], result["min_size"]

    # -- one knob -----------------------------------------------------------------------
    def knob(self, definition: KnobDef, spec: Any) -> Knob | None:
        path = definition.path
        if isinstance(spec, list):
            self.error(path, f"a bare list is ambiguous; write {{choices: {_show_list(spec)}}}")
            return None
        if not isinstance(spec, dict):
            return self.fixed(definition, spec, path)
        unknown = [k for k in spec if k not in SPEC_FORMS + SPEC_OPTIONS]
        for key in unknown:
            self.error(
                f"{path}.{key}",
                f"unknown key{did_you_mean(str(key), SPEC_FORMS + SPEC_OPTIONS)}; a knob is one "
                f"of {', '.join(SPEC_FORMS)} plus optional {', '.join(SPEC_OPTIONS)}",
            )
        forms = [k for k in SPEC_FORMS if k in spec]
        if unknown and not forms:
            return None  # the misspelt key is the one problem worth reporting
        if len(forms) != 1:
            found = ", ".join(forms) if forms else "none"
            self.error(path, f"give exactly one of {', '.join(SPEC_FORMS)} (found: {found})")
            return None
        form = forms[0]
        when = self.condition(path, spec.get("when"))
        per_stage = spec.get("per_stage", False)
        if not isinstance(per_stage, bool):
            self.error(f"{path}.per_stage", f"must be true or false, got {_show(per_stage)}")
            per_stage = False
        if per_stage and not definition.per_stage:
            stagewise = ", ".join(k.path for k in CATALOG if k.per_stage)
            self.error(f"{path}.per_stage", f"only per-stage knobs accept it: {stagewise}")
            per_stage = False
        if form == "value":
            knob = self.fixed(definition, spec["value"], f"{path}.value")
            if knob is None:
                return None
            if "step" in spec or "log" in spec:
                self.error(path, "step and log only apply to int/float ranges")
            return Knob(definition, "fixed", knob.value, when=when, per_stage=per_stage)
        if form == "choices":
            if "step" in spec or "log" in spec:
                self.error(path, "step and log only apply to int/float ranges")
            return self.choices(definition, spec["choices"], when, per_stage)
        return self.range_knob(definition, form, spec, when, per_stage)

    def fixed(self, definition: KnobDef, value: Any, path: str) -> Knob | None:
        if not self.check_value(definition, value, path):
            return None
        return Knob(definition, "fixed", _normalize(definition, value))

    def choices(
        self, definition: KnobDef, choices: Any, when: Condition | None, per_stage: bool
    ) -> Knob | None:
        path = f"{definition.path}.choices"
        if not isinstance(choices, list):
            self.error(path, f"must be a list of values, got {_kind(choices)}")
            return None
        if not choices:
            self.error(path, f"is empty; give at least one of: {definition.describe_allowed()}")
            return None
        # Check every choice (no short-circuit): all problems are reported at once.
        results = [self.check_value(definition, c, f"{path}[{i}]") for i, c in enumerate(choices)]
        if not all(results):
            return None
        normalized = [_normalize(definition, c) for c in choices]
        for i, value in enumerate(normalized):
            if value in normalized[:i]:
                self.error(f"{path}[{i}]", f"{_show(value)} is listed twice")
                return None
        return Knob(definition, "choices", choices=tuple(normalized), when=when, per_stage=per_stage)

    def range_knob(
        self,
        definition: KnobDef,
        form: str,
        spec: dict[str, Any],
        when: Condition | None,
        per_stage: bool,
    ) -> Knob | None:
        path = f"{definition.path}.{form}"
        bounds = spec[form]
        is_int = form == "int"
        log = spec.get("log", form == "log_uniform")
        if form == "log_uniform" and spec.get("log") is False:
            self.error(f"{definition.path}.log", "log_uniform is always on a log scale")
        if definition.type not in ("int", "float") or (is_int and definition.type != "int"):
            self.error(
                path,
                f"{definition.path} takes {definition.type} values; "
                + (
                    f"use choices from: {definition.describe_allowed()}"
                    if definition.type != "float"
                    else "use float: [low, high] or log_uniform: [low, high]"
                ),
            )
            return None
        if definition.type == "int" and not is_int:
            self.error(path, f"{definition.path} is an integer knob; use int: [low, high]")
            return None
        if not isinstance(bounds, list) or len(bounds) != 2:
            self.error(path, f"must be [low, high], got {_show(bounds)}")
            return None
        number_ok = _is_int if is_int else _is_number
        kind = "an integer" if is_int else "a number"
        if not all(number_ok(b) for b in bounds):
            for i, b in enumerate(bounds):
                if not number_ok(b):
                    self.error(f"{path}[{i}]", f"must be {kind}, got {_show(b)}")
            return None
        low, high = bounds
        if low > high:
            self.error(path, f"low {_show(low)} is greater than high {_show(high)}")
            return None
        if not isinstance(log, bool):
            self.error(f"{definition.path}.log", f"must be true or false, got {_show(log)}")
            return None
        if log and low <= 0:
            self.error(path, f"a log scale needs low > 0, got {_show(low)}")
            return None
        for i, bound in enumerate(bounds):
            self.check_bound(definition, bound, f"{path}[{i}]")
        step = spec.get("step")
        if step is not None:
            if not number_ok(step) or step <= 0:
                self.error(f"{definition.path}.step", f"must be a positive {kind[3:]}, got {_show(step)}")
                return None
            if log:
                self.error(f"{definition.path}.step", "step and log cannot be combined")
                return None
        knob = Knob(
            definition,
            "int" if is_int else "float",
            low=low if is_int else float(low),
            high=high if is_int else float(high),
            step=step,
            log=log,
            when=when,
            per_stage=per_stage,
        )
        allowed = definition.allowed_values()
        if allowed is not None:
            for value in knob.values() or ():
                if value not in allowed:
                    self.error(
                        path,
                        f"the range includes {_show(value)}, which is not allowed; "
                        f"allowed: {definition.describe_allowed()}",
                    )
                    return None
        return knob

    def check_value(self, definition: KnobDef, value: Any, path: str) -> bool:
        if value is None:
            if definition.nullable:
                return True
            self.error(path, f"null is not allowed; allowed: {definition.describe_allowed()}")
            return False
        type_ok = {
            "int": _is_int,
            "float": _is_number,
            "bool": lambda v: isinstance(v, bool),
            "str": lambda v: isinstance(v, str),
        }[definition.type]
        allowed = definition.allowed_values()
        if not type_ok(value):
            expected = {
                "int": "an integer",
                "float": "a number",
                "bool": "true or false",
                "str": "a name",
            }
            hint = f"; allowed: {definition.describe_allowed()}"
            self.error(path, f"expected {expected[definition.type]}, got {_show(value)!r}{hint}")
            return False
        if allowed is not None and value not in allowed:
            hint = did_you_mean(str(value), [str(a) for a in allowed]) if isinstance(value, str) else ""
            self.error(
                path,
                f"{_show(value)} is not allowed{hint}; allowed: {definition.describe_allowed()}",
            )
            return False
        return self.check_bound(definition, value, path)

    def check_bound(self, definition: KnobDef, value: Any, path: str) -> bool:
        low, high = definition.low, definition.high
        if low is not None and high is not None and not low <= value <= high:
            self.error(path, f"{_show(value)} is out of range; allowed: {definition.describe_allowed()}")
            return False
        return True

    def condition(self, path: str, text: Any) -> Condition | None:
        if text is None:
            return None
        if not isinstance(text, str):
            self.error(f"{path}.when", f"must be a condition string, got {_kind(text)}")
            return None
        try:
            return parse_condition(text)
        except ValueError as err:
            self.error(f"{path}.when", str(err))
            return None

    # -- the knobs together ------------------------------------------------------------
    def check_conditions(self, knobs: dict[str, Knob]) -> tuple[str, ...]:
        depends: dict[str, set[str]] = {p: set(INTRINSIC_DEPENDS.get(p, ())) for p in knobs}
        for path, knob in knobs.items():
            if knob.per_stage:
                depends[path].add("encoder.stages")
            if knob.when is None:
                continue
            for clause in knob.when.clauses:
                where = f"{path}.when"
                target = knobs.get(clause.path)
                if clause.path not in KNOBS:
                    self.error(
                        where,
                        f"refers to {clause.path!r}, which is not a knob"
                        f"{did_you_mean(clause.path, tuple(KNOBS))}",
                    )
                    continue
                if target is None or not target.declared:
                    self.error(
                        where,
                        f"refers to {clause.path}, which this space does not set; "
                        "declare it or remove the condition",
                    )
                    continue
                if clause.path == path:
                    self.error(where, "a knob cannot depend on itself")
                    continue
                if target.per_stage:
                    self.error(where, f"{clause.path} is chosen per stage; conditions need one value")
                    continue
                possible = target.values()
                for value in clause.values:
                    if possible is not None and value not in possible:
                        self.error(
                            where,
                            f"{clause.path} can never be {_show(value)}; its values: "
                            + ", ".join(_show(v) for v in possible),
                        )
                depends[path].add(clause.path)
        return self.topological(knobs, depends)

    def topological(self, knobs: dict[str, Knob], depends: dict[str, set[str]]) -> tuple[str, ...]:
        catalog_order = [d.path for d in CATALOG if d.path in knobs]
        order: list[str] = []
        done: set[str] = set()
        pending = list(catalog_order)
        while pending:
            ready = [p for p in pending if depends[p] <= done]
            if not ready:
                cycle = ", ".join(pending)
                self.error("", f"conditions form a cycle among: {cycle}")
                return tuple(order + pending)
            first = ready[0]
            order.append(first)
            done.add(first)
            pending.remove(first)
        return tuple(order)

    def check_buildable(self, knobs: dict[str, Knob], min_size: int) -> None:
        stages = knobs["encoder.stages"].values() or ()
        upsample = knobs["upsample"].values() or ()
        downsample = knobs["encoder.downsample"].values() or ()
        for choice in upsample:
            if needs_pool_indices(choice) and not any(keeps_pool_indices(d) for d in downsample):
                self.error(
                    "upsample",
                    f"{choice} reuses max-pooling indices, but encoder.downsample only allows "
                    f"{', '.join(downsample)}; add {one_of(index_keeping_downsampling())} "
                    f"to encoder.downsample or drop {choice}",
                )
        fewest = min(stages) if stages else 1
        for choice in knobs["skip"].values() or ():
            need = min_stages(choice)
            if fewest < need:
                self.error(
                    "skip",
                    f"{choice} needs encoder.stages >= {need}, but encoder.stages allows {fewest}; "
                    f"raise the smallest encoder.stages choice or drop {choice}",
                )
        deepest = max(stages) if stages else 1
        if 2**deepest > min_size:
            self.error(
                "encoder.stages",
                f"{deepest} stages downsample by {2**deepest}, more than input.min_size "
                f"{min_size} allows; use at most {int(math.log2(min_size))} stages or raise "
                "input.min_size",
            )


def _default_knob(definition: KnobDef) -> Knob:
    return Knob(definition, "fixed", definition.default, declared=False)


def _normalize(definition: KnobDef, value: Any) -> Any:
    if definition.type == "float" and value is not None:
        return float(value)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), _show(value))


def _show_list(values: list[Any]) -> str:
    return "[" + ", ".join(_show(v) for v in values) + "]"


def shipped_spaces() -> list[Path]:
    """The spaces in the repository's ``search_spaces/`` folder (when run from a checkout)."""
    folder = Path(__file__).resolve().parents[2] / "search_spaces"  # nasfcn/space/_validate.py
    return sorted(folder.glob("*.yaml"))
