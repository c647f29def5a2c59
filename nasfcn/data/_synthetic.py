"""Helpers shared by the generated datasets: per-sample seeding, textures, interpolation.

Every random number of a sample comes from that sample's own stream (seed, split,
index), drawn in the same order; the pixel work is then done for many samples at once
with NumPy (single-threaded, in cache-sized chunks). Sample ``i`` of seed ``s`` is
therefore the same however many samples are generated and however they are batched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from nasfcn.data._core import DataConfig, Source, register_dataset

#: Split ids mixed into every sample's seed, so train, val and test never share a scene.
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
#: Samples rendered together: small enough for the arrays to stay in cache.
CHUNK = 32
STRIPE_PROBABILITY = 0.25  # share of textures that are stripes rather than smooth fields


def sample_rng(salt: int, seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one sample."""
    return np.random.default_rng([salt, seed, SPLIT_IDS[split], index])


@functools.lru_cache(maxsize=64)
def interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``n_out x n_in`` linear-interpolation weights (corners aligned): ``M @ v`` resamples v."""
    if n_in == 1:
        return np.ones((n_out, 1), dtype=np.float32)
    position = np.linspace(0.0, n_in - 1.0, n_out)
    lower = np.minimum(np.floor(position).astype(np.int64), n_in - 2)
    frac = position - lower
    matrix = np.zeros((n_out, n_in), dtype=np.float32)
    rows = np.arange(n_out)
    matrix[rows, lower] = 1.0 - frac
    matrix[rows, lower + 1] = frac
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=16)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), each H x W, read-only."""
    ys = np.arange(height, dtype=np.float32) + 0.5
    xs = np.arange(width, dtype=np.float32) + 0.5
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    yy.setflags(write=False)
    xx.setflags(write=False)
    return yy, xx


@dataclass(frozen=True)
class Texture:
    """A random RGB texture in [0, 1]: a smooth colour field (``grid``) or two-colour stripes.

    Background and foreground are painted from this same distribution, so the colour of
    a pixel says nothing about its class.
    """

    grid: np.ndarray | None  # cells x cells x 3 colours, bilinearly stretched over the image
    stripes: np.ndarray | None  # (period as a fraction of the short side, angle, phase)
    colours: np.ndarray | None  # 2 x 3: the stripe colours

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Texture:
        if rng.random() >= STRIPE_PROBABILITY:
            cells = int(rng.integers(2, 5))
            return cls(rng.random((cells, cells, 3), dtype=np.float32), None, None)
        stripes = np.array([rng.uniform(0.12, 0.4), rng.uniform(0.0, np.pi), rng.uniform(0.0, 2 * np.pi)])
        return cls(None, stripes, rng.random((2, 3), dtype=np.float32))


