"""Proxies that use no image, only the minibatch's shape: synflow and zen.

Both rework the network first, as their papers do (on the copy ``compute`` hands them):
synflow strips normalisation and takes absolute weights in double precision; zen draws
every weight again from a standard normal and keeps BatchNorm, whose batch statistics are
part of its score.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nasfcn.proxies._core import PROXIES, Batch, ProxyError, weight_layers

NORMALISATIONS = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)
#: Zen-NAS's perturbation scale alpha in f(x + alpha * eps).
ZEN_ALPHA = 0.01


def _without_normalisation(model: nn.Module) -> nn.Module:
    """Every normalisation layer replaced by the identity (in place)."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, NORMALISATIONS):
                setattr(module, name, nn.Identity())
    return model


@PROXIES.register("synflow")
def synflow(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """Synaptic flow: sum over every weight of |W * dR/dW|, R the summed output of a positive net.

    Tanaka et al., "Pruning neural networks without any data by iteratively conserving
    synaptic flow" (NeurIPS 2020), as an architecture score in Abdelfattah et al. 2021:
    normalisation removed (their ``bn=False``), double precision (the product of many
    layers overflows float32), every parameter replaced by its absolute value, one input of
    ones, R = the sum of the outputs. Adapted: the input is one image of the minibatch's
    size and R sums every logit of every pixel. For a bias-free net of L linear layers
    (ReLU passes positive values unchanged) the score is L * R, by Euler's theorem.
    """
    net = _without_normalisation(model).double()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.abs_()
    weights = [layer.weight for layer in weight_layers(net)]
    if not weights:
        raise ProxyError(f"{type(model).__name__} has no convolution or linear weights to score")
    ones = torch.ones((1, *batch.images.shape[1:]), dtype=torch.float64, device=batch.images.device)
    flow = net(ones).sum()
    grads = torch.autograd.grad(flow, weights, allow_unused=True)
    return float(
        sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads, strict=True) if g is not None)
    )


def _gaussian_init(model: nn.Module, generator: torch.Generator) -> None:
    """Zen-NAS's initialisation: weights N(0, 1) in ``model.modules()`` order, biases 0, norms 1/0."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator))
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, NORMALISATIONS) and getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
                module.bias.zero_()


@PROXIES.register("zen")
def zen(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """log E_x ||f(x) - f(x + a * eps)|| + sum over BatchNorm layers of log sqrt(mean_c var_c).

    Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition" (ICCV
    2021): weights drawn from N(0, 1) (``_gaussian_init``, after which x and then eps are
    drawn, both N(0, 1) of the minibatch's shape, all from ``generator``), a = 0.01, BatchNorm
    in training mode; var_c is the batch variance each BatchNorm channel divides by in the
    forward of x. The norm is the sum of absolute differences per image, averaged over the
    images, as Zen-NAS's released code computes it (the paper writes a Frobenius norm).
    Adapted: f is the network's per-pixel logits, which take the pre-pooling feature map's
    place (a segmentation network pools nothing); one draw rather than the paper's 32 repeats.
    """
    _gaussian_init(model, generator)
    shape = tuple(batch.images.shape)
    x = torch.randn(shape, generator=generator).to(batch.images.device)
    eps = torch.randn(shape, generator=generator).to(batch.images.device)
    scales: list[float] = []

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        variance = args[0].detach().to(torch.float64).var(dim=(0, 2, 3), unbiased=False)
        scales.append(0.5 * math.log(float(variance.mean())))

    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    handles = [m.register_forward_pre_hook(record) for m in norms]
    with torch.no_grad():
        try:
            clean = model(x)
        finally:
            for handle in handles:
                handle.remove()
        noisy = model(x + ZEN_ALPHA * eps)
    difference = (clean - noisy).abs().sum(dim=(1, 2, 3)).mean()
    return math.log(float(difference)) + sum(scales)
