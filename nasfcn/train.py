"""Train and evaluate one candidate: the function Ray Tune trials call.

``fit(genotype, data, recipe)`` builds the network, trains it with per-pixel
cross-entropy (ignore index 255), evaluates on the validation split after every epoch,
hands each epoch's metrics to ``report`` (how Ray Tune receives them and how ASHA stops
a trial early), and keeps the best checkpoint. Device, seed, AMP and channels-last are
handled here and nowhere else: model code never touches a device.

On CPU a run is deterministic: the same genotype, data, recipe and seed give identical
losses and metrics.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from nasfcn import catalogue
from nasfcn.data import DatasetBundle
from nasfcn.errors import NasfcnError
from nasfcn.genotype import Genotype
from nasfcn.metrics import ConfusionMatrix, SegMetrics
from nasfcn.model import build_model
from nasfcn.recipe import Fidelity
from nasfcn.recipe import TrainRecipe as TrainRecipe  # public here too: where fit() is
from nasfcn.recipe import TrainRecipeError as TrainRecipeError
from nasfcn.registry import Registry

#: name -> factory(parameters, recipe) -> optimizer; the names are ``catalogue.OPTIMIZERS``
OPTIMIZERS: Registry[Callable[[Iterable[nn.Parameter], TrainRecipe], torch.optim.Optimizer]] = Registry(
    "optimizer", catalogue.OPTIMIZERS
)
#: name -> factor(progress in [0, 1], recipe) multiplying the base learning rate;
#: the names are ``catalogue.LR_SCHEDULES``
SCHEDULES: Registry[Callable[[float, TrainRecipe], float]] = Registry(
    "learning-rate schedule", catalogue.LR_SCHEDULES
)

CHECKPOINT_WEIGHTS = "best.safetensors"
CHECKPOINT_INFO = "best.json"


class TrainingDiverged(NasfcnError, RuntimeError):  # noqa: N818 - the name says what happened
    """The loss became NaN or infinite; the search records the trial as failed."""


@OPTIMIZERS.register("sgd")
def _sgd(parameters: Iterable[nn.Parameter], recipe: TrainRecipe) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        parameters, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )


@OPTIMIZERS.register("adamw")
def _adamw(parameters: Iterable[nn.Parameter], recipe: TrainRecipe) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameters, lr=recipe.lr, weight_decay=recipe.weight_decay)


SCHEDULES.add("constant", lambda progress, recipe: 1.0)
SCHEDULES.add("cosine", lambda progress, recipe: 0.5 * (1.0 + math.cos(math.pi * progress)))
SCHEDULES.add("poly", lambda progress, recipe: (1.0 - progress) ** recipe.poly_power)


def lr_factor(step: int, total_steps: int, steps_per_epoch: int, recipe: TrainRecipe) -> float:
    """Warm-up, then the schedule, as a factor of the base learning rate at ``step``."""
    warmup = recipe.warmup * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1.0, total_steps - warmup)
    return SCHEDULES.get(recipe.schedule)(min(1.0, progress), recipe)


@dataclass(frozen=True)
class EpochResult:
    """One epoch: training loss, validation metrics, timing."""

    epoch: int  # 1-based
    train_loss: float
    val: SegMetrics
    lr: float  # learning rate at the end of the epoch
    seconds: float  # wall time of training plus evaluation
    images_per_s: float  # training throughput

    def as_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "lr": self.lr,
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
            **{f"val_{k}": v for k, v in self.val.as_dict().items()},
        }


@dataclass(frozen=True)
class TrainResult:
    genotype: Genotype
    recipe: TrainRecipe
    device: str
    history: tuple[EpochResult, ...]
    best_epoch: int
    stopped_early: bool  # ``report`` asked to stop before the last epoch
    checkpoint: Path | None = None  # folder holding best.safetensors + best.json
    params: int = 0
    class_names: tuple[str, ...] = field(default=())

    @property
    def best(self) -> EpochResult:
        return self.history[self.best_epoch - 1]

    @property
    def final(self) -> EpochResult:
        return self.history[-1]


#: Called after every epoch with (epoch, metrics as a flat dict); returning True stops.
Report = Callable[[int, dict[str, Any]], bool | None]


def select_device(requested: str | None = None) -> torch.device:
    """``requested`` if given; inside a Ray trial the GPU Ray assigned; else cuda, else cpu.

    Ray sets ``CUDA_VISIBLE_DEVICES`` to the trial's GPUs, so ``cuda:0`` *is* the assigned
    device there; a trial given no GPU sees none and runs on the CPU.
    """
    if requested and requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but CUDA is not available here")
        return device
    if _ray_gpu_ids() == []:  # inside a Ray worker that was given no GPU
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _ray_gpu_ids() -> list[Any] | None:
    """The GPUs Ray assigned to this process, or None outside a Ray worker."""
    if "RAY_JOB_ID" not in os.environ and "RAY_RAYLET_PID" not in os.environ:
        return None
    try:
        import ray

        if not ray.is_initialized():
            return None
        return list(ray.get_gpu_ids())
    except Exception:
        return None


@dataclass(frozen=True)
class _Loop:
    """What every epoch of one ``fit`` shares: the model on its device, the optimizer and
    the loaders. Frozen so an epoch cannot swap them; the objects themselves carry state."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loader: DataLoader
    val_loader: DataLoader
    device: torch.device
    amp: bool
    memory_format: torch.memory_format
    fidelity: Fidelity = field(default_factory=Fidelity)
    low_loader: DataLoader | None = None  # the reduced epochs' loader (smaller side, subset)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def loader_for(self, epoch: int) -> DataLoader:
        return self.low_loader if self.low_loader is not None and self.fidelity.is_low(epoch) else self.loader

    def total_steps(self, epochs: int) -> int:
        """Optimizer steps of the whole run: the schedule ends at the last step whatever the fidelity."""
        return sum(len(self.loader_for(epoch)) for epoch in range(1, epochs + 1))


