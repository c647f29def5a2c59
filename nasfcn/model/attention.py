"""Attention blocks: channel (squeeze-and-excitation), spatial, and mixed (CBAM)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasfcn import catalogue
from nasfcn.registry import Registry

#: Channel reduction of SE and CBAM's channel gate. Fixed rather than searched: with the
#: small widths of a search, different ratios often build identical networks.
ATTENTION_REDUCTION = 4

#: name -> factory(channels, reduction) building a shape-preserving module.
ATTENTION: Registry[Callable[[int, int], nn.Module]] = Registry("attention", catalogue.ATTENTION)


class ChannelAttention(nn.Module):
    """SE (Hu et al.): reweight channels from globally pooled statistics.

    With ``use_max`` (CBAM's variant) max-pooled statistics go through the same MLP too.
    """

    def __init__(self, channels: int, reduction: int, use_max: bool = False) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.use_max = use_max
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        if self.use_max:
            logits = logits + self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(logits)


class SpatialAttention(nn.Module):
    """CBAM's spatial gate: a 7x7 conv over channel-wise mean and max maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(stats))


class CBAM(nn.Module):
    """Woo et al.: channel attention followed by spatial attention."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction, use_max=True)
        self.spatial = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


ATTENTION.add("none", lambda channels, reduction: nn.Identity())
ATTENTION.add("se", lambda channels, reduction: ChannelAttention(channels, reduction))
ATTENTION.add("spatial", lambda channels, reduction: SpatialAttention())
ATTENTION.add("cbam", CBAM)
