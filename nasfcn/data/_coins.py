"""``coins``: real coins cut out of scikit-image's coin photograph, pasted onto other photographs.

scikit-image ships ``coins.png``, a photograph of 24 Greek coins on a dark cloth. The classic
region-based steps cut them out: a Sobel elevation map, watershed from markers (grey < 30
cloth, > 150 coin), holes filled, objects touching the border (a bright strip) and specks
dropped, one label per coin; each cut-out keeps its exact mask. Scenes paste one to four of
them, rotated at random, tinted and scaled, onto a random crop of *another* bundled
photograph (``photos``'s backgrounds). The class is the pasted size: a coin's diameter is
drawn from SMALL_RANGE or LARGE_RANGE (fractions of the short side, a 1.33x gap between
them), so any coin can be either class and the network must measure extent, not recognise
a coin. Train, val and test scenes paste disjoint coins (14 / 5 / 5). Read from the
installed package, never downloaded; every scene is a pure function of (seed, split, index).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from nasfcn.data._core import DatasetError
from nasfcn.data._photos import SKIMAGE_PHOTOS, _Crop, _package_folder
from nasfcn.data._synthetic import noise, pixel_grid, register_generated, to_uint8

CLASS_NAMES = ("background", "small coin", "large coin")
COIN_COUNT = 24  # coins in skimage's photograph; the cut-out is checked against it
SMALL_RANGE = (0.16, 0.24)  # pasted diameter of a small coin, as a fraction of the short side
LARGE_RANGE = (0.32, 0.44)  # ... of a large coin
MAX_COINS = 4  # per scene; at least 1
TINT_RANGE = (0.7, 1.25)  # per-channel gain on the grey coin: colour says nothing about the class
NOISE_SIGMA = 0.02
MIN_AREA = 500  # pixels; smaller regions of the cut-out are specks, not coins
_SPLIT_COINS = {"train": 14, "val": 5, "test": 5}  # disjoint coin pools, in that order
_POOL_SEED = 0xC015  # fixes which coins go to which split
_MARGIN = 16  # pixels of padding around the photograph before the coins are cut out
_SALT = 0xC01A5E  # separates this dataset's random streams from other generators


@dataclass(frozen=True)
class Coin:
    """One cut-out: the grey photograph around it and its exact mask, both square."""

    grey: np.ndarray  # side x side float32 in [0, 1]
    mask: np.ndarray  # side x side bool: the coin's pixels
    diameter: float  # equivalent diameter, sqrt(4 area / pi), in source pixels


def _segment(grey: np.ndarray) -> np.ndarray:
    """Label image of the coins: watershed of the Sobel elevation map from grey-level markers."""
    from skimage.filters import sobel
    from skimage.segmentation import clear_border, watershed

    markers = np.zeros(grey.shape, dtype=np.int32)
    markers[grey < 30] = 1  # cloth
    markers[grey > 150] = 2  # coin
    coins = ndimage.binary_fill_holes(watershed(sobel(grey), markers) == 2)
    coins = clear_border(coins)
    labels, count = ndimage.label(coins)
    areas = ndimage.sum(coins, labels, range(1, count + 1))
    kept = np.isin(labels, 1 + np.flatnonzero(areas >= MIN_AREA))
    return ndimage.label(kept)[0]


@functools.lru_cache(maxsize=1)
def coins() -> tuple[Coin, ...]:
    """Every coin of the photograph, in reading order of the label image."""
    path = _package_folder("skimage") / "data" / "coins.png"
    try:
        with Image.open(path) as opened:
            grey = np.asarray(opened.convert("L"))
    except OSError as err:
        raise DatasetError(f"dataset 'coins': cannot read the bundled photograph {path}: {err}") from err
    labels = _segment(grey)
    # A margin, so every coin's square window lies inside the arrays.
    grey, labels = np.pad(grey, _MARGIN, mode="edge"), np.pad(labels, _MARGIN)
    found = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = box
        side = max(rows.stop - rows.start, cols.stop - cols.start) + 2
        top = (rows.start + rows.stop - side) // 2
        left = (cols.start + cols.stop - side) // 2
        window = np.s_[top : top + side, left : left + side]
        mask = labels[window] == index
        found.append(Coin(grey[window].astype(np.float32) / 255.0, mask, math.sqrt(4 * mask.sum() / math.pi)))
    if len(found) != COIN_COUNT:
        raise DatasetError(
            f"dataset 'coins': cut {len(found)} coins out of {path}, expected {COIN_COUNT}; "
            "the installed scikit-image ships a different photograph"
        )
    return tuple(found)


@functools.lru_cache(maxsize=1)
def coin_pools() -> dict[str, np.ndarray]:
    """Coin indices per split: disjoint, fixed for every seed."""
    order = np.random.default_rng(_POOL_SEED).permutation(COIN_COUNT)
    pools, first = {}, 0
    for split, count in _SPLIT_COINS.items():
        pools[split] = np.sort(order[first : first + count])
        first += count
    return pools


@functools.lru_cache(maxsize=1)
def _coins_photo() -> int:
    """Index of coins.png among the background photographs: never a background of its own coins."""
    return SKIMAGE_PHOTOS.index("coins.png")


@dataclass(frozen=True)
class _Pasted:
    label: int
    coin: int
    diameter: float  # as a fraction of the short side
    centre: tuple[float, float]  # (y, x) as fractions of height and width
    angle: float
    tint: tuple[float, float, float]


@dataclass(frozen=True)
class _Scene:
    background: _Crop
    coins: tuple[_Pasted, ...]  # pasted in order: later coins occlude earlier ones
    noise: np.ndarray


def _draw_scene(rng: np.random.Generator, height: int, width: int, *, pool: np.ndarray) -> _Scene:
    background = _Crop.draw(rng, exclude=_coins_photo())
    pasted = []
    for _ in range(int(rng.integers(1, MAX_COINS + 1))):
        label = int(rng.integers(1, len(CLASS_NAMES)))
        coin = int(pool[rng.integers(len(pool))])
        diameter = rng.uniform(*(SMALL_RANGE if label == 1 else LARGE_RANGE))
        centre = (rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85))
        angle = rng.uniform(0.0, 2 * math.pi)
        tint = tuple(float(g) for g in rng.uniform(*TINT_RANGE, size=3))
        pasted.append(_Pasted(label, coin, diameter, centre, angle, tint))
    return _Scene(background, tuple(pasted), noise(rng, height, width, NOISE_SIGMA))


def _source_pixels(pasted: _Pasted, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel falls in the cut-out (row, column), through rotation and scale."""
    coin = coins()[pasted.coin]
    yy, xx = pixel_grid(height, width)
    scale = coin.diameter / (pasted.diameter * min(height, width))  # source pixels per output pixel
    dy, dx = yy - pasted.centre[0] * height, xx - pasted.centre[1] * width
    cos, sin = math.cos(pasted.angle), math.sin(pasted.angle)
    half = coin.mask.shape[0] / 2
    return half + scale * (cos * dy - sin * dx), half + scale * (sin * dy + cos * dx)


