"""Dataset specs, options and the bundle every loader returns.

A dataset is named on the CLI and in configs by a spec string: ``shapes``, ``digits``,
``voc:PATH`` or ``folder:PATH``. The part before the first ``:`` is a registry key; the
rest is the loader's argument (a path for file-backed datasets).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasfcn import catalogue
from nasfcn.data._dataset import SegmentationDataset
from nasfcn.errors import NasfcnError
from nasfcn.registry import Registry, did_you_mean

IGNORE_INDEX = 255
#: ImageNet statistics: the default normalization for natural (file-backed) images.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: At most this many problems are listed in one DatasetError.
MAX_LISTED_PROBLEMS = 20


class DatasetError(NasfcnError, ValueError):
    """A dataset cannot be used as given; the message names the file and how to fix it."""


def raise_problems(title: str, problems: Sequence[str]) -> None:
    """Raise one DatasetError listing every problem found (so users fix them in one go)."""
    if not problems:
        return
    listed = [f"  - {p}" for p in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        listed.append(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more")
    noun = "problem" if len(problems) == 1 else "problems"
    raise DatasetError(f"{title}: {len(problems)} {noun}\n" + "\n".join(listed))


def parse_scale_range(text: str) -> tuple[float, float]:
    """``--scale-jitter``: ``off`` (or ``1``) -> (1, 1); ``0.75,1.25`` -> (0.75, 1.25)."""
    words = [word.strip() for word in text.strip().lower().split(",")]
    if words in (["off"], ["none"]):
        return (1.0, 1.0)
    try:
        values = [float(word) for word in words]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(math.isfinite(v) for v in values) or not 0 < values[0] <= values[1]:
        raise DatasetError(
            f"scale jitter must be 'off' or LOW,HIGH with 0 < LOW <= HIGH (e.g. 0.75,1.25), got {text!r}"
        )
    return (values[0], values[1])


@dataclass(frozen=True)
class DataConfig:
    """Options shared by every dataset. Augmentations apply to the train split only."""

    image_size: int | tuple[int, int] = 64  # output (height, width); an int means square
    train_samples: int = 512  # number of generated train scenes (synthetic datasets only)
    val_samples: int = 128  # number of generated val scenes (synthetic datasets only)
    test_samples: int = 256  # number of generated test scenes, when ``with_test`` (synthetic only)
    with_test: bool = False  # also load the held-out test split (export does; a search never)
    seed: int = 0  # scene content and the folder split; keep fixed to compare training seeds
    augment_seed: int | None = None  # seeds flips and scale jitter; None = ``seed``
    hflip: bool = True  # random horizontal flips
    # Random rescale, then crop/pad; (1, 1) = off, the default: with a 15% warm-up a 3-stage,
    # width-16 U-Net reached 0.72 val mIoU after 12 epochs of `shapes` without jitter and 0.48
    # with (0.75, 1.25) (benchmarks/RESULTS.md, "What holds a short run back"). Longer runs on
    # varied photographs may want it back: pass e.g. (0.75, 1.25).
    scale_range: tuple[float, float] = (1.0, 1.0)
    val_fraction: float = 0.2  # share of samples for val when a folder dataset has no splits/
    mean: tuple[float, ...] | None = None  # per-channel normalization; None = dataset default
    std: tuple[float, ...] | None = None  # per-channel normalization; None = dataset default

    def __post_init__(self) -> None:
        size = self.image_size
        if isinstance(size, int) and not isinstance(size, bool):
            size = (size, size)
        size = tuple(size)
        if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
            raise DatasetError(
                f"data.image_size must be a positive int or (height, width), got {self.image_size!r}"
            )
        object.__setattr__(self, "image_size", size)
        if self.seed < 0 or (self.augment_seed is not None and self.augment_seed < 0):
            raise DatasetError(
                f"data.seed and data.augment_seed must be >= 0, "
                f"got seed={self.seed}, augment_seed={self.augment_seed}"
            )
        for name in ("train_samples", "val_samples", "test_samples"):
            if getattr(self, name) < 1:
                raise DatasetError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        low, high = (float(v) for v in self.scale_range)
        if not (0 < low <= high and math.isfinite(high)):
            raise DatasetError(
                f"data.scale_range must be (low, high) with 0 < low <= high, both finite, "
                f"got {self.scale_range!r}; use (1.0, 1.0) to turn scale jitter off"
            )
        object.__setattr__(self, "scale_range", (low, high))
        if not 0 < self.val_fraction < 1:
            raise DatasetError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))
        if self.std is not None and any(s <= 0 for s in self.std):
            raise DatasetError(f"data.std must be positive, got {self.std!r}")

    def key(self) -> dict[str, Any]:
        """Every field as plain JSON values: a trained result is reused only under the same data
        config (``nasfcn.store.recipe_key``), since each field can change what its numbers mean."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @property
    def size(self) -> tuple[int, int]:
        """Output (height, width) of every sample."""
        return self.image_size  # type: ignore[return-value]  # normalized in __post_init__

    @property
    def train_cache_size(self) -> tuple[int, int]:
        """Size at which train images are cached: large enough for the largest rescale."""
        factor = max(1.0, self.scale_range[1])
        return (math.ceil(self.size[0] * factor), math.ceil(self.size[1] * factor))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Source:
    """What a loader hands back: uint8 tensors at cache size plus class metadata."""

    train_images: torch.Tensor  # N x C x H x W, uint8
    train_masks: torch.Tensor  # N x H x W, uint8 class indices (255 = ignore)
    val_images: torch.Tensor
    val_masks: torch.Tensor
    class_names: tuple[str, ...]
    mean: tuple[float, ...] | None = None  # None = computed from the train images
    std: tuple[float, ...] | None = None
    train_names: tuple[str, ...] | None = None  # sample ids (file stems) when there are any
    val_names: tuple[str, ...] | None = None
    test_images: torch.Tensor | None = None  # the held-out test split; None: not asked for, or none
    test_masks: torch.Tensor | None = None
    test_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: a loader and whether its spec carries a path."""

    load: Callable[[str | None, DataConfig], Source]
    takes_path: bool
    help: str


DATASETS: Registry[DatasetEntry] = Registry("dataset", catalogue.DATASETS)


def register_dataset(
    name: str,
) -> Callable[[Callable[[str | None, DataConfig], Source]], Callable[..., Source]]:
    """Decorator: register ``load(argument, config) -> Source`` under the catalogued ``name``.

    Whether the spec carries a path, and the description, are the catalogue's
    (``nasfcn.catalogue.DATASETS``), so the CLI help needs no import of the loaders.
    """

    def decorator(load: Callable[[str | None, DataConfig], Source]) -> Callable[..., Source]:
        known = catalogue.DATASETS.get(name)
        DATASETS.add(name, DatasetEntry(load=load, takes_path=known.takes_path, help=known.doc))
        return load

    return decorator


def voc_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """The PASCAL VOC colour map (bit-interleaved), used for every dataset's masks."""
    colours = []
    for index in range(num_classes):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


