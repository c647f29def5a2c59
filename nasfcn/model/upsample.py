"""Upsampling by an integer factor: bilinear, transposed conv, pixel shuffle, max-unpooling.

Every upsampler maps ``in_channels`` to ``out_channels`` and is called as
``up(x, size, indices)``: ``size`` is the exact target size (the model pads its input to
a multiple of its total stride, so the factor always divides evenly) and ``indices`` are
the pooling indices of the matching encoder stage (used by max-unpooling only).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nasfcn import catalogue
from nasfcn.registry import Registry

#: name -> module class(in_channels, out_channels, factor); whether it needs the encoder's
#: pooling indices is a property of the name, in ``nasfcn.catalogue.UPSAMPLING``.
UPSAMPLERS: Registry[Callable[[int, int, int], nn.Module]] = Registry("upsampling", catalogue.UPSAMPLING)


def _project(in_channels: int, out_channels: int) -> nn.Module:
    if in_channels == out_channels:
        return nn.Identity()
    return nn.Conv2d(in_channels, out_channels, 1)


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """The FCN paper's initialisation: a transposed conv that starts as bilinear upsampling."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    coords = torch.arange(kernel_size, dtype=torch.float32)
    profile = 1 - (coords - center).abs() / factor
    kernel = profile[:, None] * profile[None, :]
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = kernel
    return weight


class BilinearUp(nn.Module):
    """1x1 projection at low resolution (cheaper), then bilinear interpolation."""

    def __init__(self, in_channels: int, out_channels: int, factor: int) -> None:
        super().__init__()
        self.project = _project(in_channels, out_channels)

    def forward(self, x: torch.Tensor, size: list[int], indices: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.project(x), size=size, mode="bilinear", align_corners=False)


class TransposedUp(nn.Module):
    """Learned deconvolution: kernel 2f, stride f, padding f/2 gives exactly f times the size."""

    def __init__(self, in_channels: int, out_channels: int, factor: int) -> None:
        super().__init__()
        kernel = 2 * factor
        self.deconv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel, stride=factor, padding=factor // 2, bias=False
        )
        if in_channels == out_channels:
            with torch.no_grad():
                self.deconv.weight.copy_(bilinear_kernel(in_channels, kernel))

    def forward(self, x: torch.Tensor, size: list[int], indices: torch.Tensor) -> torch.Tensor:
        return self.deconv(x)


class PixelShuffleUp(nn.Module):
    """Sub-pixel convolution: a 1x1 conv to out*f*f channels rearranged into f x f blocks."""

    def __init__(self, in_channels: int, out_channels: int, factor: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * factor * factor, 1)
        self.shuffle = nn.PixelShuffle(factor)

    def forward(self, x: torch.Tensor, size: list[int], indices: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class Unpool2x2(nn.Module):
    """The inverse of 2x2, stride-2 max-pooling: each value goes back to where its index says.

    The same result and gradient as ``nn.MaxUnpool2d(2, stride=2)`` (the pooling windows do
    not overlap, so no two values share a place), written as one scatter: ``MaxUnpool2d``
    checks its output size with Python conditions that TorchScript tracing cannot record,
    whereas this keeps height and width dynamic in traced and ONNX-exported models.
    """

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        out = x.new_zeros((n, c, 4 * h * w))
        return out.scatter(2, indices.flatten(2), x.flatten(2)).view(n, c, 2 * h, 2 * w)


class MaxUnpoolUp(nn.Module):
    """SegNet: put each value back where the encoder's max-pooling found it."""

    def __init__(self, in_channels: int, out_channels: int, factor: int) -> None:
        super().__init__()
        if factor != 2:
            raise ValueError("max-unpooling undoes one 2x2 pooling at a time (factor 2)")
        self.project = _project(in_channels, out_channels)
        self.unpool = Unpool2x2()

    def forward(self, x: torch.Tensor, size: list[int], indices: torch.Tensor) -> torch.Tensor:
        # The model pads its input to a multiple of its stride, so the result is exactly ``size``.
        return self.unpool(self.project(x), indices)


UPSAMPLERS.add("bilinear", BilinearUp)
UPSAMPLERS.add("transposed", TransposedUp)
UPSAMPLERS.add("pixel_shuffle", PixelShuffleUp)
UPSAMPLERS.add("max_unpool", MaxUnpoolUp)