def coin_mask(pasted: _Pasted, height: int, width: int) -> np.ndarray:
    """H x W pixels covered by the pasted coin: its cut-out mask at the nearest source pixel."""
    mask = coins()[pasted.coin].mask
    row, col = _source_pixels(pasted, height, width)
    side = mask.shape[0]
    inside = (row >= 0) & (row < side) & (col >= 0) & (col < side)
    return (
        inside & mask[np.clip(row.astype(np.int64), 0, side - 1), np.clip(col.astype(np.int64), 0, side - 1)]
    )


def _coin_paint(pasted: _Pasted, inside: np.ndarray, height: int, width: int) -> np.ndarray:
    """The coin's grey photograph sampled bilinearly at the covered pixels, tinted: N x 3."""
    grey = coins()[pasted.coin].grey
    row, col = (axis[inside] - 0.5 for axis in _source_pixels(pasted, height, width))
    values = ndimage.map_coordinates(grey, [row, col], order=1, mode="nearest")
    return np.clip(values[:, None] * np.asarray(pasted.tint, dtype=np.float32), 0.0, 1.0)


def render_scenes(scenes: list[_Scene], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Paste the coins: uint8 B x 3 x H x W images and B x H x W masks."""
    image = np.empty((len(scenes), height, width, 3), dtype=np.float32)
    mask = np.zeros((len(scenes), height, width), dtype=np.uint8)
    for b, scene in enumerate(scenes):
        image[b] = scene.background.render(height, width)
        for pasted in scene.coins:
            inside = coin_mask(pasted, height, width)
            if inside.any():
                image[b][inside] = _coin_paint(pasted, inside, height, width)
                mask[b][inside] = pasted.label
        image[b] += scene.noise
    return to_uint8(image), mask


generate_coins = register_generated(
    "coins", CLASS_NAMES, _draw_scene, render_scenes, salt=_SALT, pools=lambda split: coin_pools()[split]
)
