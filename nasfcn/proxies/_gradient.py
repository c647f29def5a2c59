"""Proxies from the gradient of the per-pixel loss at initialisation: grad_norm, snip, grasp, fisher.

All four follow Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021),
which turned pruning-at-initialisation scores into architecture scores by summing them over
every weight of the network. The adaptation to segmentation is the loss alone: the mean
cross-entropy over every labelled pixel of the minibatch (``pixel_loss``; the ignore index
counts for nothing) instead of over images. BatchNorm stays in, in training mode, as in
their code. The weights scored are those of every convolution, transposed convolution and
linear layer (``weight_layers``); biases and normalisation parameters are not.
"""

from __future__ import annotations

import torch
from torch import nn

from nasfcn.proxies._core import PROXIES, Batch, ProxyError, pixel_loss, weight_layers


def _weights(model: nn.Module) -> list[torch.Tensor]:
    weights = [layer.weight for layer in weight_layers(model)]
    if not weights:
        raise ProxyError(f"{type(model).__name__} has no convolution or linear weights to score")
    return weights


def _gradients(
    loss: torch.Tensor, weights: list[torch.Tensor], create_graph: bool = False
) -> list[torch.Tensor]:
    """d loss / d weight for each weight; a weight the loss does not reach gets zeros."""
    found = torch.autograd.grad(loss, weights, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for w, g in zip(weights, found, strict=True)]


@PROXIES.register("grad_norm")
def grad_norm(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """Sum over layers of the Euclidean norm of the loss's gradient w.r.t. the layer's weight.

    Abdelfattah et al. 2021 (their ``grad_norm``): sum_l ||dL/dW_l||_2, with L the per-pixel
    cross-entropy of the minibatch.
    """
    weights = _weights(model)
    grads = _gradients(pixel_loss(model(batch.images), batch), weights)
    return float(sum(float(g.norm()) for g in grads))


@PROXIES.register("snip")
def snip(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """Connection sensitivity summed over every weight: sum |W * dL/dW|.

    Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity" (ICLR
    2019): a connection's saliency is |dL/dc| at mask c = 1, which is |w * dL/dw|; summed over
    the network as in Abdelfattah et al. 2021. L is the per-pixel cross-entropy.
    """
    weights = _weights(model)
    grads = _gradients(pixel_loss(model(batch.images), batch), weights)
    return float(sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads, strict=True)))


@PROXIES.register("grasp")
def grasp(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """Gradient-flow preservation summed over every weight: sum -W * (H g).

    Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient Flow" (ICLR
    2020): H is the Hessian of the loss, g its gradient; Hg is the gradient of g . stop(g).
    Summed over the network with the sign of Abdelfattah et al. 2021 (higher = better). L is
    the per-pixel cross-entropy; one forward serves both derivatives.
    """
    weights = _weights(model)
    grads = _gradients(pixel_loss(model(batch.images), batch), weights, create_graph=True)
    flow = sum((g * g.detach()).sum() for g in grads)
    if not isinstance(flow, torch.Tensor) or not flow.requires_grad:
        raise ProxyError("the loss has no second derivative with respect to the weights")
    hessian_grads = _gradients(flow, weights)
    return float(sum(float((-w.detach() * hg).sum()) for w, hg in zip(weights, hessian_grads, strict=True)))


@PROXIES.register("fisher")
def fisher(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """Fisher information of every output channel of every convolution, summed.

    Theis et al., "Faster gaze prediction with dense networks and Fisher pruning" (2018), as
    a proxy in Turner et al. (BlockSwap, ICLR 2020) and Abdelfattah et al. 2021: for a layer's
    activation a (N x C x H x W) and g = dL/da, channel k scores 0.5 * mean_n (sum_{h,w}
    a * g)^2; a network scores the sum over channels and layers. For segmentation the sum over
    positions is over every pixel of the feature map and L is the per-pixel cross-entropy.
    """
    captured: list[tuple[torch.Tensor, list[torch.Tensor]]] = []

    def keep(module: nn.Module, args: object, output: torch.Tensor) -> None:
        grads: list[torch.Tensor] = []
        output.register_hook(grads.append)
        captured.append((output.detach(), grads))

    layers = [m for m in weight_layers(model) if not isinstance(m, nn.Linear)]
    if not layers:
        raise ProxyError(f"{type(model).__name__} has no convolution to score")
    handles = [layer.register_forward_hook(keep) for layer in layers]
    try:
        loss = pixel_loss(model(batch.images), batch)
    finally:
        for handle in handles:
            handle.remove()
    loss.backward()
    total = 0.0
    for activation, grads in captured:
        if not grads:  # the loss does not depend on this output
            continue
        per_channel = (activation * grads[0]).sum(dim=(2, 3))  # N x C
        total += float(per_channel.pow(2).mean(dim=0).mul(0.5).sum())
    return total
