"""Skip paths: which encoder levels the decoder fuses, and how.

Levels are numbered by resolution: level ``i`` holds the encoder's stage-``i`` features
at 1/2**i of the (padded) input; the deepest, centre features are at level ``stages``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nasfcn import catalogue
from nasfcn.registry import Registry


@dataclass(frozen=True)
class SkipSpec:
    levels: Callable[[int], tuple[int, ...]]  # stages -> fused levels, deepest first
    fusion: str  # FUSIONS key
    feature_decoder: bool  # U-Net family (fuse features) rather than FCN family (fuse scores)


class AddFusion(nn.Module):
    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return x + skip


class ConcatFusion(nn.Module):
    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, skip], dim=1)


#: name -> (module factory, output channels as a function of the shared channel count)
FUSIONS: Registry[tuple[Callable[[], nn.Module], Callable[[int], int]]] = Registry("skip fusion")
FUSIONS.add("add", (AddFusion, lambda channels: channels))
FUSIONS.add("concat", (ConcatFusion, lambda channels: 2 * channels))

#: The fewest stages each path needs is a property of its name, in ``nasfcn.catalogue.SKIP_PATHS``.
SKIPS: Registry[SkipSpec] = Registry("skip path", catalogue.SKIP_PATHS)
# FCN-32s: classify the deepest features and upsample once.
SKIPS.add("none", SkipSpec(lambda s: (), "add", feature_decoder=False))
# FCN-16s / FCN-8s: add class scores of the one / two next-deepest levels.
SKIPS.add("fcn16s", SkipSpec(lambda s: (s - 1,), "add", feature_decoder=False))
SKIPS.add("fcn8s", SkipSpec(lambda s: (s - 1, s - 2), "add", feature_decoder=False))
# U-Net: fuse encoder features at every level on the way up.
SKIPS.add(
    "unet_concat",
    SkipSpec(lambda s: tuple(range(s - 1, -1, -1)), "concat", feature_decoder=True),
)
SKIPS.add(
    "unet_add",
    SkipSpec(lambda s: tuple(range(s - 1, -1, -1)), "add", feature_decoder=True),
)
