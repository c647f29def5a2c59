"""Convolution blocks, normalizations, activations and downsamplers, by registry name."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from nasfcn import catalogue
from nasfcn.registry import Registry

NORMS: Registry[Callable[[int], nn.Module]] = Registry("normalization", catalogue.NORMS)
ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation", catalogue.ACTIVATIONS)
#: name -> module class(channels, norm, activation); whether it keeps pooling indices is a
#: property of the name, in ``nasfcn.catalogue.DOWNSAMPLING``.
DOWNSAMPLERS: Registry[Callable[[int, str, str], nn.Module]] = Registry(
    "downsampling", catalogue.DOWNSAMPLING
)


@NORMS.register("batch")
def _batch_norm(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels)


@NORMS.register("group")
def _group_norm(channels: int) -> nn.Module:
    # Up to 8 groups: tiny search widths (e.g. 12 channels) must still divide evenly.
    return nn.GroupNorm(math.gcd(channels, 8), channels)


@NORMS.register("none")
def _no_norm(channels: int) -> nn.Module:
    return nn.Identity()


ACTIVATIONS.add("relu", lambda: nn.ReLU(inplace=True))
ACTIVATIONS.add("leaky_relu", lambda: nn.LeakyReLU(0.1, inplace=True))
ACTIVATIONS.add("gelu", nn.GELU)
ACTIVATIONS.add("silu", lambda: nn.SiLU(inplace=True))


class ConvBlock(nn.Sequential):
    """kxk convolution (size-preserving padding) + normalization + activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        norm: str = "batch",
        activation: str = "relu",
        stride: int = 1,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                bias=norm == "none",
            ),
            NORMS.get(norm)(out_channels),
            ACTIVATIONS.get(activation)(),
        )


class MaxPoolDown(nn.Module):
    """2x2 max-pooling that keeps its indices for SegNet-style max-unpooling."""

    def __init__(self, channels: int, norm: str, activation: str) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pool(x)


class StridedConvDown(nn.Module):
    """A learned /2 downsampling: 3x3 convolution with stride 2."""

    def __init__(self, channels: int, norm: str, activation: str) -> None:
        super().__init__()
        self.conv = ConvBlock(channels, channels, 3, norm=norm, activation=activation, stride=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # No pooling indices exist; an empty tensor keeps the signature uniform.
        return self.conv(x), torch.empty(0, dtype=torch.long, device=x.device)


DOWNSAMPLERS.add("maxpool", MaxPoolDown)
DOWNSAMPLERS.add("strided_conv", StridedConvDown)
