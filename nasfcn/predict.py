"""Segment images with a bundle: palette PNG masks at each image's own size.

By default an image is resized to the size the network was trained at (as the dataset
loaders resize training images, so objects appear at the scale the network learned),
the logits are resized back to the image's size (bilinear) and the class is their
argmax: any image size works and mask edges stay smooth. ``native=True`` runs the
network on the image as it is instead (the network pads and crops internally), which
suits images already at the training scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from nasfcn.bundle import BundleInfo, Preprocess, load_bundle
from nasfcn.data import ImageTooLargeError, open_image
from nasfcn.errors import NasfcnError
from nasfcn.model import FCN

#: Share of the mask colour in an overlay.
OVERLAY_ALPHA = 0.5
OVERLAY_SUFFIX = "_overlay"


class PredictError(NasfcnError, ValueError):
    """An input image cannot be used; the message names the file."""


@dataclass(frozen=True)
class Prediction:
    image: Path
    mask: Path  # palette PNG of class indices, the image's size
    overlay: Path | None
    size: tuple[int, int]  # (width, height) of image and mask
    class_fractions: dict[str, float]  # share of pixels per predicted class


def to_input(image: Image.Image, preprocess: Preprocess, size: tuple[int, int] | None) -> torch.Tensor:
    """1 x C x H x W, normalized as in training; resized to ``size`` (height, width) if given."""
    modes = {1: "L", 3: "RGB"}
    if preprocess.in_channels not in modes:
        raise PredictError(
            f"the network takes {preprocess.in_channels}-channel input; predict reads L or RGB"
        )
    image = image.convert(modes[preprocess.in_channels])
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32).reshape(image.size[1], image.size[0], -1) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    mean = torch.tensor(preprocess.mean).view(-1, 1, 1)
    std = torch.tensor(preprocess.std).view(-1, 1, 1)
    return ((tensor - mean) / std)[None]


@torch.no_grad()
def predict_mask(
    model: FCN, preprocess: Preprocess, image: Image.Image, *, native: bool = False
) -> np.ndarray:
    """Class indices (uint8, height x width of ``image``)."""
    width, height = image.size
    device = next(model.parameters()).device
    x = to_input(image, preprocess, None if native else preprocess.image_size).to(device)
    logits = model(x)
    if logits.shape[-2:] != (height, width):
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return logits.argmax(dim=1)[0].to("cpu", torch.uint8).numpy()


def palette_image(mask: np.ndarray, palette: Sequence[Sequence[int]]) -> Image.Image:
    """A mode-P PNG image: pixel values are class indices, the palette shows them in colour."""
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask).tobytes())
    flat = [value for colour in palette for value in colour]
    image.putpalette(flat + [0] * (768 - len(flat)))
    return image


def overlay_image(image: Image.Image, mask: np.ndarray, palette: Sequence[Sequence[int]]) -> Image.Image:
    """The image with the mask's class colours blended in."""
    colours = np.asarray(palette, dtype=np.uint8)[mask]
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    blended = (1 - OVERLAY_ALPHA) * base + OVERLAY_ALPHA * colours
    return Image.fromarray(blended.round().astype(np.uint8))


def predict_files(
    bundle: str | Path | tuple[FCN, BundleInfo],
    images: Sequence[str | Path],
    out: str | Path,
    *,
    overlay: bool = False,
    native: bool = False,
    device: str | torch.device = "cpu",
) -> list[Prediction]:
    """Write ``<stem>.png`` (and ``<stem>_overlay.png``) into ``out`` for every image.

    Every image is opened before anything is written, so a bad one fails the run early.
    """
    model, info = bundle if isinstance(bundle, tuple) else load_bundle(bundle, device)
    paths = [Path(p) for p in images]
    if not paths:
        raise PredictError("no images given; pass one or more image files")
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise PredictError(
                f"{path} and {stems[path.stem]} would both write {path.stem}.png; predict them into "
                f"different --out folders"
            )
        stems[path.stem] = path
    opened = [_open(path) for path in paths]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    palette = info.preprocess.palette
    results = []
    for path, image in zip(paths, opened, strict=True):
        mask = predict_mask(model, info.preprocess, image, native=native)
        mask_path = out / f"{path.stem}.png"
        palette_image(mask, palette).save(mask_path)
        overlay_path = None
        if overlay:
            overlay_path = out / f"{path.stem}{OVERLAY_SUFFIX}.png"
            overlay_image(image, mask, palette).save(overlay_path)
        counts = np.bincount(mask.ravel(), minlength=info.num_classes)
        fractions = {
            name: float(count) / mask.size
            for name, count in zip(info.preprocess.class_names, counts, strict=False)
            if count
        }
        results.append(Prediction(path, mask_path, overlay_path, image.size, fractions))
    return results


def _open(path: Path) -> Image.Image:
    try:
        with open_image(path) as handle:
            handle.load()
            return handle.copy()
    except ImageTooLargeError as err:
        raise PredictError(f"{path}: {err}") from err
    except FileNotFoundError:
        raise PredictError(f"{path}: no such image") from None
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise PredictError(f"{path}: cannot read the image ({err}); save it as PNG or JPEG") from err
