"""The knob catalogue: every knob the language knows, in suggestion order.

Valid names of named-choice knobs, and the properties the checks reason about, come from
``nasfcn.catalogue``, which is plain data: loading a space never imports torch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nasfcn import catalogue
from nasfcn.space._errors import _show

Values = Callable[[], tuple[Any, ...]]


@dataclass(frozen=True)
class KnobDef:
    """What a knob may be: its type, allowed values or bounds, default and doc."""

    path: str
    type: str  # int | float | str | bool
    doc: str
    default: Any = None
    allowed: tuple[Any, ...] | Values | None = None  # finite allowed set
    low: float | None = None  # inclusive bounds for int/float knobs
    high: float | None = None
    nullable: bool = False  # null is a valid value (e.g. no width cap)
    per_stage: bool = False  # one value per encoder stage
    train: bool = False  # a training knob: not part of the architecture

    def allowed_values(self) -> tuple[Any, ...] | None:
        allowed = self.allowed() if callable(self.allowed) else self.allowed
        return None if allowed is None else tuple(allowed)

    def describe_allowed(self) -> str:
        allowed = self.allowed_values()
        if allowed is not None:
            return ", ".join(_show(v) for v in allowed) + (", null" if self.nullable else "")
        text = f"{self.type} in [{_show(self.low)}, {_show(self.high)}]"
        return text + " or null" if self.nullable else text


MAX_STAGES = 8
#: The most distinct genotypes ``iter_genotypes`` walks (a grid search's limit).
ENUMERATION_LIMIT = 1_000_000

CATALOG: tuple[KnobDef, ...] = (
    KnobDef("encoder.stages", "int", "number of /2 downsampling stages", 4, low=1, high=MAX_STAGES),
    KnobDef("skip", "str", "skip path", "none", catalogue.SKIP_PATHS.names()),
    KnobDef("upsample", "str", "upsampling", "bilinear", catalogue.UPSAMPLING.names()),
    KnobDef("encoder.downsample", "str", "downsampling", "maxpool", catalogue.DOWNSAMPLING.names()),
    KnobDef("encoder.width", "int", "channels of the first stage", 16, low=1, high=2048),
    KnobDef("encoder.max_width", "int", "cap on channels", None, low=1, high=8192, nullable=True),
    KnobDef("encoder.blocks_per_stage", "int", "conv blocks per stage", 1, low=1, high=8, per_stage=True),
    KnobDef("encoder.kernel_size", "int", "conv kernel size", 3, (1, 3, 5, 7), per_stage=True),
    KnobDef("encoder.dilation", "int", "conv dilation", 1, low=1, high=8, per_stage=True),
    KnobDef("encoder.norm", "str", "normalization", "batch", catalogue.NORMS.names()),
    KnobDef("encoder.activation", "str", "activation", "relu", catalogue.ACTIVATIONS.names()),
    KnobDef("attention.type", "str", "attention block", "none", catalogue.ATTENTION.names()),
    KnobDef("attention.where", "str", "attention placement", "decoder", catalogue.ATTENTION_PLACES.names()),
    KnobDef("head.kernel_size", "int", "classifier kernel", 1, (1, 3)),
    KnobDef("head.extra_conv", "bool", "extra conv block before the classifier", False, (False, True)),
    KnobDef("head.extra_kernel_size", "int", "kernel of the extra conv block", 3, (1, 3, 5, 7)),
    KnobDef("train.lr", "float", "learning rate", None, low=1e-7, high=10.0, train=True),
    KnobDef("train.weight_decay", "float", "weight decay", None, low=0.0, high=1.0, train=True),
    KnobDef("train.batch_size", "int", "batch size", None, low=1, high=4096, train=True),
    KnobDef("train.optimizer", "str", "optimizer", None, catalogue.OPTIMIZERS.names(), train=True),
)
KNOBS: dict[str, KnobDef] = {k.path: k for k in CATALOG}

SECTIONS = ("input", "encoder", "attention", "head", "train")
TOP_LEVEL_KNOBS = ("skip", "upsample")
TOP_LEVEL_KEYS = ("name", "description", *SECTIONS, *TOP_LEVEL_KNOBS)
INPUT_KEYS = {"channels": (1, 64, 3), "min_size": (1, 8192, 32)}  # key: (low, high, default)
SPEC_FORMS = ("value", "choices", "int", "float", "uniform", "log_uniform")
SPEC_OPTIONS = ("step", "log", "when", "per_stage")

#: Knobs that are only active when another knob says so, whatever the file writes.
INTRINSIC_CONDITIONS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "attention.where": lambda v: v["attention.type"] != "none",
    "head.extra_kernel_size": lambda v: v["head.extra_conv"] is True,
}
INTRINSIC_TEXT = {
    "attention.where": "attention.type != none",
    "head.extra_kernel_size": "head.extra_conv == true",
    "encoder.downsample": (
        f"upsample != {catalogue.one_of(n for n in catalogue.UPSAMPLING if catalogue.needs_pool_indices(n))} "
        f"(else {catalogue.index_keeping_downsampling()[0]})"
    ),
}
INTRINSIC_DEPENDS = {
    "attention.where": ("attention.type",),
    "head.extra_kernel_size": ("head.extra_conv",),
    "encoder.downsample": ("upsample",),
}
