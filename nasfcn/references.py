"""The classic segmentation designs as named genotypes: where every leaderboard starts.

They are ordinary genotypes of the same family the spaces describe, so the same builder,
trainer, database and plots handle them as searched candidates. One parameter, ``width``
(channels of the first stage), scales each of them; `for_space` picks it from a space so
the references are compared with candidates of a similar size.

Simplifications against the papers, the same for every reference: batch norm after every
convolution, 3x3 convolutions throughout, and FCN's fully connected fc6/fc7 as one extra
3x3 convolution block before the 1x1 classifier.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from nasfcn.genotype import AttentionGene, EncoderGene, Genotype, HeadGene
from nasfcn.registry import Registry
from nasfcn.space import SearchSpace

#: VGG-16's convolutions per stage (2, 2, 3, 3, 3) over five /2 stages.
VGG_BLOCKS = (2, 2, 3, 3, 3)
DEFAULT_WIDTH = 16


@dataclass(frozen=True)
class Reference:
    """One classic design: how to build it at a width, and what it is."""

    name: str
    summary: str  # the design in one line, for tables and model cards
    source: str  # where it comes from
    build: Callable[[int], Genotype]  # width -> genotype

    def genotype(self, width: int = DEFAULT_WIDTH) -> Genotype:
        if width < 1:
            raise ValueError(f"reference width must be >= 1, got {width}")
        return self.build(width)


REFERENCES: Registry[Reference] = Registry("reference architecture")


def _vgg(width: int) -> EncoderGene:
    """VGG-16's encoder: five stages, 2-2-3-3-3 convolutions, channels capped at 8x the first."""
    return EncoderGene(
        stages=5, width=width, max_width=8 * width, blocks_per_stage=VGG_BLOCKS, downsample="maxpool"
    )


_FC_AS_CONV = HeadGene(kernel_size=1, extra_conv=True, extra_kernel_size=3)


def _fcn(skip: str) -> Callable[[int], Genotype]:
    return lambda width: Genotype(encoder=_vgg(width), skip=skip, upsample="transposed", head=_FC_AS_CONV)


def _unet(attention: AttentionGene) -> Callable[[int], Genotype]:
    def build(width: int) -> Genotype:
        encoder = EncoderGene(stages=4, width=width, blocks_per_stage=2, downsample="maxpool")
        return Genotype(encoder=encoder, skip="unet_concat", upsample="transposed", attention=attention)

    return build


def _add(reference: Reference) -> None:
    REFERENCES.add(reference.name, reference)


_add(
    Reference(
        "fcn32s",
        "VGG-16 encoder, class scores at stride 32 upsampled once (transposed conv, bilinear init)",
        "Long, Shelhamer, Darrell: Fully Convolutional Networks for Semantic Segmentation (2015)",
        _fcn("none"),
    )
)
_add(
    Reference(
        "fcn16s",
        "FCN-32s plus the stride-16 scores added before upsampling",
        "Long, Shelhamer, Darrell (2015)",
        _fcn("fcn16s"),
    )
)
_add(
    Reference(
        "fcn8s",
        "FCN-16s plus the stride-8 scores: fuses strides 32, 16 and 8",
        "Long, Shelhamer, Darrell (2015)",
        _fcn("fcn8s"),
    )
)
_add(
    Reference(
        "segnet",
        "VGG-16 encoder mirrored by a decoder that max-unpools with the encoder's pooling indices",
        "Badrinarayanan, Kendall, Cipolla: SegNet (2017)",
        lambda width: Genotype(encoder=_vgg(width), skip="none", upsample="max_unpool"),
    )
)
_add(
    Reference(
        "unet",
        "four-stage encoder, transposed-conv decoder concatenating the encoder's features at every level",
        "Ronneberger, Fischer, Brox: U-Net (2015)",
        _unet(AttentionGene()),
    )
)
_add(
    Reference(
        "unet_cbam",
        "U-Net with CBAM (channel then spatial attention) in every decoder stage",
        "Woo et al.: CBAM (2018) on U-Net",
        _unet(AttentionGene(type="cbam", where="decoder")),
    )
)


def reference(name: str, width: int = DEFAULT_WIDTH) -> Genotype:
    """The named reference at ``width``; an unknown name lists the known ones."""
    return REFERENCES.get(name).genotype(width)


def width_for_space(space: SearchSpace) -> int:
    """The space's median first-stage width (the lower median of its choices)."""
    values = space.knobs["encoder.width"].values()
    if not values:  # a continuous range
        low, high = space.knobs["encoder.width"].bounds()
        return max(1, round((low + high) / 2))
    return int(statistics.median_low(sorted(int(v) for v in values)))


def for_space(space: SearchSpace, names: tuple[str, ...] | None = None) -> dict[str, Genotype]:
    """References at a width taken from ``space``, so they compare with its candidates."""
    width = width_for_space(space)
    return {name: reference(name, width) for name in (names or REFERENCES.names())}
