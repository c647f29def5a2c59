"""Counting distinct architectures without enumerating them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from nasfcn.catalogue import keeps_pool_indices, needs_pool_indices
from nasfcn.genotype import EncoderGene

if TYPE_CHECKING:
    from nasfcn.space._space import SearchSpace

_PER_STAGE = ("encoder.blocks_per_stage", "encoder.kernel_size", "encoder.dilation")


class _ContinuousError(Exception):
    pass


def _count(space: SearchSpace, include_train: bool) -> float:
    try:
        return _count_finite(space, include_train)
    except _ContinuousError:
        return math.inf


def _count_finite(space: SearchSpace, include_train: bool) -> float:
    referenced = {p for k in space.knobs.values() if k.when for p in k.when.paths}
    controlling = [
        p
        for p in space.order
        if p in referenced or p in ("encoder.stages", "upsample", "attention.type", "head.extra_conv")
    ]
    free = [
        p
        for p in space.order
        if p not in controlling
        and p not in _PER_STAGE
        and p not in ("encoder.width", "encoder.max_width", "encoder.downsample")
        and (include_train or not space.knobs[p].definition.train)
    ]
    total = 0.0
    for assignment in _assignments(space, controlling):
        values_of: dict[str, tuple[Any, ...] | None] = {}
        for path in space.order:
            if path in assignment:
                values_of[path] = (assignment[path],)
            elif not space.is_active(path, {**_defaults(space), **assignment}):
                values_of[path] = (space.knobs[path].definition.default,)
            else:
                values_of[path] = space.knobs[path].values()
        if any(values_of[p] is None for p in free):
            return math.inf
        product = 1.0
        for path in free:
            product *= len(values_of[path] or ())
        downsample = values_of["encoder.downsample"] or ()
        if needs_pool_indices(assignment["upsample"]):
            downsample = tuple(d for d in downsample if keeps_pool_indices(d))[:1]
        stages = assignment["encoder.stages"]
        product *= len(downsample)
        product *= _count_channels(values_of["encoder.width"], values_of["encoder.max_width"], stages)
        product *= _count_stagewise(space, values_of, stages)
        total += product
    return int(total) if total < 2**63 else total


def _defaults(space: SearchSpace) -> dict[str, Any]:
    return {p: k.value if k.mode == "fixed" else k.definition.default for p, k in space.knobs.items()}


def _assignments(space: SearchSpace, controlling: list[str]) -> Iterator[dict[str, Any]]:
    """Every combination of the knobs that decide which others are active."""

    def expand(index: int, current: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if index == len(controlling):
            yield dict(current)
            return
        path = controlling[index]
        knob = space.knobs[path]
        if not space.is_active(path, {**_defaults(space), **current}):
            options: tuple[Any, ...] = (knob.definition.default,)
        else:
            options = knob.values() or ()
            if not options:  # a continuous knob that decides others: enumerate nothing here
                raise _ContinuousError(path)
        for option in options:
            current[path] = option
            yield from expand(index + 1, current)
        current.pop(path, None)

    yield from expand(0, {})


def _count_channels(widths: Any, caps: Any, stages: int) -> int:
    if widths is None or caps is None:
        return 1
    distinct = {
        EncoderGene(stages=stages, width=w, max_width=c).channels for w, c in itertools.product(widths, caps)
    }
    return len(distinct)


def _count_stagewise(space: SearchSpace, values_of: Mapping[str, Any], stages: int) -> float:
    """Blocks x (kernel, dilation) per stage, a 1x1 kernel making dilation irrelevant."""
    blocks = len(values_of["encoder.blocks_per_stage"])
    count = float(blocks**stages if space.knobs["encoder.blocks_per_stage"].per_stage else blocks)
    kernels = values_of["encoder.kernel_size"]
    dilations = len(values_of["encoder.dilation"])
    ones = 1 if 1 in kernels else 0
    others = len(kernels) - ones
    per_kernel = space.knobs["encoder.kernel_size"].per_stage
    per_dilation = space.knobs["encoder.dilation"].per_stage
    if per_kernel and per_dilation:
        return count * float(others * dilations + ones) ** stages
    if per_kernel:  # one dilation shared by all stages; it matters unless every kernel is 1
        return count * ((len(kernels) ** stages - ones) * dilations + ones)
    if per_dilation:
        return count * (others * dilations**stages + ones)
    return count * (others * dilations + ones)


def size_text(count: float) -> str:
    """A space size for people: thousands separated, or why it is infinite."""
    return "infinite (float ranges)" if math.isinf(count) else f"{int(count):,}"
