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
    warmup_epochs: float = 0.0  # linear warm-up, in (fractional) epochs
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
        if self.warmup_epochs < 0:
            problems.append(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.optimizer not in catalogue.OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(catalogue.OPTIMIZERS.names())}")
        if self.schedule not in catalogue.LR_SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(catalogue.LR_SCHEDULES.names())}")
        raise_problems(problems, "invalid training recipe: ", TrainRecipeError)

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