def fit(
    genotype: Genotype,
    data: DatasetBundle,
    recipe: TrainRecipe | None = None,
    device: str | torch.device | None = None,
    report: Report | None = None,
    out_dir: str | Path | None = None,
    progress: Callable[[EpochResult], None] | None = None,
    model: nn.Module | None = None,
    fidelity: Fidelity | None = None,
) -> TrainResult:
    """Train ``genotype`` on ``data`` and evaluate it every epoch.

    ``fidelity`` trains the first epochs smaller and on fewer images (``nasfcn.recipe.Fidelity``);
    every epoch is validated at full size.

    ``model`` continues training an existing network of ``genotype`` (a fine-tuning
    stage) instead of a fresh one. Only parameters with ``requires_grad`` train, and
    batch-norm layers whose parameters are all frozen keep their running statistics.

    Raises:
        TrainingDiverged: the training loss became NaN or infinite.
    """
    recipe = (recipe or TrainRecipe()).for_genotype(genotype)
    loop = _set_up(genotype, data, recipe, select_device(str(device) if device is not None else None), model)
    if fidelity is not None and fidelity.reduced and fidelity.low_epochs > 0:
        loop = _with_fidelity(loop, data, recipe, fidelity)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    history: list[EpochResult] = []
    best_epoch, best_miou, stopped_early, step = 0, -math.inf, False, 0
    for epoch in range(1, recipe.epochs + 1):
        result, step = _run_epoch(loop, genotype, data, recipe, epoch, step)
        history.append(result)
        if result.val.miou > best_miou or best_epoch == 0:
            best_epoch, best_miou = epoch, result.val.miou
            if out is not None and recipe.keep_checkpoint:
                save_checkpoint(out, loop.model, genotype, data, recipe, result)
        if progress is not None:
            progress(result)
        if report is not None and report(epoch, result.as_dict()) and epoch < recipe.epochs:
            stopped_early = True
            break

    return TrainResult(
        genotype=genotype,
        recipe=recipe,
        device=str(loop.device),
        history=tuple(history),
        best_epoch=best_epoch,
        stopped_early=stopped_early,
        checkpoint=out if out is not None and recipe.keep_checkpoint else None,
        params=sum(p.numel() for p in loop.model.parameters()),
        class_names=data.class_names,
    )


def _set_up(
    genotype: Genotype,
    data: DatasetBundle,
    recipe: TrainRecipe,
    device: torch.device,
    model: nn.Module | None,
) -> _Loop:
    """The seeded model on its device, its optimizer over the trainable parameters, and the loaders."""
    cuda = device.type == "cuda"
    amp = recipe.amp and cuda
    memory_format = torch.channels_last if (cuda and recipe.channels_last) else torch.contiguous_format

    torch.manual_seed(recipe.seed)
    if model is None:
        model = build_model(genotype, data.num_classes, data.in_channels)
    elif getattr(model, "num_classes", data.num_classes) != data.num_classes:
        raise ValueError(
            f"the model predicts {model.num_classes} classes but {data.spec} has {data.num_classes}"
        )
    model = model.to(device, memory_format=memory_format)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS.get(recipe.optimizer)(trainable, recipe)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loader = DataLoader(
        data.train,
        batch_size=recipe.batch_size,
        shuffle=True,
        drop_last=len(data.train) > recipe.batch_size,
        num_workers=recipe.num_workers,
        pin_memory=cuda,
        generator=torch.Generator().manual_seed(recipe.seed),
        persistent_workers=recipe.num_workers > 0,
    )
    val_loader = DataLoader(
        data.val,
        batch_size=max(recipe.batch_size, 32),
        num_workers=recipe.num_workers,
        pin_memory=cuda,
    )
    return _Loop(model, optimizer, scaler, loader, val_loader, device, amp, memory_format)