@dataclass(frozen=True)
class DatasetBundle:
    """Train and val datasets plus what a model, a trainer and an export need to know.

    ``test`` is the held-out split that reports an exported network's quality: None unless
    ``DataConfig.with_test`` asked for it (a search never does: it selects on val) or when
    the dataset has none (a folder without ``splits/test.txt``).
    """

    spec: str
    config: DataConfig
    train: SegmentationDataset
    val: SegmentationDataset
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    in_channels: int
    ignore_index: int = IGNORE_INDEX
    test: SegmentationDataset | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def preprocess(self) -> dict[str, Any]:
        """JSON-safe preprocessing facts (for an export's ``preprocess.json``)."""
        return {
            "dataset": self.spec,
            "image_size": list(self.config.size),
            "in_channels": self.in_channels,
            "mean": list(self.mean),
            "std": list(self.std),
            "class_names": list(self.class_names),
            "palette": [list(c) for c in self.palette],
            "ignore_index": self.ignore_index,
        }


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``name[:argument]``; the argument (a path) may itself contain ``:``."""
    name, sep, argument = str(spec).partition(":")
    return name.strip(), (argument if sep else None)


def load_dataset(spec: str, config: DataConfig | None = None, **options: Any) -> DatasetBundle:
    """Load and validate a dataset named by ``spec`` (``shapes``, ``voc:PATH``, ...).

    Options are ``DataConfig`` fields, given either as ``config`` or as keywords
    (keywords override ``config``). Every file is checked before this returns, so a
    broken dataset fails here and not in the middle of a training run.

    Raises:
        UnknownChoiceError: the name is not a registered dataset (the message lists them).
        DatasetError: anything else wrong with the spec, the options or the files.
    """
    config = config or DataConfig()
    if options:
        valid = [f.name for f in fields(DataConfig)]
        for key in options:
            if key not in valid:
                raise DatasetError(
                    f"unknown data option {key!r}{did_you_mean(key, valid)}; valid: {', '.join(valid)}"
                )
        config = replace(config, **options)
    name, argument = parse_spec(spec)
    entry = DATASETS.get(name)
    if entry.takes_path and not argument:
        raise DatasetError(f"dataset {name!r} needs a path: write it as '{name}:PATH'")
    if not entry.takes_path and argument is not None:
        raise DatasetError(f"dataset {name!r} takes no argument, got {spec!r}; write it as '{name}'")
    source = entry.load(argument, config)
    return _bundle(spec, config, source)


def is_generated(spec: str) -> bool:
    """A dataset made from a seed (``shapes``, ``digits``) rather than read from files."""
    name, _ = parse_spec(spec)
    return name in DATASETS and not DATASETS.get(name).takes_path


def absolute_spec(spec: str) -> str:
    """``spec`` with a relative dataset path made absolute.

    Ray runs each trial in a working directory of its own, so ``folder:my_data`` must be
    resolved where the user typed it; on a cluster the absolute path must exist on every node.
    """
    name, argument = parse_spec(spec)
    if name not in DATASETS or not DATASETS.get(name).takes_path or not argument:
        return spec
    if "://" in argument or Path(argument).expanduser().is_absolute():
        return spec
    return f"{name}:{Path(argument).expanduser().resolve()}"


def _bundle(spec: str, config: DataConfig, source: Source) -> DatasetBundle:
    in_channels = int(source.train_images.shape[1])
    mean, std = config.mean or source.mean, config.std or source.std
    if mean is None or std is None:
        measured_mean, measured_std = _channel_stats(source.train_images)
        mean, std = mean or measured_mean, std or measured_std
    for name, value in (("mean", mean), ("std", std)):
        if len(value) != in_channels:
            raise DatasetError(
                f"data.{name} has {len(value)} values but dataset {spec!r} has "
                f"{in_channels} channels; give one value per channel"
            )
    augment_seed = config.seed if config.augment_seed is None else config.augment_seed
    common = {"size": config.size, "mean": mean, "std": std, "ignore_index": IGNORE_INDEX}
    train = SegmentationDataset(
        source.train_images,
        source.train_masks,
        augment=True,
        hflip=config.hflip,
        scale_range=config.scale_range,
        seed=augment_seed,
        names=source.train_names,
        **common,
    )
    val = SegmentationDataset(
        source.val_images, source.val_masks, augment=False, names=source.val_names, **common
    )
    test = None
    if config.with_test and source.test_images is not None and source.test_masks is not None:
        test = SegmentationDataset(
            source.test_images, source.test_masks, augment=False, names=source.test_names, **common
        )
    return DatasetBundle(
        spec=spec,
        config=config,
        train=train,
        val=val,
        class_names=tuple(source.class_names),
        palette=voc_palette(len(source.class_names)),
        mean=tuple(mean),
        std=tuple(std),
        in_channels=in_channels,
        test=test,
    )


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, rounded so configs stay readable."""
    values = images.transpose(0, 1).reshape(images.shape[1], -1).double() / 255.0
    mean = values.mean(dim=1).numpy()
    std = np.maximum(values.std(dim=1).numpy(), 1e-3)
    return tuple(round(float(m), 4) for m in mean), tuple(round(float(s), 4) for s in std)