def render_textures(textures: Sequence[Texture], height: int, width: int) -> np.ndarray:
    """Paint each texture over a full image: B x H x W x 3 float32.

    Both kinds are rank <= 4 images, ``left (H x 4) @ right (4 x W*3)``, so a whole batch
    is one matrix product.
    """
    left = np.zeros((len(textures), height, 4), dtype=np.float32)
    right = np.zeros((len(textures), 4, width * 3), dtype=np.float32)
    smooth = [i for i, tex in enumerate(textures) if tex.grid is not None]
    striped = [i for i, tex in enumerate(textures) if tex.grid is None]
    for i in smooth:  # bilinear: rows @ grid @ cols^T, per channel
        grid = textures[i].grid
        cells = grid.shape[0]
        left[i, :, :cells] = interp_matrix(height, cells)
        cols = interp_matrix(width, cells)
        right[i, :cells] = np.matmul(cols, grid).reshape(cells, width * 3)
    if striped:
        # sin(kx x + ky y + phase) = sin(kx x + phase) cos(ky y) + cos(kx x + phase) sin(ky y)
        params = np.stack([textures[i].stripes for i in striped])
        colours = np.stack([textures[i].colours for i in striped])
        period, angle, phase = (params[:, j, None] for j in range(3))
        k = 2 * np.pi / (period * min(height, width))
        ys = np.arange(height) + 0.5
        xs = np.arange(width) + 0.5
        y_phase, x_phase = k * np.sin(angle) * ys, k * np.cos(angle) * xs + phase
        left[striped, :, 0] = 1.0
        left[striped, :, 1] = np.cos(y_phase)
        left[striped, :, 2] = np.sin(y_phase)
        # colour = second + (first - second) * (0.5 + 0.5 * wave)
        half = 0.5 * (colours[:, 0] - colours[:, 1])[:, None, :]  # n x 1 x 3
        right[striped, 0] = (colours[:, 1][:, None, :] + half).repeat(width, 1).reshape(-1, width * 3)
        right[striped, 1] = (np.sin(x_phase)[..., None] * half).reshape(-1, width * 3)
        right[striped, 2] = (np.cos(x_phase)[..., None] * half).reshape(-1, width * 3)
    return np.matmul(left, right).reshape(len(textures), height, width, 3)


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed block of standard normal numbers; samples read noise from random offsets."""
    bank = np.random.default_rng(0x9015E).standard_normal(1 << 20, dtype=np.float32)
    bank.setflags(write=False)
    return bank


def noise(rng: np.random.Generator, height: int, width: int, sigma: float) -> np.ndarray:
    """Gaussian pixel noise, H x W x 3: a random window of a fixed bank (drawing fresh
    normals would cost more than the rest of a scene); repeats wrap around the bank."""
    bank = _noise_bank()
    size = height * width * 3
    start = int(rng.integers(0, bank.size))
    window = bank[start : start + size]
    if window.size < size:
        window = np.concatenate([window, bank[: size - window.size]])
    return (sigma * window).reshape(height, width, 3)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """B x H x W x 3 floats in [0, 1] -> B x 3 x H x W uint8.

    Stays in NumPy: torch's multi-threaded copies cost more than they save on
    arrays this small, and spin when the CPUs are busy.
    """
    scaled = np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


Draw = Callable[..., Any]  # (rng, height, width[, pool=...]) -> one scene
Render = Callable[[list[Any], int, int], tuple[np.ndarray, np.ndarray]]


class SampleGenerator(Protocol):
    """``generate_X(seed, split, count, size, *, start=0)``: uint8 images and masks of a generated dataset."""

    def __call__(
        self, seed: int, split: str, count: int, size: tuple[int, int], *, start: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def generate(
    draw: Callable[[np.random.Generator, int, int], Any],
    render: Callable[[list[Any], int, int], tuple[np.ndarray, np.ndarray]],
    *,
    salt: int,
    seed: int,
    split: str,
    count: int,
    size: tuple[int, int],
    start: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples ``start .. start + count - 1``: draw each scene from its own stream, render
    them in chunks; uint8 N x 3 x H x W images and N x H x W masks."""
    height, width = size
    images, masks = [], []
    for first in range(start, start + count, CHUNK):
        indices = range(first, min(first + CHUNK, start + count))
        scenes = [draw(sample_rng(salt, seed, split, i), height, width) for i in indices]
        batch_images, batch_masks = render(scenes, height, width)
        images.append(batch_images)
        masks.append(batch_masks)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(masks))


def synthetic_source(
    make: Callable[[int, str, int, tuple[int, int]], tuple[torch.Tensor, torch.Tensor]],
    config: DataConfig,
    class_names: Sequence[str],
) -> Source:
    """Train and val splits of a generated dataset (and test, when asked), as the registry wants them."""
    train = make(config.seed, "train", config.train_samples, config.size)
    val = make(config.seed, "val", config.val_samples, config.size)
    test = make(config.seed, "test", config.test_samples, config.size) if config.with_test else (None, None)
    return Source(*train, *val, class_names=tuple(class_names), test_images=test[0], test_masks=test[1])


def register_generated(
    name: str,
    class_names: Sequence[str],
    draw: Draw,
    render: Render,
    *,
    salt: int,
    pools: Callable[[str], np.ndarray] | None = None,
) -> SampleGenerator:
    """Register the generated dataset ``name`` and return its ``generate_X``.

    One place for what every generator repeats: the sample function over :func:`generate`
    and the loader of its splits. ``pools(split)`` is what that split's scenes may paste
    (held-out scans, coins), passed to ``draw`` as ``pool``; ``None`` for scenes that paste nothing.
    """

    def generate_samples(
        seed: int, split: str, count: int, size: tuple[int, int], *, start: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``start .. start + count - 1`` of ``split`` for ``seed``."""
        scene = draw if pools is None else functools.partial(draw, pool=pools(split))
        return generate(scene, render, salt=salt, seed=seed, split=split, count=count, size=size, start=start)

    def load(argument: str | None, config: DataConfig) -> Source:
        del argument  # takes none; checked by load_dataset
        return synthetic_source(generate_samples, config, class_names)

    generate_samples.__name__ = generate_samples.__qualname__ = f"generate_{name}"
    load.__name__ = load.__qualname__ = f"load_{name}"
    register_dataset(name)(load)
    return generate_samples
