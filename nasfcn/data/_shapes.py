"""``shapes``: generated scenes of overlapping geometric shapes on textured backgrounds.

Background and shapes are painted from the same random textures (smooth colour fields
and stripes), and shape sizes are scaled to equal areas, so neither colour nor size
gives the class away: a network has to see outlines and corners, which a coarse
(FCN-32s-like) decoder blurs and a skip-connected one keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nasfcn.data._synthetic import (
    Texture,
    noise,
    pixel_grid,
    register_generated,
    render_textures,
    to_uint8,
)

# Three shapes, not more: with five (adding stars and crosses) a small U-Net needed tens of
# CPU minutes to get anywhere; with three it reaches 0.7 mIoU in a few, and an FCN-32s-like
# decoder still trails it clearly (see README, "Training one candidate").
CLASS_NAMES = ("background", "circle", "square", "triangle")
MAX_SHAPES = 5  # per scene; at least 2
RADIUS_RANGE = (0.15, 0.28)  # shape radius as a fraction of the short side (before area match)
MIN_CONTRAST = 0.3  # mean colour distance below which a shape's paint is inverted
NOISE_SIGMA = 0.03
_SALT = 0x5EA9E5  # separates this dataset's random streams from other generators

_SQUARE_HALF = 0.8  # half side, in radii
_STAR_INNER = 0.45  # inner vertices, in radii
_CROSS_ARM = 0.3  # half width of an arm, in radii
_AREA = {  # area of each shape of radius 1
    "circle": math.pi,
    "square": 4 * _SQUARE_HALF**2,
    "triangle": 3 * math.sqrt(3) / 4,
    "star": 5 * _STAR_INNER * math.sin(math.pi / 5),
    "cross": 2 * 2 * (2 * _CROSS_ARM) - (2 * _CROSS_ARM) ** 2,
}
#: Radius multipliers that give every shape the area of the circle.
_RADIUS_FACTOR = {name: math.sqrt(math.pi / area) for name, area in _AREA.items()}
_TRIANGLE_NORMALS = [(math.cos(a), math.sin(a)) for a in map(math.radians, (30, 150, 270))]


def shape_mask(name: str, u: np.ndarray, v: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Pixels inside shape ``name`` centred at the origin of the rotated frame (u, v)."""
    if name == "circle":
        return u * u + v * v <= radius * radius
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF * radius
    if name == "triangle":  # equilateral with circumradius ``radius``
        inside = np.ones(u.shape, dtype=bool)
        for nx, ny in _TRIANGLE_NORMALS:
            inside &= u * nx + v * ny <= 0.5 * radius
        return inside
    if name == "star":  # fold the angle onto one half-spike: outer vertex -> inner vertex
        sector = 2 * math.pi / 5
        angle = np.mod(np.arctan2(v, u), sector)
        angle = np.minimum(angle, sector - angle)
        rho = np.hypot(u, v)
        px, py = rho * np.cos(angle), rho * np.sin(angle)
        inner = _STAR_INNER * radius
        dx, dy = inner * math.cos(sector / 2) - radius, inner * math.sin(sector / 2)
        return dx * py - dy * (px - radius) >= 0
    if name == "cross":
        arm = _CROSS_ARM * radius
        au, av = np.abs(u), np.abs(v)
        return ((au <= arm) & (av <= radius)) | ((av <= arm) & (au <= radius))
    raise ValueError(f"unknown shape {name!r}; valid: {', '.join(CLASS_NAMES[1:])}")


@dataclass(frozen=True)
class _Shape:
    label: int
    radius: float  # as a fraction of the image's short side, area-corrected
    centre: tuple[float, float]  # (y, x) as fractions of height and width
    angle: float
    paint: Texture


@dataclass(frozen=True)
class _Scene:
    background: Texture
    shapes: tuple[_Shape, ...]  # painted in order: later shapes occlude earlier ones
    noise: np.ndarray


def _draw_scene(rng: np.random.Generator, height: int, width: int) -> _Scene:
    background = Texture.draw(rng)
    shapes = []
    for _ in range(int(rng.integers(2, MAX_SHAPES + 1))):
        label = int(rng.integers(1, len(CLASS_NAMES)))
        radius = rng.uniform(*RADIUS_RANGE) * _RADIUS_FACTOR[CLASS_NAMES[label]]
        centre = (rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9))
        shapes.append(_Shape(label, radius, centre, rng.uniform(0, 2 * math.pi), Texture.draw(rng)))
    return _Scene(background, tuple(shapes), noise(rng, height, width, NOISE_SIGMA))


def render_scenes(scenes: list[_Scene], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Paint scenes together: uint8 B x 3 x H x W images and B x H x W masks."""
    # Most shapes first, so the scenes that still have a shape in a slot are a prefix
    # (slices are views; fancy indexing would copy).
    order = sorted(range(len(scenes)), key=lambda i: -len(scenes[i].shapes))
    scenes = [scenes[i] for i in order]
    yy, xx = pixel_grid(height, width)
    image = render_textures([s.background for s in scenes], height, width)
    mask = np.zeros((len(scenes), height, width), dtype=np.uint8)
    min_pixels = max(6.0, 0.002 * height * width)
    for slot in range(MAX_SHAPES):
        shapes = [s.shapes[slot] for s in scenes if len(s.shapes) > slot]
        if not shapes:
            break
        active = len(shapes)
        labels = np.array([s.label for s in shapes])
        params = np.array([(s.radius, *s.centre, s.angle) for s in shapes], dtype=np.float32)
        radius, cy, cx, angle = (params[:, j, None, None] for j in range(4))
        radius = radius * min(height, width)
        dy, dx = yy - cy * height, xx - cx * width
        cos, sin = np.cos(angle), np.sin(angle)
        u, v = cos * dx + sin * dy, cos * dy - sin * dx
        inside = np.empty((active, height, width), dtype=bool)
        for label in np.unique(labels).tolist():
            sel = labels == label
            inside[sel] = shape_mask(CLASS_NAMES[label], u[sel], v[sel], radius[sel])
        area = inside.sum(axis=(1, 2))
        inside &= (area >= min_pixels)[:, None, None]
        paint = render_textures([s.paint for s in shapes], height, width)
        # Work on the covered pixels only, as rows of one flat (pixels x 3) array.
        covered = np.flatnonzero(inside)
        owner = covered // (height * width)
        new = paint.reshape(-1, 3)[covered]
        old = image[:active].reshape(-1, 3)[covered]
        # Keep outlines visible: invert a paint whose mean matches what it covers.
        # Inversion maps the texture distribution onto itself: colours stay uninformative.
        denom = np.maximum(area, 1)
        difference = sum(
            np.abs(
                np.bincount(owner, weights=new[:, c], minlength=active)
                - np.bincount(owner, weights=old[:, c], minlength=active)
            )
            for c in range(3)
        )
        dull = difference / (3 * denom) < MIN_CONTRAST
        flip = dull[owner]
        new[flip] = 1.0 - new[flip]
        image[:active].reshape(-1, 3)[covered] = new
        np.copyto(mask[:active], labels.astype(np.uint8)[:, None, None], where=inside)
    image += np.stack([s.noise for s in scenes])
    restore = np.argsort(order)
    return to_uint8(image[restore]), mask[restore]


generate_shapes = register_generated("shapes", CLASS_NAMES, _draw_scene, render_scenes, salt=_SALT)
