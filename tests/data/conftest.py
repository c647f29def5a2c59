"""Builders for tiny on-disk datasets (folder and VOC layouts) written with Pillow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nasfcn.data import voc_palette

IMAGE_SIZE = (20, 14)  # (width, height) as Pillow counts


def _write_image(path: Path, size: tuple[int, int] = IMAGE_SIZE, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _write_mask(
    path: Path,
    labels: Sequence[int] = (0, 1, 2),
    size: tuple[int, int] = IMAGE_SIZE,
    *,
    palette: bool = False,
    ignore_border: bool = False,
) -> None:
    """Vertical bands of ``labels``; optionally a 255 border and a VOC palette (mode P)."""
    width, height = size
    band = np.repeat(np.asarray(labels, dtype=np.uint8), -(-width // len(labels)))[:width]
    mask = np.tile(band, (height, 1))
    if ignore_border:
        mask[0, :] = mask[-1, :] = 255
    image = Image.fromarray(mask)  # mode L
    if palette:  # putpalette turns an L image into a P image with the same indices
        image.putpalette([c for rgb in voc_palette(256) for c in rgb])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


FolderBuilder = Callable[..., Path]


@pytest.fixture
def write_image() -> Callable[..., None]:
    """``write_image(path, size=(20, 14), seed=0)``: random RGB pixels."""
    return _write_image


@pytest.fixture
def write_mask() -> Callable[..., None]:
    """``write_mask(path, labels=(0, 1, 2), size=(20, 14), palette=False, ignore_border=False)``."""
    return _write_mask


@pytest.fixture
def make_folder(tmp_path: Path) -> FolderBuilder:
    """``make_folder(n=6, labels=(0, 1, 2), classes=None, splits=None) -> root``."""

    def build(
        n: int = 6,
        labels: Sequence[int] = (0, 1, 2),
        classes: Sequence[str] | None = None,
        splits: dict[str, Sequence[str]] | None = None,
        name: str = "folder_ds",
    ) -> Path:
        root = tmp_path / name
        for i in range(n):
            _write_image(root / "images" / f"img{i:02d}.png", seed=i)
            _write_mask(root / "masks" / f"img{i:02d}.png", labels)
        if classes is not None:
            (root / "classes.txt").write_text("\n".join(classes) + "\n")
        for split, ids in (splits or {}).items():
            (root / "splits").mkdir(exist_ok=True)
            (root / "splits" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        return root

    return build


@pytest.fixture
def make_voc(tmp_path: Path) -> FolderBuilder:
    """``make_voc(train=("a", "b"), val=("c",), labels=(0, 15, 255)) -> root`` (VOC2012 layout)."""

    def build(
        train: Sequence[str] = ("2007_000001", "2007_000002", "2007_000003"),
        val: Sequence[str] = ("2007_000004", "2007_000005"),
        labels: Sequence[int] = (0, 15, 20),
        name: str = "VOC2012",
    ) -> Path:
        root = tmp_path / name
        for i, stem in enumerate((*train, *val)):
            _write_image(root / "JPEGImages" / f"{stem}.jpg", seed=i)
            _write_mask(root / "SegmentationClass" / f"{stem}.png", labels, palette=True, ignore_border=True)
        splits = root / "ImageSets" / "Segmentation"
        splits.mkdir(parents=True)
        (splits / "train.txt").write_text("\n".join(train) + "\n")
        (splits / "val.txt").write_text("\n".join(val) + "\n")
        return root

    return build
