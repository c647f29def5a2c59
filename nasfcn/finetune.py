"""Staged fine-tuning of an exported bundle on new data; the result is a new bundle.

As the FCN paper prescribes: stage ``head`` trains only the classifier head (new when
the number of classes differs) with everything else frozen, stage ``decoder`` also
trains the decoder (upsampling, skip fusion, decoder attention), and stage ``full``
trains the whole model at a lower learning rate. Each stage is one ``nasfcn.train.fit``
run of the same model with a different set of trainable parameters; epochs and learning
rates come from the recipe (``finetune.yaml``). The weights kept are those of the stage
with the best val mIoU (a later stage can make things worse: a learning rate too high for
the whole model undoes what the head learned), and the result says which stage that was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from nasfcn.bundle import FinetuneRecipe, Preprocess, RecipeError, StageRecipe, load_bundle
from nasfcn.data import DataConfig, DatasetBundle, load_dataset, voc_palette
from nasfcn.errors import NasfcnError
from nasfcn.export import ExportResult, export_model, measured_cost, val_metrics
from nasfcn.genotype import TrainGene
from nasfcn.metrics import SegMetrics
from nasfcn.model import FCN, build_model
from nasfcn.train import EpochResult, TrainRecipe, evaluate, fit, select_device

__all__ = [
    "STAGE_PARTS",
    "FinetuneError",
    "FinetuneRecipe",
    "FinetuneResult",
    "RecipeError",
    "StageResult",
    "adapt_classes",
    "finetune",
    "finetune_bundle",
    "finetune_data",
]

#: stage -> the parts of the network it trains, as parameter-name prefixes ("" = all).
#: Parameters created new for a different number of classes train from the first stage on.
STAGE_PARTS: Mapping[str, tuple[str, ...]] = {
    "head": ("head.",),
    "decoder": ("head.", "decoder."),
    "full": ("",),
}


class FinetuneError(NasfcnError, ValueError):
    """Fine-tuning cannot start as asked; the message says what to change."""


@dataclass(frozen=True)
class StageResult:
    name: str
    epochs: int
    lr: float
    trainable_params: int
    history: tuple[EpochResult, ...]

    @property
    def val(self) -> SegMetrics:
        """Val metrics after the stage's last epoch."""
        return self.history[-1].val


@dataclass(frozen=True)
class FinetuneResult:
    model: FCN  # with the best stage's weights (by val mIoU), in eval mode
    data: DatasetBundle
    baseline: SegMetrics  # val before any fine-tuning (a new head is untrained here)
    stages: tuple[StageResult, ...]
    replaced: tuple[str, ...]  # parameters created new for the new number of classes
    device: str
    best_stage: str = ""  # the stage whose weights ``model`` holds; "" when no stage ran

    @property
    def best(self) -> StageResult:
        """The stage whose weights were kept."""
        return next(stage for stage in self.stages if stage.name == self.best_stage)


def adapt_classes(model: FCN, num_classes: int, seed: int = 0) -> tuple[FCN, tuple[str, ...]]:
    """``model`` with ``num_classes`` outputs, and the names of its new parameters.

    Every layer whose shape depends on the number of classes (the classifier; in
    FCN-32s/16s/8s also the score layers and the class-score upsampling) is created
    new with the builder's initialisation; every other weight is kept.
    """
    if num_classes == model.num_classes:
        return model, ()
    torch.manual_seed(seed)
    adapted = build_model(model.genotype, num_classes, model.in_channels)
    old = model.state_dict()
    state = adapted.state_dict()
    kept = {key: old[key] for key, value in state.items() if old[key].shape == value.shape}
    adapted.load_state_dict({**state, **kept})
    replaced = tuple(name for name, _ in adapted.named_parameters() if name not in kept)
    return adapted, replaced


def finetune_data(
    spec: str, preprocess: Preprocess, recipe: FinetuneRecipe, classes: int | None = None
) -> DatasetBundle:
    """The new data, normalized as the bundle's network was trained (its mean and std).

    ``classes`` raises the number of classes above what the data names (e.g. a folder
    dataset whose masks do not yet use every class).
    """
    config = DataConfig(
        image_size=recipe.image_size or preprocess.image_size,
        mean=preprocess.mean,
        std=preprocess.std,
        seed=recipe.seed,
    )
    data = load_dataset(spec, config)
    if classes is None or classes == data.num_classes:
        return data
    if classes < data.num_classes:
        raise FinetuneError(
            f"--classes {classes}, but {spec} has {data.num_classes} classes "
            f"({', '.join(data.class_names)}); give --classes {data.num_classes} or more, or leave it out"
        )
    names = (*data.class_names, *(f"class_{i}" for i in range(data.num_classes, classes)))
    return replace(data, class_names=names, palette=voc_palette(classes))


