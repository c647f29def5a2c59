"""Genotypes: one FCN architecture (plus optional training knobs) as plain, hashable data.

A genotype is normalized when it is made: inactive knobs are dropped (set to ``None``),
per-stage values are tuples of exactly ``stages`` entries and a width cap that never
bites is removed. Two genotypes that build the same network are therefore equal, have
the same canonical JSON and the same ``arch_id``; training knobs are kept out of the
``arch_id`` so the same network trained with two learning rates is one architecture.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nasfcn.catalogue import (
    ATTENTION_PLACES,
    index_keeping_downsampling,
    keeps_pool_indices,
    needs_pool_indices,
    one_of,
)
from nasfcn.errors import NasfcnError

ARCH_ID_LENGTH = 12


class GenotypeError(NasfcnError, ValueError):
    """A genotype (usually read from JSON) is malformed; the message names the field."""


def _per_stage(name: str, value: Any, stages: int) -> tuple[int, ...]:
    """Accept one value for all stages or exactly one value per stage."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * stages
    values = tuple(value)
    if len(values) != stages:
        raise GenotypeError(f"encoder.{name} has {len(values)} values but the encoder has {stages} stages")
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class EncoderGene:
    """The downsampling path: ``stages`` stages, each ending in a /2 downsample."""

    stages: int  # number of /2 downsamplings; deepest features are at 1/2**stages
    width: int  # channels of the first stage; doubles every stage
    max_width: int | None = None  # cap on channels; None when it never bites
    # Per-stage knobs: one int for every stage, or one value per stage (stored as a tuple).
    blocks_per_stage: tuple[int, ...] | int = 1  # conv blocks per stage
    kernel_size: tuple[int, ...] | int = 3  # conv kernel per stage
    dilation: tuple[int, ...] | int = 1  # conv dilation per stage
    downsample: str = "maxpool"  # nasfcn.catalogue.DOWNSAMPLING key
    norm: str = "batch"  # nasfcn.catalogue.NORMS key
    activation: str = "relu"  # nasfcn.catalogue.ACTIVATIONS key

    def __post_init__(self) -> None:
        if self.stages < 1:
            raise GenotypeError(f"encoder.stages must be >= 1, got {self.stages}")
        if self.width < 1:
            raise GenotypeError(f"encoder.width must be >= 1, got {self.width}")
        for name in ("blocks_per_stage", "kernel_size", "dilation"):
            object.__setattr__(self, name, _per_stage(name, getattr(self, name), self.stages))
        # A 1x1 convolution is the same whatever its dilation.
        dilation = tuple(1 if k == 1 else d for k, d in zip(self.kernel_size, self.dilation, strict=True))
        object.__setattr__(self, "dilation", dilation)
        cap = self.max_width
        if cap is not None:
            if cap < 1:
                raise GenotypeError(f"encoder.max_width must be >= 1, got {cap}")
            if cap >= self.width * 2**self.stages:
                object.__setattr__(self, "max_width", None)  # the cap never bites
            elif cap < self.width:
                object.__setattr__(self, "width", cap)  # every stage is at the cap

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of stages 0..stages-1 followed by the centre block at the deepest level."""
        cap = self.max_width if self.max_width is not None else math.inf
        return tuple(int(min(self.width * 2**i, cap)) for i in range(self.stages + 1))


@dataclass(frozen=True)
class AttentionGene:
    """Which attention block, and where it sits (channel reduction is fixed at 4)."""

    type: str = "none"  # nasfcn.catalogue.ATTENTION key
    where: str | None = None  # nasfcn.catalogue.ATTENTION_PLACES key; None when type is none

    def __post_init__(self) -> None:
        if self.type == "none":
            object.__setattr__(self, "where", None)
        elif self.where not in ATTENTION_PLACES:
            raise GenotypeError(f"attention.where must be {one_of(ATTENTION_PLACES)}, got {self.where!r}")

    @property
    def in_encoder(self) -> bool:
        return self.type != "none" and self.where in ("encoder", "both")

    @property
    def in_decoder(self) -> bool:
        return self.type != "none" and self.where in ("decoder", "both")


@dataclass(frozen=True)
class HeadGene:
    """The classifier: an optional extra kxk conv block, then a conv to class scores."""

    kernel_size: int = 1  # kernel of the classifier conv ("fully connected" when 1)
    extra_conv: bool = False  # an extra conv block before the classifier
    extra_kernel_size: int | None = None  # its kernel; None when extra_conv is false

    def __post_init__(self) -> None:
        if not self.extra_conv:
            object.__setattr__(self, "extra_kernel_size", None)
        elif self.extra_kernel_size is None:
            object.__setattr__(self, "extra_kernel_size", 3)


@dataclass(frozen=True)
class TrainGene:
    """Training knobs searched jointly with the architecture; None = the recipe's value."""

    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    optimizer: str | None = None

    def __post_init__(self) -> None:
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", int(self.batch_size))

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Genotype:
    """One architecture of the FCN family, plus the training knobs it was drawn with."""

    encoder: EncoderGene
    skip: str = "none"  # nasfcn.catalogue.SKIP_PATHS key
    upsample: str = "bilinear"  # nasfcn.catalogue.UPSAMPLING key
    attention: AttentionGene = field(default_factory=AttentionGene)
    head: HeadGene = field(default_factory=HeadGene)
    train: TrainGene = field(default_factory=TrainGene)

    def __post_init__(self) -> None:
        if needs_pool_indices(self.upsample) and not keeps_pool_indices(self.encoder.downsample):
            raise GenotypeError(
                f"upsample {self.upsample} reuses the encoder's max-pooling indices, so it needs "
                f"encoder.downsample {one_of(index_keeping_downsampling())}, got {self.encoder.downsample!r}"
            )

    # -- canonical forms -------------------------------------------------------------
    def arch_dict(self) -> dict[str, Any]:
        """The architecture part, inactive knobs dropped: what ``arch_id`` hashes."""
        return {
            "attention": _drop_none(asdict(self.attention)),
            "encoder": _drop_none(
                {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.encoder).items()}
            ),
            "head": _drop_none(asdict(self.head)),
            "skip": self.skip,
            "upsample": self.upsample,
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.arch_dict()
        train = self.train.as_dict()
        if train:
            data["train"] = train
        return data

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, fixed separators, inactive knobs dropped."""
        return canonical_json(self.to_dict())

    def arch_json(self) -> str:
        return canonical_json(self.arch_dict())

    @property
    def arch_id(self) -> str:
        """Short content hash of the network (training knobs excluded)."""
        return hashlib.sha256(self.arch_json().encode()).hexdigest()[:ARCH_ID_LENGTH]

    @property
    def trial_key(self) -> str:
        """Content hash of network *and* training knobs: the unit a result can be reused for."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:ARCH_ID_LENGTH]

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        try:
            return cls(
                encoder=EncoderGene(**_only(EncoderGene, data["encoder"], "encoder")),
                skip=data.get("skip", "none"),
                upsample=data.get("upsample", "bilinear"),
                attention=AttentionGene(**_only(AttentionGene, data.get("attention", {}), "attention")),
                head=HeadGene(**_only(HeadGene, data.get("head", {}), "head")),
                train=TrainGene(**_only(TrainGene, data.get("train", {}), "train")),
            )
        except KeyError as err:
            raise GenotypeError(f"genotype is missing the field {err.args[0]!r}") from err
        except TypeError as err:
            raise GenotypeError(f"malformed genotype: {err}") from err

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise GenotypeError(f"genotype is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise GenotypeError("genotype JSON must be an object")
        return cls.from_dict(data)

    def describe(self) -> str:
        """One line in words, for tables and model cards."""
        enc = self.encoder
        attention = "no attention"
        if self.attention.type != "none":
            attention = f"{self.attention.type} attention in {self.attention.where}"
        kernels = "/".join(str(k) for k in enc.kernel_size)
        return (
            f"{enc.stages}-stage encoder ({'-'.join(map(str, enc.channels))} ch, k{kernels}, "
            f"{enc.downsample}), skip {self.skip}, {self.upsample} upsampling, {attention}"
        )


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _only(cls: type, data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise GenotypeError(f"genotype field {where!r} must be an object, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise GenotypeError(f"genotype field {where!r} has unknown keys {unknown}; known: {sorted(known)}")
    return data
