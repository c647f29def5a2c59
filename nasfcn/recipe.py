"""How a candidate is trained (``TrainRecipe``), as plain data that imports no torch.

The search's config, its resume rules and the arena carry a recipe without training
anything; keeping the dataclass here lets them do so without loading torch. The
optimizers and schedules it names are implemented in ``nasfcn.train`` (registries bound
to ``nasfcn.catalogue``, which lists the names checked here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from nasfcn import catalogue
from nasfcn.errors import NasfcnError, raise_problems
from nasfcn.genotype import Genotype


class TrainRecipeError(NasfcnError, ValueError):
    """A training recipe is invalid; the message names each bad field and what is allowed."""


#: Warm-up of a recipe that does not set ``warmup_epochs``: 15% of its epochs, then the schedule.
#: Without it, AdamW at 3e-3..4e-3 left wider networks at the background level in short runs
#: (a 3-stage, width-32 U-Net: 0.21 val mIoU after 12 epochs of `shapes`, 0.75 with it and no
#: scale jitter; benchmarks/RESULTS.md, "What holds a short run back").
WARMUP_SHARE = 0.15


@dataclass(frozen=True)
class TrainRecipe:
    """How a candidate is trained. The genotype's ``train`` knobs override these."""

    epochs: int = 10
    batch_size: int = 16
    optimizer: str = "adamw"  # nasfcn.train.OPTIMIZERS key: sgd | adamw
    lr: float = 3e-3
    momentum: float = 0.9  # SGD only
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # nasfcn.train.SCHEDULES key: cosine | poly | constant
    # Linear warm-up, in (fractional) epochs; None: WARMUP_SHARE of the run's epochs.
    warmup_epochs: float | None = None
    poly_power: float = 0.9
    grad_clip: float | None = None  # max gradient norm; None = no clipping
    seed: int = 0
    amp: bool = True  # mixed precision, CUDA only
    channels_last: bool = True  # memory format, CUDA only
    num_workers: int = 0  # DataLoader worker processes
    keep_checkpoint: bool = True  # write the best weights into out_dir

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.warmup_epochs is not None and self.warmup_epochs < 0:
            problems.append(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.optimizer not in catalogue.OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(catalogue.OPTIMIZERS.names())}")
        if self.schedule not in catalogue.LR_SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(catalogue.LR_SCHEDULES.names())}")
        raise_problems(problems, "invalid training recipe: ", TrainRecipeError)

    @property
    def warmup(self) -> float:
        """Epochs of linear warm-up this recipe trains with (``warmup_epochs`` or its default share)."""
        return self.warmup_epochs if self.warmup_epochs is not None else WARMUP_SHARE * self.epochs

    def for_genotype(self, genotype: Genotype) -> TrainRecipe:
        """This recipe with the genotype's searched training knobs applied."""
        return replace(self, **genotype.train.as_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainRecipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainRecipeError(f"unknown recipe fields {unknown}; known: {sorted(known)}")
        return cls(**data)


#: What ``--fidelity`` may set: the ``Fidelity`` fields of those names.
FIDELITY_KEYS = ("resolution", "subset")
FIDELITY_HELP = "'epochs' (every epoch at full size) or resolution=R,subset=F with R and F in (0, 1]"


@dataclass(frozen=True)
class Fidelity:
    """At what fidelity a trial's first epochs train: ``--fidelity resolution=0.5,subset=0.25``.

    The first ``low_epochs`` epochs train at ``resolution`` x the image side on a seeded
    ``subset`` of the training images; the rest at full size on every image, with the same
    weights (an FCN takes any input size; batch-norm statistics re-adapt). Validation is
    always at full size on the whole val split, so every val mIoU a search stores means the
    same thing. ``budget(epoch)`` is the cost of the first ``epoch`` epochs in full-fidelity
    epoch equivalents: ASHA's time attribute when the fidelity is reduced.
    """

    resolution: float = 1.0  # side of a reduced epoch, as a fraction of the image side
    subset: float = 1.0  # share of the training images a reduced epoch trains on
    low_epochs: int = 0  # epochs at reduced fidelity (the search sets its grace period)

    def __post_init__(self) -> None:
        for key in FIDELITY_KEYS:
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise TrainRecipeError(f"--fidelity {key} must be in (0, 1], got {value!r}")
        if self.low_epochs < 0:
            raise TrainRecipeError(f"fidelity low_epochs must be >= 0, got {self.low_epochs}")

    @property
    def reduced(self) -> bool:
        """Whether any epoch trains below full fidelity (``--fidelity epochs`` is not)."""
        return self.resolution < 1 or self.subset < 1

    @property
    def epoch_cost(self) -> float:
        """A reduced epoch's cost in full epochs: (s/S)^2 x f (pixels per image times images)."""
        return self.resolution**2 * self.subset if self.reduced else 1.0

    def is_low(self, epoch: int) -> bool:
        """Whether ``epoch`` (1-based) trains at reduced fidelity."""
        return self.reduced and epoch <= self.low_epochs

    def budget(self, epoch: int) -> float:
        """Full-epoch equivalents spent by the end of ``epoch``; the same float for every trial."""
        if not self.reduced:
            return float(epoch)
        low = min(epoch, self.low_epochs)
        return low * self.epoch_cost + (epoch - low)

    def side(self, full: int) -> int:
        """A reduced epoch's side for a full side of ``full`` pixels."""
        return max(1, round(full * self.resolution))

    def with_low_epochs(self, epochs: int) -> Fidelity:
        return replace(self, low_epochs=epochs)

    def describe(self, image_size: int | None = None) -> str:
        """``epochs 1-2 at 32 px on 25% of the train images, then full size``, or ``full size``."""
        if not self.reduced or self.low_epochs < 1:
            return "every epoch at full size"
        parts = []
        if self.resolution < 1:
            side = f"{self.side(image_size)} px" if image_size else f"{self.resolution:g} x the side"
            parts.append(f"at {side}")
        if self.subset < 1:
            parts.append(f"on {self.subset:.0%} of the train images")
        span = "epoch 1" if self.low_epochs == 1 else f"epochs 1-{self.low_epochs}"
        return f"{span} {' '.join(parts)} (cost {self.epoch_cost:.3g} of an epoch each), then full size"

    def to_text(self) -> str:
        """The ``--fidelity`` value that gives this fidelity."""
        if not self.reduced:
            return "epochs"
        return ",".join(f"{key}={getattr(self, key):g}" for key in FIDELITY_KEYS if getattr(self, key) < 1)

    @classmethod
    def parse(cls, text: str) -> Fidelity:
        """``epochs`` or ``resolution=R,subset=F`` (either or both) -> a Fidelity; a one-line error else."""
        text = text.strip()
        if text == "epochs":
            return cls()
        values: dict[str, float] = {}
        for item in text.split(","):
            key, sep, value = (part.strip() for part in item.partition("="))
            if not sep or key not in FIDELITY_KEYS or key in values:
                problem = f"unknown or repeated setting {key!r}" if sep else f"{item.strip()!r} sets nothing"
                raise TrainRecipeError(f"--fidelity {text!r}: {problem}; use {FIDELITY_HELP}")
            try:
                values[key] = float(value)
            except ValueError:
                raise TrainRecipeError(
                    f"--fidelity {key}={value!r} is not a number; use {FIDELITY_HELP}"
                ) from None
        return cls(resolution=values.get("resolution", 1.0), subset=values.get("subset", 1.0))
