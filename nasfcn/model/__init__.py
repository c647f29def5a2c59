"""FCN builder: ``build_model(genotype, num_classes, in_channels)`` and its registries."""

from nasfcn.model.attention import ATTENTION
from nasfcn.model.blocks import ACTIVATIONS, DOWNSAMPLERS, NORMS
from nasfcn.model.fcn import FCN, build_model
from nasfcn.model.skip import FUSIONS, SKIPS
from nasfcn.model.upsample import UPSAMPLERS

__all__ = [
    "ACTIVATIONS",
    "ATTENTION",
    "DOWNSAMPLERS",
    "FCN",
    "FUSIONS",
    "NORMS",
    "SKIPS",
    "UPSAMPLERS",
    "build_model",
]
