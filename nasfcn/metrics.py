"""Segmentation metrics from a confusion matrix accumulated on the inputs' device.

Conventions (those of mmsegmentation):

* Pixels whose target is the ignore index (255) are left out of everything.
* Rows of the confusion matrix are ground truth, columns are predictions.
* Per class ``c``: IoU = TP / (TP + FP + FN), Dice = 2 TP / (2 TP + FP + FN),
  accuracy (recall) = TP / (TP + FN).
* A class absent from both prediction and ground truth has no IoU or Dice (NaN in the
  per-class tuples) and is left out of their means; a class that is predicted but not
  present scores 0 and counts. Class accuracy is NaN for classes absent from the
  ground truth and left out of the mean class accuracy.
* Frequency-weighted IoU weights each class's IoU by its share of ground-truth pixels.
* With no labelled pixel at all, every figure is NaN.

:meth:`SegMetrics.as_dict` turns NaN into ``None`` so the result is valid JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch


@dataclass(frozen=True)
class SegMetrics:
    """Scores of one evaluation; fractions in [0, 1], NaN where undefined."""

    miou: float  # mean IoU over classes present in prediction or ground truth
    pixel_accuracy: float  # correct pixels / labelled pixels
    mean_class_accuracy: float  # mean recall over classes present in the ground truth
    fw_iou: float  # IoU weighted by ground-truth class frequency
    mean_dice: float  # mean Dice (F1) over classes present in prediction or ground truth
    per_class_iou: tuple[float, ...]
    per_class_accuracy: tuple[float, ...]
    per_class_dice: tuple[float, ...]
    num_pixels: int  # labelled (non-ignored) pixels counted

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: floats, lists and ints; NaN becomes ``None``."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, tuple):
                out[item.name] = [_json_float(v) for v in value]
            elif isinstance(value, float):
                out[item.name] = _json_float(value)
            else:
                out[item.name] = value
        return out


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def metrics_from_confusion(matrix: torch.Tensor) -> SegMetrics:
    """Scores from a C x C confusion matrix (rows = ground truth, columns = prediction)."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {tuple(matrix.shape)}")
    counts = matrix.detach().to("cpu", torch.float64)
    true_positive = counts.diagonal()
    ground_truth = counts.sum(dim=1)
    predicted = counts.sum(dim=0)
    union = ground_truth + predicted - true_positive
    total = ground_truth.sum()
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    iou = torch.where(union > 0, true_positive / union, nan)
    dice = torch.where(union > 0, 2 * true_positive / (ground_truth + predicted), nan)
    accuracy = torch.where(ground_truth > 0, true_positive / ground_truth, nan)
    if total > 0:
        pixel_accuracy = float(true_positive.sum() / total)
        fw_iou = float((ground_truth / total * iou.nan_to_num(0.0)).sum())
    else:
        pixel_accuracy = fw_iou = math.nan
    return SegMetrics(
        miou=_nanmean(iou),
        pixel_accuracy=pixel_accuracy,
        mean_class_accuracy=_nanmean(accuracy),
        fw_iou=fw_iou,
        mean_dice=_nanmean(dice),
        per_class_iou=tuple(iou.tolist()),
        per_class_accuracy=tuple(accuracy.tolist()),
        per_class_dice=tuple(dice.tolist()),
        num_pixels=int(total),
    )


def _nanmean(values: torch.Tensor) -> float:
    valid = values[~values.isnan()]
    return float(valid.mean()) if valid.numel() else math.nan


class ConfusionMatrix:
    """Accumulates a confusion matrix over batches with ``torch.bincount``.

    ``update`` takes predictions as class indices (N x H x W, any integer dtype) or
    logits (N x C x H x W); the matrix lives on the inputs' device (or ``device``), so
    a GPU evaluation never copies masks to the host.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        device: torch.device | str | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.device = torch.device(device) if device is not None else None
        self._matrix: torch.Tensor | None = None

    @property
    def matrix(self) -> torch.Tensor:
        """The C x C counts so far (int64; rows = ground truth, columns = prediction)."""
        if self._matrix is None:
            return torch.zeros((self.num_classes, self.num_classes), dtype=torch.int64, device=self.device)
        return self._matrix.clone()

    def reset(self) -> None:
        if self._matrix is not None:
            self._matrix.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch. ``target`` holds class indices, ``ignore_index`` where unlabelled."""
        if pred.ndim == target.ndim + 1:
            if pred.shape[1] != self.num_classes:
                raise ValueError(
                    f"logits have {pred.shape[1]} channels but there are {self.num_classes} "
                    f"classes; pass N x C x H x W logits or N x H x W class indices"
                )
            pred = pred.argmax(dim=1)
        elif pred.is_floating_point() or pred.is_complex():
            raise TypeError(
                f"predictions of shape {tuple(pred.shape)} look like class indices but have "
                f"dtype {pred.dtype}; pass integer indices or N x C x H x W logits"
            )
        if pred.shape != target.shape:
            raise ValueError(
                f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}"
            )
        device = self.device or target.device
        pred = pred.to(device=device, dtype=torch.int64).reshape(-1)
        target = target.to(device=device, dtype=torch.int64).reshape(-1)
        keep = target != self.ignore_index
        pred, target = pred[keep], target[keep]
        if target.numel():
            low, high = torch.aminmax(torch.cat([pred, target]))
            if low < 0 or high >= self.num_classes:
                raise ValueError(
                    f"labels must be in 0..{self.num_classes - 1} or {self.ignore_index} "
                    f"(ignore); found values from {int(low)} to {int(high)}"
                )
        counts = torch.bincount(target * self.num_classes + pred, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )
        if self._matrix is None:
            self._matrix = counts
        else:
            self._matrix += counts.to(self._matrix.device)

    def compute(self) -> SegMetrics:
        return metrics_from_confusion(self.matrix)