def _with_fidelity(loop: _Loop, data: DatasetBundle, recipe: TrainRecipe, fidelity: Fidelity) -> _Loop:
    """``loop`` with a loader for the reduced epochs: the train split at the reduced side, on
    the seeded subset (seeded by the data's own seed, so every trial trains on the same images)."""
    height, width = data.train.size
    side = (fidelity.side(height), fidelity.side(width))
    view = data.train.reduced(side, fidelity.subset, data.config.seed)
    loader = DataLoader(
        view,
        batch_size=recipe.batch_size,
        shuffle=True,
        drop_last=len(view) > recipe.batch_size,
        num_workers=recipe.num_workers,
        pin_memory=loop.device.type == "cuda",
        generator=torch.Generator().manual_seed(recipe.seed),
        persistent_workers=recipe.num_workers > 0,
    )
    return replace(loop, fidelity=fidelity, low_loader=loader)


def _run_epoch(
    loop: _Loop, genotype: Genotype, data: DatasetBundle, recipe: TrainRecipe, epoch: int, step: int
) -> tuple[EpochResult, int]:
    """Train one epoch and evaluate; returns the epoch's result and the step count after it.

    Raises:
        TrainingDiverged: the epoch's training loss is NaN or infinite.
    """
    started = time.perf_counter()
    loader = loop.loader_for(epoch)
    loader.dataset.set_epoch(epoch)  # type: ignore[attr-defined]  # a SegmentationDataset
    train_mode(loop.model)
    loss_sum, images, step = _train_epoch(loop, loader, data, recipe, step)
    train_loss = float(loss_sum) / max(1, images)  # one device sync per epoch, before timing
    train_seconds = time.perf_counter() - started
    if not math.isfinite(train_loss):
        raise TrainingDiverged(
            f"training loss became {train_loss} in epoch {epoch} of {genotype.arch_id} "
            f"(lr {recipe.lr:g}); lower the learning rate or enable gradient clipping"
        )
    val = evaluate(
        loop.model,
        loop.val_loader,
        data.num_classes,
        data.ignore_index,
        loop.device,
        loop.amp,
        loop.memory_format,
    )
    result = EpochResult(
        epoch=epoch,
        train_loss=train_loss,
        val=val,
        lr=loop.optimizer.param_groups[0]["lr"],
        seconds=time.perf_counter() - started,
        images_per_s=images / train_seconds if train_seconds > 0 else 0.0,
    )
    return result, step


def _train_epoch(
    loop: _Loop, loader: DataLoader, data: DatasetBundle, recipe: TrainRecipe, step: int
) -> tuple[torch.Tensor, int, int]:
    """One pass over the training loader; returns the summed loss (still on the device, so
    no sync per batch), the number of images and the step count after the pass."""
    device, model, optimizer, scaler = loop.device, loop.model, loop.optimizer, loop.scaler
    total_steps = loop.total_steps(recipe.epochs)
    loss_sum = torch.zeros((), device=device)
    images = 0
    for batch_images, batch_masks in loader:
        factor = lr_factor(step, total_steps, loop.steps_per_epoch, recipe)
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr * factor
        batch_images = batch_images.to(device, non_blocking=True, memory_format=loop.memory_format)
        batch_masks = batch_masks.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=loop.amp):
            logits = model(batch_images)
            loss = F.cross_entropy(logits, batch_masks, ignore_index=data.ignore_index)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if recipe.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach() * batch_images.shape[0]
        images += batch_images.shape[0]
        step += 1
    return loss_sum, images, step


def train_mode(model: nn.Module) -> None:
    """Training mode, except for batch norms whose parameters are all frozen: their running
    statistics stay as trained, so a frozen part of a network computes what it did before."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            own = list(module.parameters(recurse=False))
            if own and not any(p.requires_grad for p in own):
                module.eval()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    ignore_index: int = 255,
    device: torch.device | str = "cpu",
    amp: bool = False,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> SegMetrics:
    """Metrics of ``model`` over ``loader``, accumulated on the model's device."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    confusion = ConfusionMatrix(num_classes, ignore_index=ignore_index, device=device)
    for images, masks in loader:
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        with torch.autocast(device.type, enabled=amp):
            logits = model(images)
        confusion.update(logits.argmax(dim=1), masks.to(device, non_blocking=True))
    model.train(was_training)
    return confusion.compute()


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    genotype: Genotype,
    data: DatasetBundle,
    recipe: TrainRecipe,
    epoch: EpochResult,
) -> None:
    """Weights as safetensors plus a JSON sidecar: no pickle, loadable anywhere."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / CHECKPOINT_WEIGHTS))
    info = {
        "genotype": json.loads(genotype.to_json()),
        "arch_id": genotype.arch_id,
        "num_classes": data.num_classes,
        "in_channels": data.in_channels,
        "preprocess": data.preprocess(),
        "recipe": recipe.to_dict(),
        "epoch": epoch.as_dict(),
    }
    (folder / CHECKPOINT_INFO).write_text(json.dumps(info, indent=2, allow_nan=False))


def load_checkpoint(folder: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from the checkpoint's genotype and load its weights (no pickle)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    info = json.loads((folder / CHECKPOINT_INFO).read_text())
    genotype = Genotype.from_dict(info["genotype"])
    model = build_model(genotype, info["num_classes"], info["in_channels"])
    model.load_state_dict(load_file(str(folder / CHECKPOINT_WEIGHTS), device=device))
    return model.to(device), info
