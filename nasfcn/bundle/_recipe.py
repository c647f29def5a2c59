"""``finetune.yaml``: the staged fine-tuning recipe, parsed with every problem named."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from nasfcn.bundle._files import FINETUNE_FILE, MAX_IMAGE_SIDE, MAX_TEXT_BYTES
from nasfcn.errors import NasfcnError, raise_problems


class RecipeError(NasfcnError, ValueError):
    """A fine-tuning recipe is malformed; the message names the file, field and allowed values."""


#: The fine-tuning stages in order: what each unfreezes is defined in ``nasfcn.finetune``.
STAGES = ("head", "decoder", "full")
_INVALID = "invalid fine-tuning recipe: "
STAGE_HELP = {
    "head": "1: only the classifier head (new when the classes change) trains",
    "decoder": "2: + the decoder (upsampling, skip fusion, attention)",
    "full": "3: the whole model, at a lower learning rate",
}


@dataclass(frozen=True)
class StageRecipe:
    epochs: int  # 0 skips the stage
    lr: float  # peak learning rate of the stage


@dataclass(frozen=True)
class FinetuneRecipe:
    """Staged fine-tuning, as the FCN paper prescribes: head, then decoder, then everything."""

    head: StageRecipe = StageRecipe(epochs=4, lr=1e-2)
    decoder: StageRecipe = StageRecipe(epochs=4, lr=3e-3)
    full: StageRecipe = StageRecipe(epochs=4, lr=3e-4)
    batch_size: int = 8
    optimizer: str = "adamw"  # nasfcn.train.OPTIMIZERS key
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # nasfcn.train.SCHEDULES key, restarted in every stage
    warmup_epochs: float = 0.0  # per stage
    image_size: tuple[int, int] | None = None  # (height, width); None = the size trained at
    seed: int = 0  # data split, augmentation, new head initialisation

    def __post_init__(self) -> None:
        raise_problems(_recipe_problems(self), _INVALID, RecipeError)

    def stages(self) -> tuple[tuple[str, StageRecipe], ...]:
        return tuple((name, getattr(self, name)) for name in STAGES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": {name: {"epochs": s.epochs, "lr": s.lr} for name, s in self.stages()},
            **{f.name: getattr(self, f.name) for f in fields(self) if f.name not in STAGES},
            "image_size": list(self.image_size) if self.image_size else None,
        }

    def to_yaml(self) -> str:
        """The recipe as commented YAML (what ``finetune.yaml`` holds)."""
        lines = [
            "# Staged fine-tuning: nasfcn finetune --bundle B --data SPEC --recipe finetune.yaml --out NEW",
            "# Each stage restarts the learning-rate schedule; epochs: 0 skips a stage.",
            "stages:",
        ]
        for name, stage in self.stages():
            lines.append(
                f"  {name}: {{epochs: {stage.epochs}, lr: {_scalar(stage.lr)}}}  # {STAGE_HELP[name]}"
            )
        comments = {
            "optimizer": "  # sgd | adamw",
            "schedule": "  # cosine | poly | constant",
            "image_size": "  # [height, width]; null = the size the model was trained at",
            "seed": "  # data split, augmentation and the new head's initialisation",
        }
        for f in fields(self):
            if f.name in STAGES:
                continue
            value = getattr(self, f.name)
            text = "null" if value is None else _scalar(list(value) if isinstance(value, tuple) else value)
            lines.append(f"{f.name}: {text}{comments.get(f.name, '')}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = FINETUNE_FILE) -> FinetuneRecipe:
        """Parse a recipe; every problem is listed with its field and the allowed values."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise RecipeError(f"{source}: expected a mapping of recipe fields, got {type(data).__name__}")
        scalars = [f.name for f in fields(cls) if f.name not in STAGES]
        problems = [
            f"unknown field {key!r}; known: stages, {', '.join(scalars)}"
            for key in data
            if key != "stages" and key not in scalars
        ]
        values: dict[str, Any] = {k: data[k] for k in scalars if k in data}
        stages = data.get("stages") or {}
        if not isinstance(stages, Mapping):
            problems.append(f"stages must map {', '.join(STAGES)} to {{epochs, lr}}")
            stages = {}
        for name in stages:
            if name not in STAGES:
                problems.append(f"stages.{name}: unknown stage; stages are {', '.join(STAGES)}")
        default = cls()
        for name in STAGES:
            given = stages.get(name, {})
            if not isinstance(given, Mapping) or set(given) - {"epochs", "lr"}:
                problems.append(f"stages.{name} must be {{epochs: N, lr: X}}, got {given!r}")
                continue
            base = getattr(default, name)  # a stage given in part keeps the rest of its default
            values[name] = StageRecipe(given.get("epochs", base.epochs), given.get("lr", base.lr))
        if "image_size" in values and values["image_size"] is not None:
            size = values["image_size"]
            size = [size, size] if _is_int(size) else size
            if not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) and v >= 8 for v in size):
                problems.append(f"image_size must be [height, width] (each >= 8) or null, got {size!r}")
            elif max(size) > MAX_IMAGE_SIDE:
                problems.append(f"image_size must be at most {MAX_IMAGE_SIDE} a side, got {size!r}")
            else:
                values["image_size"] = (int(size[0]), int(size[1]))
        try:
            recipe = cls(**values)
        except RecipeError as err:  # the field checks of __post_init__, listed with the rest
            problems.append(str(err).removeprefix(_INVALID))
        raise_problems(problems, f"{source}: ", RecipeError)
        return recipe

    @classmethod
    def from_yaml(cls, text: str, source: str = FINETUNE_FILE) -> FinetuneRecipe:
        from nasfcn.space import is_refused, load_yaml, yaml_problem  # a "billion laughs" is refused

        try:
            data = load_yaml(text)
        except yaml.YAMLError as err:
            if is_refused(err):
                raise RecipeError(f"{source}: {yaml_problem(err)}") from err
            raise RecipeError(f"{source}: not valid YAML ({err})") from err
        return cls.from_dict(data, source)


