"""The catalogue of named choices: every name the YAML language, the CLI and configs accept.

Names and the properties other parts reason about (max-unpooling needs pooling indices,
NSGA-II is multi-objective, ...) live here and nowhere else. The model, the trainer and
the searcher register an implementation under each key, and their registries refuse a
key this catalogue lacks; ``tests/test_catalogue.py`` checks that every key has one.

Plain data only: importing it (and so loading a search space) never imports torch, Ray,
Optuna or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from nasfcn.registry import Registry


@dataclass(frozen=True)
class Choice:
    """One named choice and a one-line description of it."""

    name: str
    doc: str
    hint: str = ""  # a few words the CLI help shows after the name, e.g. "early stopping"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.hint})" if self.hint else self.name


@dataclass(frozen=True)
class SkipPath(Choice):
    min_stages: int = 1  # fewest encoder stages that leave the fusion meaningful


@dataclass(frozen=True)
class Upsampling(Choice):
    # Reuses the matching encoder stage's max-pooling indices, so it undoes one /2 step at a
    # time (the decoder visits every level) and needs a downsampling that keeps its indices.
    needs_pool_indices: bool = False


@dataclass(frozen=True)
class Downsampling(Choice):
    keeps_pool_indices: bool = False  # records the indices max-unpooling reuses


@dataclass(frozen=True)
class Dataset(Choice):
    takes_path: bool = False  # written ``name:PATH`` rather than ``name`` (generated from a seed)

    @property
    def spec(self) -> str:
        return f"{self.name}:PATH" if self.takes_path else self.name


@dataclass(frozen=True)
class Strategy(Choice):
    multi_objective: bool = False  # needs two or more --objectives
    exhaustive: bool = False  # walks the whole space instead of sampling it


@dataclass(frozen=True)
class Proxy(Choice):
    timed: bool = False  # a wall-clock measurement: not the same number twice


C = TypeVar("C", bound=Choice)


def _kind(kind: str, *choices: C) -> Registry[C]:
    registry: Registry[C] = Registry(kind)
    for choice in choices:
        registry.add(choice.name, choice)
    return registry


SKIP_PATHS = _kind(
    "skip path",
    SkipPath("none", "FCN-32s: classify the deepest features and upsample once"),
    SkipPath("fcn16s", "FCN-16s: add the class scores of the next-deepest level", min_stages=2),
    SkipPath("fcn8s", "FCN-8s: add the class scores of the two next-deepest levels", min_stages=3),
    SkipPath("unet_concat", "U-Net: concatenate encoder features at every level on the way up"),
    SkipPath("unet_add", "U-Net: add encoder features at every level on the way up"),
)
UPSAMPLING = _kind(
    "upsampling",
    Upsampling("bilinear", "1x1 projection, then bilinear interpolation"),
    Upsampling("transposed", "learned transposed convolution, initialised as bilinear"),
    Upsampling("pixel_shuffle", "sub-pixel convolution"),
    Upsampling("max_unpool", "SegNet: values go back where max-pooling found them", needs_pool_indices=True),
)
DOWNSAMPLING = _kind(
    "downsampling",
    Downsampling("maxpool", "2x2 max-pooling", keeps_pool_indices=True),
    Downsampling("strided_conv", "3x3 convolution with stride 2"),
)
NORMS = _kind(
    "normalization",
    Choice("batch", "batch normalization"),
    Choice("group", "group normalization, up to 8 groups"),
    Choice("none", "no normalization (the convolution gets a bias)"),
)
ACTIVATIONS = _kind(
    "activation",
    Choice("relu", "ReLU"),
    Choice("leaky_relu", "leaky ReLU, slope 0.1"),
    Choice("gelu", "GELU"),
    Choice("silu", "SiLU (swish)"),
)
ATTENTION = _kind(
    "attention",
    Choice("none", "no attention block"),
    Choice("se", "squeeze-and-excitation: reweight channels"),
    Choice("spatial", "CBAM's spatial gate"),
    Choice("cbam", "CBAM: channel then spatial attention"),
)
ATTENTION_PLACES = _kind(
    "attention placement",
    Choice("encoder", "after every encoder stage"),
    Choice("decoder", "in the decoder"),
    Choice("both", "in the encoder and the decoder"),
)
OPTIMIZERS = _kind(
    "optimizer",
    Choice("sgd", "SGD with momentum"),
    Choice("adamw", "AdamW"),
)
LR_SCHEDULES = _kind(
    "learning-rate schedule",
    Choice("cosine", "cosine decay to zero"),
    Choice("poly", "polynomial decay (poly_power)"),
    Choice("constant", "no decay"),
)
DATASETS = _kind(
    "dataset",
    Dataset("shapes", "generated circles, squares and triangles on textured, noisy backgrounds"),
    Dataset("digits", "scenes of real handwritten digits from scikit-learn (11 classes, no download)"),
    Dataset("photos", "horse, digit and star silhouettes pasted on bundled photographs (no download)"),
    Dataset("coins", "small and large real coins cut out of a bundled photograph, pasted on others"),
    Dataset("voc", "PASCAL VOC layout: voc:PATH/TO/VOC2012", takes_path=True),
    Dataset(
        "folder",
        "images/ + masks/ (PNG class indices) with matching stems; optional classes.txt, splits/",
        takes_path=True,
    ),
)
STRATEGIES = _kind(
    "search strategy",
    Strategy("random", "random sampling"),
    Strategy("tpe", "Optuna's tree-structured Parzen estimator"),
    Strategy("nsga2", "NSGA-II, a Pareto front of two or more objectives", multi_objective=True),
    Strategy("grid", "every architecture of a small space, once", exhaustive=True),
    Strategy("surrogate", "random start, then what gradient-boosted trees on the knobs rank best"),
    Strategy("zc", "TPE started from the best of a random pool by data-free zero-cost proxies"),
)
SCHEDULERS = _kind(
    "trial scheduler",
    Choice("asha", "ASHA stops weak trials at rungs", hint="early stopping"),
    Choice("fifo", "every trial runs all its epochs"),
)
PROXIES = _kind(
    "zero-cost proxy",
    Proxy("params", "parameter count (the baseline every proxy must beat)"),
    Proxy("flops", "FLOPs of one forward at the minibatch's image size"),
    Proxy("latency", "median milliseconds of one forward at batch 1", timed=True),
    Proxy("synflow", "synaptic flow: sum of |weight x gradient| of a positive linearised net"),
    Proxy("naswot", "log-determinant of the images' activation-pattern kernel"),
    Proxy("jacov", "spread of the eigenvalues of the images' input-Jacobian correlations"),
    Proxy("grad_norm", "sum of the weight gradients' norms of the per-pixel loss"),
    Proxy("snip", "connection sensitivity: sum of |weight x gradient|"),
    Proxy("grasp", "gradient-flow preservation: sum of -weight x (Hessian x gradient)"),
    Proxy("fisher", "Fisher information of the convolutions' output channels"),
    Proxy("zen", "log of the output's response to a small input perturbation, plus BN scales"),
)

#: Every kind of choice, by the name tests and docs use for it.
KINDS: dict[str, Registry[Any]] = {
    "skip": SKIP_PATHS,
    "upsample": UPSAMPLING,
    "downsample": DOWNSAMPLING,
    "norm": NORMS,
    "activation": ACTIVATIONS,
    "attention": ATTENTION,
    "attention_where": ATTENTION_PLACES,
    "optimizer": OPTIMIZERS,
    "schedule": LR_SCHEDULES,
    "dataset": DATASETS,
    "strategy": STRATEGIES,
    "scheduler": SCHEDULERS,
    "proxy": PROXIES,
}


def one_of(names: Iterable[str]) -> str:
    """``a, b, c or d``: a list of names as help texts and messages say it."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def needs_pool_indices(upsample: str) -> bool:
    """Whether ``upsample`` reuses max-pooling indices (False for a name not catalogued)."""
    return upsample in UPSAMPLING and UPSAMPLING.get(upsample).needs_pool_indices


def keeps_pool_indices(downsample: str) -> bool:
    """Whether ``downsample`` records max-pooling indices (False for a name not catalogued)."""
    return downsample in DOWNSAMPLING and DOWNSAMPLING.get(downsample).keeps_pool_indices


def index_keeping_downsampling() -> tuple[str, ...]:
    """The downsamplings an upsampling that needs pooling indices can follow."""
    return tuple(name for name in DOWNSAMPLING if keeps_pool_indices(name))


def min_stages(skip: str) -> int:
    """The fewest encoder stages ``skip`` needs (1 for a name not catalogued)."""
    return SKIP_PATHS.get(skip).min_stages if skip in SKIP_PATHS else 1


def check_implemented(choices: Registry[Any], implementations: Iterable[str]) -> None:
    """Raise unless ``implementations`` holds exactly the catalogued names of ``choices``."""
    implemented = set(implementations)
    missing = [name for name in choices if name not in implemented]
    extra = sorted(implemented - set(choices))
    if missing or extra:
        raise ValueError(
            f"{choices.kind}: catalogue and implementations differ"
            + (f"; not implemented: {', '.join(missing)}" if missing else "")
            + (f"; not catalogued: {', '.join(extra)}" if extra else "")
        )
