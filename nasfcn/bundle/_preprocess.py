"""``preprocess.json``: how inputs were prepared in training, and what outputs mean."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from nasfcn.bundle._files import MAX_IMAGE_SIDE, PREPROCESS_FILE, REEXPORT, BundleError
from nasfcn.bundle._json import json_safe


@dataclass(frozen=True)
class Preprocess:
    """How inputs were prepared in training, and what the outputs mean."""

    image_size: tuple[int, int]  # (height, width) the network was trained at
    mean: tuple[float, ...]  # per channel, for pixel values scaled to [0, 1]
    std: tuple[float, ...]
    class_names: tuple[str, ...]  # class index -> name
    palette: tuple[tuple[int, int, int], ...]  # class index -> RGB, for masks
    ignore_index: int = 255  # label of unlabelled pixels in masks
    dataset: str = ""  # the dataset spec trained on

    @property
    def in_channels(self) -> int:
        return len(self.mean)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """The form ``DatasetBundle.preprocess()`` writes (and checkpoints hold)."""
        return {
            **json_safe({f.name: getattr(self, f.name) for f in fields(self)}),
            "in_channels": self.in_channels,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = PREPROCESS_FILE) -> Preprocess:
        """Parse (and check) what ``DatasetBundle.preprocess()`` and ``to_dict`` write."""
        if not isinstance(data, Mapping):
            raise BundleError(f"{source}: expected a JSON object; {REEXPORT}")
        problems = []
        for key in ("image_size", "mean", "std", "class_names", "palette"):
            if not isinstance(data.get(key), list) or not data.get(key):
                problems.append(f"{key} must be a non-empty list")
        if problems:
            raise BundleError(f"{source}: " + "; ".join(problems) + f"; {REEXPORT}")
        try:
            pre = cls(
                image_size=tuple(int(v) for v in data["image_size"]),  # type: ignore[arg-type]
                mean=tuple(float(v) for v in data["mean"]),
                std=tuple(float(v) for v in data["std"]),
                class_names=tuple(str(v) for v in data["class_names"]),
                palette=tuple(tuple(int(c) for c in colour) for colour in data["palette"]),  # type: ignore[misc]
                ignore_index=int(data.get("ignore_index", 255)),
                dataset=str(data.get("dataset", "")),
            )
        except (TypeError, ValueError) as err:
            raise BundleError(f"{source}: malformed value ({err}); {REEXPORT}") from err
        if len(pre.image_size) != 2 or min(pre.image_size) < 1 or max(pre.image_size) > MAX_IMAGE_SIDE:
            problems.append(
                f"image_size must be [height, width], each 1..{MAX_IMAGE_SIDE}, got {list(pre.image_size)}"
            )
        if len(pre.std) != len(pre.mean) or any(not s > 0 for s in pre.std):
            problems.append("std must have one positive value per mean value")
        if "in_channels" in data and data["in_channels"] != len(pre.mean):
            problems.append(f"in_channels is {data['in_channels']} but mean has {len(pre.mean)} values")
        if len(pre.palette) != len(pre.class_names) or any(
            len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in pre.palette
        ):
            problems.append("palette must hold one [r, g, b] (0..255) per class name")
        if problems:
            raise BundleError(f"{source}: " + "; ".join(problems) + f"; {REEXPORT}")
        return pre
