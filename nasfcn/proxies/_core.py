"""What every proxy shares: the minibatch, the per-pixel loss, the registry and ``compute``.

A proxy is a function ``(model, batch, generator) -> float`` registered under a name the
catalogue lists (``nasfcn.catalogue.PROXIES``); higher means "predicted better", as in the
papers. ``compute`` gives each proxy its own copy of one freshly initialised network (so a
proxy that rescales, re-initialises or strips the network cannot change another's number),
with in-place activations turned off (hooks and second derivatives need the values they
saw), in training mode (BatchNorm normalises with the minibatch's statistics, as the
proxies' papers and their code compute them), and a generator and global seed reset to
``seed``: the same network, batch and seed give the same number twice, whatever other
proxies ran before. ``latency`` is the exception: it is timed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasfcn import catalogue
from nasfcn.data import DatasetBundle
from nasfcn.errors import NasfcnError
from nasfcn.genotype import Genotype
from nasfcn.model import build_model
from nasfcn.registry import Registry

__all__ = [
    "PROXIES",
    "Batch",
    "ProxyError",
    "ProxyFunction",
    "ProxyResult",
    "batch_input",
    "compute",
    "minibatch",
    "pixel_loss",
    "weight_layers",
]


class ProxyError(NasfcnError, ValueError):
    """A proxy cannot be computed on this input: the message says why."""


@dataclass(frozen=True)
class Batch:
    """One labelled minibatch: what a segmentation network is scored on at initialisation."""

    images: torch.Tensor  # N x C x H x W, float, normalised as for training
    masks: torch.Tensor  # N x H x W class indices, ``ignore_index`` where unlabelled
    num_classes: int
    ignore_index: int = 255

    def __post_init__(self) -> None:
        images, masks = self.images, self.masks
        if images.dim() != 4 or masks.dim() != 3 or images.shape[0] != masks.shape[0]:
            raise ProxyError(
                f"a batch needs images N x C x H x W and masks N x H x W, "
                f"got {tuple(images.shape)} and {tuple(masks.shape)}"
            )
        if images.shape[-2:] != masks.shape[-2:]:
            raise ProxyError(f"images are {tuple(images.shape[-2:])}, masks {tuple(masks.shape[-2:])}")
        labelled = masks[masks != self.ignore_index]
        if labelled.numel() == 0:
            raise ProxyError(f"every pixel of the batch is {self.ignore_index} (ignored): no loss to take")
        if int(labelled.min()) < 0 or int(labelled.max()) >= self.num_classes:
            raise ProxyError(
                f"mask values must be 0 to {self.num_classes - 1} or {self.ignore_index}, "
                f"found {int(labelled.min())} to {int(labelled.max())}"
            )

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    def to(self, device: torch.device) -> Batch:
        return Batch(self.images.to(device), self.masks.to(device), self.num_classes, self.ignore_index)


@dataclass(frozen=True)
class ProxyResult:
    """One proxy's number for one network, or why there is none (``value`` is then NaN)."""

    value: float
    seconds: float  # the proxy's own time, the network's construction excluded
    error: str | None = None


ProxyFunction = Callable[[nn.Module, Batch, torch.Generator], float]
PROXIES: Registry[ProxyFunction] = Registry("zero-cost proxy", catalogue.PROXIES)

#: The layers whose weights the gradient proxies score, as the proxies' reference code does
#: (convolutions and linear layers; here transposed convolutions too, the learned upsamplings).
WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


WeightLayer = nn.Conv2d | nn.ConvTranspose2d | nn.Linear


def weight_layers(model: nn.Module) -> list[WeightLayer]:
    return [m for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]


def pixel_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Cross-entropy over every labelled pixel (the mean; ignored pixels count for nothing)."""
    return F.cross_entropy(logits, batch.masks, ignore_index=batch.ignore_index)


def minibatch(bundle: DatasetBundle, size: int, seed: int) -> Batch:
    """``size`` training images drawn without replacement by ``seed`` (their epoch-0 augmentation)."""
    if size < 1:
        raise ProxyError(f"the batch size must be >= 1, got {size}")
    count = len(bundle.train)
    if size > count:
        raise ProxyError(f"a batch of {size} images, but {bundle.spec} has {count} training images")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:size]
    pairs = [bundle.train[int(i)] for i in order]
    images = torch.stack([image for image, _ in pairs])
    masks = torch.stack([mask for _, mask in pairs])
    return Batch(images, masks, bundle.num_classes, bundle.ignore_index)


def batch_input(batch: Batch) -> str:
    """The minibatch's shape as stored scores are keyed by it, e.g. ``16x3x64x64``."""
    return "x".join(str(int(size)) for size in batch.images.shape)


def compute(
    model_or_genotype: nn.Module | Genotype,
    batch: Batch,
    names: Iterable[str] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, ProxyResult]:
    """Every proxy of ``names`` (all, in catalogue order, by default) on one network, in the order given.

    A genotype is built with weights initialised from ``seed``; a given model is left as it
    is (each proxy works on a copy, on ``device``). A proxy that raises is recorded as that
    proxy's error (NaN value) and the others still run; an unknown name is refused before
    any work.
    """
    chosen = {name: PROXIES.get(name) for name in (catalogue.PROXIES.names() if names is None else names)}
    dev = torch.device(device)
    batch = batch.to(dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: nn.Module
        if isinstance(model_or_genotype, Genotype):
            model = build_model(model_or_genotype, batch.num_classes, int(batch.images.shape[1]))
        else:
            model = model_or_genotype
    return {name: _run(function, model, batch, seed, dev) for name, function in chosen.items()}


def _run(
    function: ProxyFunction, model: nn.Module, batch: Batch, seed: int, device: torch.device
) -> ProxyResult:
    start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            work = _working_copy(model).to(device)
            value = float(function(work, batch, torch.Generator().manual_seed(seed)))
        if math.isnan(value):
            raise ProxyError("the proxy's value is not a number")
    except Exception as err:  # one proxy's failure is its own result; the others still run
        return ProxyResult(math.nan, time.perf_counter() - start, f"{type(err).__name__}: {err}")
    return ProxyResult(value, time.perf_counter() - start)


def _working_copy(model: nn.Module) -> nn.Module:
    """A copy in training mode with every in-place activation turned off, gradients cleared."""
    work = copy.deepcopy(model)
    for module in work.modules():
        if hasattr(module, "inplace"):
            setattr(module, "inplace", False)  # noqa: B010  (torch types the attribute as a tensor)
    for parameter in work.parameters():
        parameter.grad = None
    return work.train()
