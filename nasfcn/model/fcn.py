"""The FCN family built from a genotype: encoder -> decoder -> head, joined in one forward.

Two decoder families cover the literature:

* **score decoders** (FCN-32s/16s/8s): the head classifies the deepest features; class
  scores are upsampled, fused with 1x1 "score" convolutions of shallower levels, and
  upsampled once more to the input size;
* **feature decoders** (U-Net, SegNet): features are upsampled one level at a time,
  fused with the encoder's (concatenation or addition) and refined by conv blocks; the
  head classifies at full resolution. Max-unpooling always takes this path because it
  needs the pooling indices of every level.

Inputs of any size work: the forward pads to a multiple of the total stride and crops
the logits back, so every internal size is exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasfcn import catalogue
from nasfcn.genotype import EncoderGene, Genotype
from nasfcn.model.attention import ATTENTION, ATTENTION_REDUCTION
from nasfcn.model.blocks import DOWNSAMPLERS, ConvBlock
from nasfcn.model.skip import FUSIONS, SKIPS
from nasfcn.model.upsample import UPSAMPLERS


def _attention(genotype: Genotype, channels: int, enabled: bool) -> nn.Module:
    if not enabled:
        return nn.Identity()
    return ATTENTION.get(genotype.attention.type)(channels, ATTENTION_REDUCTION)


class Encoder(nn.Module):
    """``stages`` levels of conv blocks, each followed by a /2 downsample, then a centre block."""

    def __init__(self, genotype: Genotype, in_channels: int) -> None:
        super().__init__()
        enc: EncoderGene = genotype.encoder
        channels = enc.channels
        self.stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        previous = in_channels
        for i in range(enc.stages):
            blocks: list[nn.Module] = []
            for b in range(enc.blocks_per_stage[i]):
                blocks.append(
                    ConvBlock(
                        previous if b == 0 else channels[i],
                        channels[i],
                        enc.kernel_size[i],
                        enc.dilation[i],
                        enc.norm,
                        enc.activation,
                    )
                )
            blocks.append(_attention(genotype, channels[i], genotype.attention.in_encoder))
            self.stages.append(nn.Sequential(*blocks))
            self.downs.append(DOWNSAMPLERS.get(enc.downsample)(channels[i], enc.norm, enc.activation))
            previous = channels[i]
        self.center = nn.Sequential(
            ConvBlock(previous, channels[-1], enc.kernel_size[-1], 1, enc.norm, enc.activation),
            _attention(genotype, channels[-1], genotype.attention.in_encoder),
        )

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        skips: list[torch.Tensor] = []
        indices: list[torch.Tensor] = []
        for stage, down in zip(self.stages, self.downs, strict=True):
            x = stage(x)
            skips.append(x)
            x, idx = down(x)
            indices.append(idx)
        return skips, indices, self.center(x)


class Head(nn.Module):
    """Optional attention and extra kxk conv block, then the classifier convolution."""

    def __init__(self, genotype: Genotype, channels: int, num_classes: int, attention: bool) -> None:
        super().__init__()
        head, enc = genotype.head, genotype.encoder
        self.attention = _attention(genotype, channels, attention)
        self.extra: nn.Module = nn.Identity()
        if head.extra_conv:
            self.extra = ConvBlock(
                channels, channels, head.extra_kernel_size or 3, 1, enc.norm, enc.activation
            )
        self.classifier = nn.Conv2d(channels, num_classes, head.kernel_size, padding=head.kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.extra(self.attention(x)))


class ScoreDecoder(nn.Module):
    """FCN-32s/16s/8s: upsample class scores, add scores of shallower levels, upsample once."""

    def __init__(self, genotype: Genotype, num_classes: int) -> None:
        super().__init__()
        enc = genotype.encoder
        self.levels = SKIPS.get(genotype.skip).levels(enc.stages)
        up = UPSAMPLERS.get(genotype.upsample)
        self.ups = nn.ModuleList(up(num_classes, num_classes, 2) for _ in self.levels)
        self.scores = nn.ModuleList()
        self.attention = nn.ModuleList()
        for level in self.levels:
            score = nn.Conv2d(enc.channels[level], num_classes, 1)
            # As in the FCN paper: new score layers start at zero, so the net starts as FCN-32s.
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
            self.scores.append(score)
            self.attention.append(_attention(genotype, enc.channels[level], genotype.attention.in_decoder))
        last = self.levels[-1] if self.levels else enc.stages
        self.final = up(num_classes, num_classes, 2**last)

    def forward(
        self,
        x: torch.Tensor,
        skips: list[torch.Tensor],
        indices: list[torch.Tensor],
        size: list[int],
    ) -> torch.Tensor:
        empty = indices[0]
        for level, up, score, attention in zip(
            self.levels, self.ups, self.scores, self.attention, strict=True
        ):
            skip = skips[level]
            x = up(x, list(skip.shape[-2:]), empty) + score(attention(skip))
        return self.final(x, size, empty)


class FeatureDecoder(nn.Module):
    """U-Net / SegNet: one level at a time, upsample, fuse with the encoder, refine."""

    def __init__(self, genotype: Genotype) -> None:
        super().__init__()
        enc = genotype.encoder
        channels = enc.channels
        spec = SKIPS.get(genotype.skip)
        fused = set(spec.levels(enc.stages))
        make_fusion, fused_channels = FUSIONS.get(spec.fusion)
        up = UPSAMPLERS.get(genotype.upsample)
        self.levels = tuple(range(enc.stages - 1, -1, -1))
        self.fused = tuple(level in fused for level in self.levels)
        self.ups = nn.ModuleList()
        self.fusions = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for level in self.levels:
            self.ups.append(up(channels[level + 1], channels[level], 2))
            width = channels[level]
            if level in fused:
                self.fusions.append(make_fusion())
                width = fused_channels(channels[level])
            else:
                self.fusions.append(nn.Identity())
            blocks: list[nn.Module] = [
                ConvBlock(
                    width if b == 0 else channels[level],
                    channels[level],
                    enc.kernel_size[level],
                    1,
                    enc.norm,
                    enc.activation,
                )
                for b in range(enc.blocks_per_stage[level])
            ]
            blocks.append(_attention(genotype, channels[level], genotype.attention.in_decoder))
            self.blocks.append(nn.Sequential(*blocks))

    def forward(
        self,
        x: torch.Tensor,
        skips: list[torch.Tensor],
        indices: list[torch.Tensor],
        size: list[int],
    ) -> torch.Tensor:
        for level, is_fused, up, fusion, block in zip(
            self.levels, self.fused, self.ups, self.fusions, self.blocks, strict=True
        ):
            skip = skips[level]
            x = up(x, list(skip.shape[-2:]), indices[level])
            if is_fused:
                x = fusion(x, skip)
            x = block(x)
        return x


class FCN(nn.Module):
    """A fully convolutional segmentation network: logits N x classes x H x W for any H, W."""

    def __init__(self, genotype: Genotype, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.genotype = genotype
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stride = 2**genotype.encoder.stages
        spec = SKIPS.get(genotype.skip)
        needs_indices = catalogue.UPSAMPLING.get(genotype.upsample).needs_pool_indices
        # Max-unpooling must visit every level's indices, so it implies the feature decoder.
        self.scores_first = not (spec.feature_decoder or needs_indices)
        self.encoder = Encoder(genotype, in_channels)
        channels = genotype.encoder.channels
        if self.scores_first:
            self.decoder: nn.Module = ScoreDecoder(genotype, num_classes)
            self.head = Head(genotype, channels[-1], num_classes, genotype.attention.in_decoder)
        else:
            self.decoder = FeatureDecoder(genotype)
            self.head = Head(genotype, channels[0], num_classes, attention=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Skipped while tracing (TorchScript export): the traced convolutions fix the channels anyway.
        if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != self.in_channels):
            raise ValueError(f"expected input N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        height, width = x.shape[-2], x.shape[-1]
        pad_h = (self.stride - height % self.stride) % self.stride
        pad_w = (self.stride - width % self.stride) % self.stride
        x = F.pad(x, [0, pad_w, 0, pad_h])
        size = [x.shape[-2], x.shape[-1]]
        skips, indices, deepest = self.encoder(x)
        if self.scores_first:
            out = self.decoder(self.head(deepest), skips, indices, size)
        else:
            out = self.head(self.decoder(deepest, skips, indices, size))
        return out[:, :, :height, :width]


def build_model(genotype: Genotype, num_classes: int, in_channels: int = 3) -> FCN:
    """The network a genotype describes, freshly initialised."""
    return FCN(genotype, num_classes, in_channels)
