"""``photos``: objects pasted onto real photographs that ship inside installed packages.

Backgrounds are random crops (scale, position, flip) of scikit-image's bundled sample
photographs and scikit-learn's ``load_sample_images()`` (china, flower). The classes are
silhouettes: skimage's horse, scikit-learn's handwritten digit scans and a five-pointed
star, each rotated, flipped and scaled at random and painted with a crop of *another*
photograph, so colour and texture say nothing about the class: the outline does.
Everything is read from the packages' own files, so nothing is downloaded. Val and test
scenes use digit scans held out of train scenes, as ``digits`` does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from PIL import Image

from nasfcn.data._core import DatasetError
from nasfcn.data._digits import _scans
from nasfcn.data._shapes import shape_mask
from nasfcn.data._synthetic import interp_matrix, noise, pixel_grid, register_generated, to_uint8

CLASS_NAMES = ("background", "horse", "digit", "star")
#: scikit-image's bundled photographs (``skimage/data``); grayscale ones are used as grey RGB.
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
    "grass.png",
    "gravel.png",
    "brick.png",
    "camera.png",
    "moon.png",
    "coins.png",
)
PHOTO_SIDE = 160  # photographs are kept with this short side: plenty for crops of <= 128 px
SILHOUETTE_SIDE = 64  # silhouettes are kept as 64 x 64 boolean masks
MAX_OBJECTS = 3  # per scene; at least 1
SIZE_RANGE = (0.4, 0.7)  # object bounding square, as a fraction of the short side
CROP_RANGE = (0.3, 1.0)  # background crop side, as a fraction of the photograph's short side
MIN_CONTRAST = 0.25  # mean colour distance below which an object's paint is inverted
NOISE_SIGMA = 0.02
_SALT = 0x9407E5  # separates this dataset's random streams from other generators
_INK = 0.3  # a digit scan's pixels above this ink level belong to the glyph


def _package_folder(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = find_spec(package)
    if spec is None or spec.origin is None:
        raise DatasetError(
            f"dataset 'photos' needs the package {package!r} (its bundled photographs): "
            f"pip install {'scikit-image' if package == 'skimage' else 'scikit-learn'}"
        )
    return Path(spec.origin).parent


def _read(path: Path) -> np.ndarray:
    """An RGB photograph as float32 H x W x 3 in [0, 1], shrunk to a short side of PHOTO_SIDE."""
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        scale = PHOTO_SIDE / min(image.size)
        if scale < 1:
            size = (round(image.width * scale), round(image.height * scale))
            image = image.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.float32) / 255.0
    except OSError as err:
        raise DatasetError(f"dataset 'photos': cannot read the bundled photograph {path}: {err}") from err


@functools.lru_cache(maxsize=1)
def photographs() -> tuple[np.ndarray, ...]:
    """Every photograph, in a fixed order (skimage's, then scikit-learn's china and flower)."""
    skimage_data = _package_folder("skimage") / "data"
    sklearn_images = _package_folder("sklearn") / "datasets" / "images"
    paths = [skimage_data / name for name in SKIMAGE_PHOTOS]
    paths += [sklearn_images / name for name in ("china.jpg", "flower.jpg")]
    return tuple(_read(path) for path in paths)


def _square(mask: np.ndarray) -> np.ndarray:
    """A boolean mask cropped to its bounding box, padded to a square, resampled to SILHOUETTE_SIDE."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    mask = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    side = max(mask.shape)
    pad_y, pad_x = side - mask.shape[0], side - mask.shape[1]
    mask = np.pad(mask, ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)))
    index = (np.arange(SILHOUETTE_SIDE) * side) // SILHOUETTE_SIDE
    return mask[np.ix_(index, index)]


@functools.lru_cache(maxsize=1)
def _horse() -> np.ndarray:
    with Image.open(_package_folder("skimage") / "data" / "horse.png") as image:
        dark = np.asarray(image.convert("L")) < 128  # a black horse on white
    return _square(dark)


@functools.lru_cache(maxsize=1)
def _star() -> np.ndarray:
    c = (np.arange(SILHOUETTE_SIDE, dtype=np.float32) + 0.5) / SILHOUETTE_SIDE - 0.5
    v, u = np.meshgrid(-c, c, indexing="ij")  # one spike points up
    return shape_mask("star", v, u, np.full_like(u, 0.5))


def _digit(scan: int) -> np.ndarray:
    ink = _scans()[0][scan]
    stretch = interp_matrix(SILHOUETTE_SIDE, ink.shape[0])
    return _square(stretch @ ink @ stretch.T > _INK)


