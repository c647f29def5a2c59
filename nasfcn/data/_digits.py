"""``digits``: scenes of real handwritten digits (scikit-learn's bundled 8x8 scans).

Each scene places a few upscaled digits, each in a random colour, on a dark random
texture. Label = digit + 1, background 0 (11 classes). Val and test scenes are built only
from digit scans held out of train scenes (every fifth scan of each digit), so they measure
reading unseen handwriting.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from nasfcn.data._synthetic import (
    Texture,
    interp_matrix,
    noise,
    register_generated,
    render_textures,
    to_uint8,
)

CLASS_NAMES = ("background", *(f"digit_{d}" for d in range(10)))
MAX_DIGITS = 4  # per scene; at least 2
NOISE_SIGMA = 0.05
_SALT = 0xD161757  # separates this dataset's random streams from other generators
_STROKE = 0.5  # a pixel belongs to a digit where its ink (0..1) is above this
_BACKGROUND_LEVEL = 0.5  # backgrounds are darkened textures; ink colours are bright
_HELD_OUT_EVERY = 5  # every fifth scan of each digit is kept for val scenes


@functools.lru_cache(maxsize=1)
def _scans() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Digit scans as ink in [0, 1] padded to 10x10, their labels, and the split pools."""
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    bunch = load_digits()
    ink = np.pad(bunch.images.astype(np.float32) / 16.0, ((0, 0), (1, 1), (1, 1)))
    labels = bunch.target.astype(np.int64)
    held_out = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        held_out[np.flatnonzero(labels == digit)[_HELD_OUT_EVERY - 1 :: _HELD_OUT_EVERY]] = True
    # Test scenes are scenes of their own (their own random streams) from the same held-out
    # scans as val: a new pool for test would change val's scenes, and with them every result.
    pools = {"train": np.flatnonzero(~held_out), "val": np.flatnonzero(held_out)}
    pools["test"] = pools["val"]
    return ink, labels, pools


@dataclass(frozen=True)
class _Digit:
    scan: int  # index into the bundled scans
    size: int  # side in pixels
    top_left: tuple[int, int]
    colour: np.ndarray


@dataclass(frozen=True)
class _Scene:
    background: Texture
    digits: tuple[_Digit, ...]  # painted in order: later digits occlude earlier ones
    noise: np.ndarray


def _overlap(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """Intersection of two squares (top, left, side) over the smaller one's area."""
    dy = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    dx = min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1])
    return max(dy, 0) * max(dx, 0) / min(a[2], b[2]) ** 2


def _draw_scene(rng: np.random.Generator, height: int, width: int, *, pool: np.ndarray) -> _Scene:
    background = Texture.draw(rng)
    side = min(height, width)
    placed: list[_Digit] = []
    for _ in range(int(rng.integers(2, MAX_DIGITS + 1))):
        scan = int(pool[rng.integers(len(pool))])
        size = min(side, max(8, round(rng.uniform(0.3, 0.55) * side)))
        colour = (0.55 + 0.45 * rng.random(3)).astype(np.float32)
        for _attempt in range(10):  # keep digits apart so they stay readable; else skip it
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
            if all(_overlap((top, left, size), (*d.top_left, d.size)) < 0.1 for d in placed):
                placed.append(_Digit(scan, size, (top, left), colour))
                break
    return _Scene(background, tuple(placed), noise(rng, height, width, NOISE_SIGMA))


def render_scenes(scenes: list[_Scene], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Paint scenes: uint8 B x 3 x H x W images and B x H x W masks."""
    ink, labels, _ = _scans()
    image = render_textures([s.background for s in scenes], height, width)
    image *= _BACKGROUND_LEVEL
    mask = np.zeros((len(scenes), height, width), dtype=np.uint8)
    for b, scene in enumerate(scenes):
        for digit in scene.digits:
            stretch = interp_matrix(digit.size, ink.shape[1])
            alpha = (stretch @ ink[digit.scan] @ stretch.T)[..., None]
            (top, left), size = digit.top_left, digit.size
            region = image[b, top : top + size, left : left + size]
            region += alpha * (digit.colour - region)
            stroke = alpha[..., 0] > _STROKE
            mask[b, top : top + size, left : left + size][stroke] = labels[digit.scan] + 1
    image += np.stack([s.noise for s in scenes])
    return to_uint8(image), mask


generate_digits = register_generated(
    "digits", CLASS_NAMES, _draw_scene, render_scenes, salt=_SALT, pools=lambda split: _scans()[2][split]
)
