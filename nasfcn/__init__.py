"""nasfcn: architecture search and benchmarking for fully convolutional segmentation nets."""

from nasfcn.errors import NasfcnError
from nasfcn.genotype import Genotype, GenotypeError
from nasfcn.space import SearchSpace, SpaceError, load_space

__version__ = "0.1.0"

__all__ = [
    "Genotype",
    "GenotypeError",
    "NasfcnError",
    "SearchSpace",
    "SpaceError",
    "__version__",
    "build_model",
    "load_bundle",
    "load_space",
]


def __getattr__(name: str):  # torch is imported only when a model is wanted
    if name == "build_model":
        from nasfcn.model import build_model

        return build_model
    if name == "load_bundle":
        from nasfcn.bundle import load_bundle

        return load_bundle
    raise AttributeError(f"module 'nasfcn' has no attribute {name!r}")
