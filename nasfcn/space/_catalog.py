"""The knob catalogue: every knob the language knows, in suggestion order.

Valid names of registry-backed knobs come from the model's registries, looked up only
when asked, so importing the space does not import torch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nasfcn.space._errors import _show

Values = Callable[[], tuple[Any, ...]]


@dataclass(frozen=True)
class _RegistryNames:
    """The valid names of one of the model's registries, looked up when asked (picklable)."""

    attr: str

    def __call__(self) -> tuple[str, ...]:
        from nasfcn import model  # the model's registries are the source of valid names

        return getattr(model, self.attr).names()


def _registry_names(attr: str) -> Values:
    return _RegistryNames(attr)


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
    KnobDef("skip", "str", "skip path", "none", _registry_names("SKIPS")),
    KnobDef("upsample", "str", "upsampling", "bilinear", _registry_names("UPSAMPLERS")),
    KnobDef("encoder.downsample", "str", "downsampling", "maxpool", _registry_names("DOWNSAMPLERS")),
    KnobDef("encoder.width", "int", "channels of the first stage", 16, low=1, high=2048),
    KnobDef("encoder.max_width", "int", "cap on channels", None, low=1, high=8192, nullable=True),
    KnobDef("encoder.blocks_per_stage", "int", "conv blocks per stage", 1, low=1, high=8, per_stage=True),
    KnobDef("encoder.kernel_size", "int", "conv kernel size", 3, (1, 3, 5, 7), per_stage=True),
    KnobDef("encoder.dilation", "int", "conv dilation", 1, low=1, high=8, per_stage=True),
    KnobDef("encoder.norm", "str", "normalization", "batch", _registry_names("NORMS")),
    KnobDef("encoder.activation", "str", "activation", "relu", _registry_names("ACTIVATIONS")),
    KnobDef("attention.type", "str", "attention block", "none", _registry_names("ATTENTION")),
    KnobDef("attention.where", "str", "attention placement", "decoder", ("encoder", "decoder", "both")),
    KnobDef("head.kernel_size", "int", "classifier kernel", 1, (1, 3)),
    KnobDef("head.extra_conv", "bool", "extra conv block before the classifier", False, (False, True)),
    KnobDef("head.extra_kernel_size", "int", "kernel of the extra conv block", 3, (1, 3, 5, 7)),
    KnobDef("train.lr", "float", "learning rate", None, low=1e-7, high=10.0, train=True),
    KnobDef("train.weight_decay", "float", "weight decay", None, low=0.0, high=1.0, train=True),
    KnobDef("train.batch_size", "int", "batch size", None, low=1, high=4096, train=True),
    KnobDef("train.optimizer", "str", "optimizer", None, ("sgd", "adamw"), train=True),
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
    "encoder.downsample": "upsample != max_unpool (else maxpool)",
}
INTRINSIC_DEPENDS = {
    "attention.where": ("attention.type",),
    "head.extra_kernel_size": ("head.extra_conv",),
    "encoder.downsample": ("upsample",),
}


def _needs_indices(upsample: str) -> bool:
    from nasfcn.model import UPSAMPLERS

    return upsample in UPSAMPLERS and UPSAMPLERS.get(upsample).needs_indices


def _keeps_indices(downsample: str) -> bool:
    from nasfcn.model import DOWNSAMPLERS

    return downsample in DOWNSAMPLERS and DOWNSAMPLERS.get(downsample).keeps_indices


def _min_stages(skip: str) -> int:
    from nasfcn.model import SKIPS

    return SKIPS.get(skip).min_stages if skip in SKIPS else 1