def finetune(
    model: FCN,
    data: DatasetBundle,
    recipe: FinetuneRecipe | None = None,
    *,
    device: str | torch.device | None = None,
    on_stage: Callable[[str, StageRecipe, int], None] | None = None,
    progress: Callable[[str, EpochResult], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` on ``data`` stage by stage (the model is modified in place unless
    its classes change, in which case a new one is built from it).

    ``on_stage(name, stage, trainable_params)`` is called as each stage starts and
    ``progress(name, epoch)`` after each epoch. The model ends with the weights of the stage
    whose last epoch had the best val mIoU (the earlier stage on a tie).
    """
    recipe = recipe or FinetuneRecipe()
    if data.in_channels != model.in_channels:
        raise FinetuneError(
            f"{data.spec} has {data.in_channels}-channel images but the model takes {model.in_channels}"
        )
    model, replaced = adapt_classes(model, data.num_classes, recipe.seed)
    target = select_device(str(device) if device is not None else None)
    model.to(target)
    val_loader = DataLoader(data.val, batch_size=max(recipe.batch_size, 32))
    baseline = evaluate(model, val_loader, data.num_classes, data.ignore_index, target)
    # The recipe sets each stage's learning rate: the genotype's searched knobs must not override it.
    genotype = replace(model.genotype, train=TrainGene())
    stages = []
    kept: tuple[float, str, dict[str, torch.Tensor]] | None = None  # (val mIoU, stage, weights)
    try:
        for index, (name, stage) in enumerate(recipe.stages()):
            if stage.epochs == 0:
                continue
            trainable = _freeze_all_but(model, STAGE_PARTS[name], replaced)
            if on_stage is not None:
                on_stage(name, stage, trainable)
            train_recipe = TrainRecipe(
                epochs=stage.epochs,
                lr=stage.lr,
                batch_size=recipe.batch_size,
                optimizer=recipe.optimizer,
                weight_decay=recipe.weight_decay,
                schedule=recipe.schedule,
                warmup_epochs=recipe.warmup_epochs,
                seed=recipe.seed + index,
                keep_checkpoint=False,
            )
            report = None if progress is None else (lambda epoch, name=name: progress(name, epoch))
            result = fit(genotype, data, train_recipe, device=target, progress=report, model=model)
            stages.append(StageResult(name, stage.epochs, stage.lr, trainable, result.history))
            miou = stages[-1].val.miou
            if kept is None or (math.isfinite(miou) and not miou <= kept[0]):
                kept = (miou, name, {k: v.detach().clone() for k, v in model.state_dict().items()})
    finally:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    if kept is not None:
        model.load_state_dict(kept[2])
    best = kept[1] if kept is not None else ""
    return FinetuneResult(model.eval(), data, baseline, tuple(stages), replaced, str(target), best)


def _freeze_all_but(model: FCN, prefixes: tuple[str, ...], new: tuple[str, ...]) -> int:
    """Make only the named parts (and the new parameters) trainable; returns their size."""
    count = 0
    for name, parameter in model.named_parameters():
        trains = name in new or name.startswith(prefixes)
        parameter.requires_grad_(trains)
        count += parameter.numel() if trains else 0
    return count


def finetune_bundle(
    bundle: str | Path,
    data: str,
    out: str | Path,
    *,
    recipe: FinetuneRecipe | None = None,
    classes: int | None = None,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    on_stage: Callable[[str, StageRecipe, int], None] | None = None,
    progress: Callable[[str, EpochResult], None] | None = None,
) -> tuple[FinetuneResult, ExportResult]:
    """Fine-tune a bundle's network on ``data`` (a dataset spec) and export it to ``out``.

    The recipe defaults to the bundle's ``finetune.yaml``. Per-stage val metrics go into
    the new bundle's ``metrics.json``.

    Raises:
        BundleError, RecipeError, DatasetError, FinetuneError: the inputs cannot be used.
        ExportError: the fine-tuned network failed an export check.
    """
    model, info = load_bundle(bundle)
    recipe = recipe or info.recipe
    dataset = finetune_data(data, info.preprocess, recipe, classes)
    result = finetune(model, dataset, recipe, device=device, on_stage=on_stage, progress=progress)
    preprocess = Preprocess.from_dict(dataset.preprocess())
    best = result.stages.index(result.best)
    total = sum(stage.epochs for stage in result.stages[: best + 1])  # epochs behind the kept weights
    metrics = {
        "arch_id": result.model.genotype.arch_id,
        "source": {
            "kind": "finetune",
            "bundle": str(bundle),
            "arch_id": info.arch_id,
            "dataset": info.preprocess.dataset,
            "class_names": list(info.preprocess.class_names),
            "val_miou": (info.metrics.get("val") or {}).get("miou"),
        },
        "val": val_metrics(result.best.history[-1].as_dict(), preprocess.class_names)
        | {"epoch": total, "stage": result.best_stage},
        "cost": measured_cost(result.model, preprocess),
        "finetune": _finetune_metrics(result, recipe, preprocess),
    }
    export = export_model(result.model, preprocess, metrics, out, recipe, overwrite=overwrite)
    return result, export


def _finetune_metrics(
    result: FinetuneResult, recipe: FinetuneRecipe, preprocess: Preprocess
) -> dict[str, Any]:
    def val(metrics: SegMetrics) -> dict[str, Any]:
        return val_metrics({f"val_{k}": v for k, v in metrics.as_dict().items()}, preprocess.class_names)

    return {
        "dataset": result.data.spec,
        "device": result.device,
        "recipe": recipe.to_dict(),
        "replaced": list(result.replaced),
        "best_stage": result.best_stage,
        "baseline": {k: v for k, v in val(result.baseline).items() if k != "epoch"},
        "stages": [
            {
                "name": stage.name,
                "epochs": stage.epochs,
                "lr": stage.lr,
                "trainable_params": stage.trainable_params,
                "val": {k: v for k, v in val(stage.val).items() if k != "epoch"},
                "history": [
                    {
                        "epoch": e.epoch,
                        "train_loss": e.train_loss,
                        "val_miou": e.val.miou,
                        "seconds": e.seconds,
                    }
                    for e in stage.history
                ],
            }
            for stage in result.stages
        ],
    }