@dataclass(frozen=True)
class _Crop:
    """A square crop of one photograph, resampled over the whole image."""

    photo: int
    top: int
    left: int
    side: int
    flip: bool

    @classmethod
    def draw(cls, rng: np.random.Generator, exclude: int | None = None) -> _Crop:
        count = len(photographs())
        photo = int(rng.integers(count - (exclude is not None)))
        if exclude is not None and photo >= exclude:
            photo += 1
        height, width = photographs()[photo].shape[:2]
        side = max(4, round(rng.uniform(*CROP_RANGE) * min(height, width)))
        top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
        return cls(photo, top, left, side, bool(rng.random() < 0.5))

    def render(self, height: int, width: int) -> np.ndarray:
        patch = photographs()[self.photo][self.top : self.top + self.side, self.left : self.left + self.side]
        if self.flip:
            patch = patch[:, ::-1]
        rows, cols = interp_matrix(height, self.side), interp_matrix(width, self.side)
        rows_done = np.tensordot(rows, patch, axes=(1, 0))  # height x side x 3
        return np.matmul(cols, rows_done)  # (width x side) @ (height x side x 3), broadcast


@dataclass(frozen=True)
class _Object:
    label: int
    scan: int  # digit scan (label "digit" only; else -1)
    size: float  # bounding square side, as a fraction of the short side
    centre: tuple[float, float]  # (y, x) as fractions of height and width
    angle: float
    flip: bool
    paint: _Crop


@dataclass(frozen=True)
class _Scene:
    background: _Crop
    objects: tuple[_Object, ...]  # painted in order: later objects occlude earlier ones
    noise: np.ndarray


def _draw_scene(rng: np.random.Generator, height: int, width: int, *, pool: np.ndarray) -> _Scene:
    background = _Crop.draw(rng)
    objects = []
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        label = int(rng.integers(1, len(CLASS_NAMES)))
        scan = int(pool[rng.integers(len(pool))]) if CLASS_NAMES[label] == "digit" else -1
        size = rng.uniform(*SIZE_RANGE)
        centre = (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8))
        angle = rng.uniform(-math.pi / 6, math.pi / 6)  # upright-ish: digits stay readable
        flip = bool(rng.random() < 0.5) and CLASS_NAMES[label] != "digit"
        objects.append(_Object(label, scan, size, centre, angle, flip, _Crop.draw(rng, background.photo)))
    return _Scene(background, tuple(objects), noise(rng, height, width, NOISE_SIGMA))


def silhouette(obj: _Object) -> np.ndarray:
    """The object's class silhouette, SILHOUETTE_SIDE square."""
    name = CLASS_NAMES[obj.label]
    if name == "horse":
        return _horse()
    if name == "star":
        return _star()
    return _digit(obj.scan)


def object_mask(obj: _Object, height: int, width: int) -> np.ndarray:
    """H x W pixels covered by the object: the silhouette mapped through rotation, flip and scale."""
    yy, xx = pixel_grid(height, width)
    side = obj.size * min(height, width)
    dy, dx = yy - obj.centre[0] * height, xx - obj.centre[1] * width
    cos, sin = math.cos(obj.angle), math.sin(obj.angle)
    u = (cos * dx + sin * dy) / side + 0.5
    v = (cos * dy - sin * dx) / side + 0.5
    if obj.flip:
        u = 1.0 - u
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    col = np.clip((u * SILHOUETTE_SIDE).astype(np.int64), 0, SILHOUETTE_SIDE - 1)
    row = np.clip((v * SILHOUETTE_SIDE).astype(np.int64), 0, SILHOUETTE_SIDE - 1)
    return inside & silhouette(obj)[row, col]


def render_scenes(scenes: list[_Scene], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Paint scenes: uint8 B x 3 x H x W images and B x H x W masks."""
    image = np.empty((len(scenes), height, width, 3), dtype=np.float32)
    mask = np.zeros((len(scenes), height, width), dtype=np.uint8)
    for b, scene in enumerate(scenes):
        image[b] = scene.background.render(height, width)
        for obj in scene.objects:
            inside = object_mask(obj, height, width)
            if not inside.any():
                continue
            paint = obj.paint.render(height, width)[inside]
            # Keep outlines visible: invert a paint whose mean matches what it covers.
            if np.abs(paint.mean(axis=0) - image[b][inside].mean(axis=0)).mean() < MIN_CONTRAST:
                paint = 1.0 - paint
            image[b][inside] = paint
            mask[b][inside] = obj.label
        image[b] += scene.noise
    return to_uint8(image), mask


generate_photos = register_generated(
    "photos", CLASS_NAMES, _draw_scene, render_scenes, salt=_SALT, pools=lambda split: _scans()[2][split]
)