def load_recipe(path: str | Path) -> FinetuneRecipe:
    """Read a ``finetune.yaml`` (errors name the file, the field and the allowed values)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_TEXT_BYTES + 1)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file; every bundle holds one ({FINETUNE_FILE})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(f"{path}: cannot read the recipe ({err})") from err
    if len(raw) > MAX_TEXT_BYTES:
        raise RecipeError(f"{path}: larger than the {MAX_TEXT_BYTES:,} bytes a recipe may hold")
    return FinetuneRecipe.from_yaml(text, str(path))


def _recipe_problems(recipe: FinetuneRecipe) -> list[str]:
    from nasfcn.train import OPTIMIZERS, SCHEDULES

    problems = []
    for name, stage in recipe.stages():
        if not _is_int(stage.epochs) or stage.epochs < 0:
            problems.append(f"stages.{name}.epochs must be an integer >= 0, got {stage.epochs!r}")
        if not _is_number(stage.lr) or not stage.lr > 0:
            problems.append(f"stages.{name}.lr must be a number > 0, got {stage.lr!r}")
    if not problems and not sum(stage.epochs for _, stage in recipe.stages()):
        problems.append("every stage has 0 epochs; give at least one stage epochs >= 1")
    if not _is_int(recipe.batch_size) or recipe.batch_size < 1:
        problems.append(f"batch_size must be an integer >= 1, got {recipe.batch_size!r}")
    for name, registry in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
        value = getattr(recipe, name)
        if not isinstance(value, str) or value not in registry:
            problems.append(f"{name} must be one of {', '.join(registry.names())}, got {value!r}")
    if not _is_number(recipe.weight_decay) or recipe.weight_decay < 0:
        problems.append(f"weight_decay must be a number >= 0, got {recipe.weight_decay!r}")
    if not _is_number(recipe.warmup_epochs) or recipe.warmup_epochs < 0:
        problems.append(f"warmup_epochs must be a number >= 0, got {recipe.warmup_epochs!r}")
    if not _is_int(recipe.seed) or recipe.seed < 0:
        problems.append(f"seed must be an integer >= 0, got {recipe.seed!r}")
    return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _scalar(value: Any) -> str:
    """YAML for one value in flow style (``1.0e-05``, not ``1e-05``, which YAML 1.1 reads as text)."""
    return yaml.safe_dump(value, default_flow_style=True).splitlines()[0]
