"""Proxies from how the untrained network separates its inputs: naswot and jacov.

What counts as a sample: an **image**. Both papers compare the network's response to the
inputs of a minibatch, one input being what the network classifies. A segmentation
network's input is an image, so each image is one sample and its code (or Jacobian) holds
every pixel position: the kernel is N x N for N images, as cheap as for classification.
Pixels as samples would need one code per output pixel through layers of different
resolutions and an (N*H*W)^2 kernel (67 million entries for 8 images of 32 x 32), for a
ranking of networks that only needs to tell them apart.
"""

from __future__ import annotations

import torch
from torch import nn

from nasfcn.proxies._core import PROXIES, Batch, ProxyError

#: The activations whose pre-activation sign is a unit's "on/off" bit (ReLU's, and the sign at
#: which the smooth ones cross zero).
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)
#: jacov's regulariser k in -sum(log(l + k) + 1 / (l + k)) (Mellor et al.'s value).
JACOV_K = 1e-5


def naswot_kernel(codes: torch.Tensor) -> torch.Tensor:
    """K[i, j] = units where the binary codes of samples i and j agree = N_A - Hamming(c_i, c_j).

    ``codes`` is samples x units of 0/1; computed as c c^T + (1 - c)(1 - c)^T.
    """
    c = codes.to(torch.float64)
    return c @ c.T + (1 - c) @ (1 - c).T


@PROXIES.register("naswot")
def naswot(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """log |K|, K the activation-pattern kernel of the minibatch's images.

    Mellor et al., "Neural Architecture Search without Training" (ICML 2021): each ReLU
    unit is on or off for an input; an input's binary code lists every unit's state; K sums,
    over the activation layers, how many units two inputs share a state in
    (``naswot_kernel``); the score is log |K| (slogdet; -inf when two images share every
    bit). Adapted: a sample is an image (module docstring), its code every unit at every
    pixel position of every activation layer. A unit is on when its pre-activation is > 0.
    """
    count = int(batch.images.shape[0])
    if count < 2:
        raise ProxyError("naswot needs a batch of 2 images or more")
    kernel = torch.zeros(count, count, dtype=torch.float64, device=batch.images.device)

    def add(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        nonlocal kernel
        kernel = kernel + naswot_kernel((args[0].detach() > 0).reshape(count, -1))

    activations = [m for m in model.modules() if isinstance(m, ACTIVATIONS)]
    if not activations:
        raise ProxyError(f"{type(model).__name__} has no activation layer (ReLU, GELU, ...)")
    handles = [module.register_forward_pre_hook(add) for module in activations]
    try:
        with torch.no_grad():
            model(batch.images)
    finally:
        for handle in handles:
            handle.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def jacov_score(jacobians: torch.Tensor) -> float:
    """-sum_i (log(l_i + k) + 1 / (l_i + k)) over the eigenvalues l_i of the rows' correlation matrix."""
    rows = jacobians.reshape(jacobians.shape[0], -1).to(torch.float64)
    correlation = torch.corrcoef(rows)
    if not bool(torch.isfinite(correlation).all()):
        raise ProxyError("an image's input Jacobian is constant: its correlation is undefined")
    eigenvalues = torch.linalg.eigvalsh(correlation)
    return float(-(torch.log(eigenvalues + JACOV_K) + 1 / (eigenvalues + JACOV_K)).sum())


@PROXIES.register("jacov")
def jacov(model: nn.Module, batch: Batch, generator: torch.Generator) -> float:
    """How uncorrelated the images' input Jacobians are (higher = more distinct local maps).

    Mellor et al., "Neural Architecture Search without Training" (arXiv v1, 2020), as
    ``jacob_cov`` in Abdelfattah et al. 2021: J_i = d(sum of the network's outputs)/d x_i for
    each input, the correlation matrix of the J_i, score ``jacov_score``. Adapted: the output
    summed is every logit of every pixel of image i, a sample is an image (module docstring).
    """
    if int(batch.images.shape[0]) < 2:
        raise ProxyError("jacov needs a batch of 2 images or more")
    images = batch.images.detach().clone().requires_grad_(True)
    (jacobians,) = torch.autograd.grad(model(images).sum(), images)
    return jacov_score(jacobians)
