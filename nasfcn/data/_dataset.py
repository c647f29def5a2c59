"""The one Dataset class: cached uint8 images and masks, augmented and normalized on access."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


class SegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Samples as ``(image, mask)``: float32 C x H x W normalized, int64 H x W class indices.

    Images and masks are held decoded (uint8) so an epoch never touches the disk. With
    ``augment`` the sample is rescaled by a random factor in ``scale_range``, padded
    (image with the mean, mask with ``ignore_index``) or cropped back to ``size`` at a
    random offset, and flipped left-right with probability 1/2. The random draws depend
    only on ``(seed, epoch, index)``, so an epoch is the same whatever the number of
    DataLoader workers; call :meth:`set_epoch` before each epoch to get fresh draws.
    """

    def __init__(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        *,
        size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        ignore_index: int = 255,
        augment: bool = False,
        hflip: bool = True,
        scale_range: tuple[float, float] = (1.0, 1.0),
        seed: int = 0,
        names: Sequence[str] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or masks.dtype != torch.uint8:
            raise TypeError("images and masks must be uint8 tensors")
        if images.ndim != 4 or masks.ndim != 3 or images.shape[0] != masks.shape[0]:
            raise ValueError(
                f"expected images N x C x H x W and masks N x H x W, "
                f"got {tuple(images.shape)} and {tuple(masks.shape)}"
            )
        if images.shape[-2:] != masks.shape[-2:]:
            raise ValueError("images and masks must have the same height and width")
        self.images = images
        self.masks = masks
        self.size = (int(size[0]), int(size[1]))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.ignore_index = ignore_index
        self.augment = augment
        self.hflip = hflip
        self.scale_range = scale_range
        self.seed = seed
        self.names = tuple(names) if names is not None else None
        self.epoch = 0

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def set_epoch(self, epoch: int) -> None:
        """Draw different augmentations for ``epoch`` (no effect without ``augment``)."""
        self.epoch = int(epoch)

    def reduced(self, side: tuple[int, int], fraction: float, seed: int) -> SegmentationDataset:
        """A cheaper view for low-fidelity epochs: samples at ``side``, on a seeded ``fraction``
        of the images (the same images for every trial of a seed; at least one)."""
        view = copy.copy(self)
        view.size = (int(side[0]), int(side[1]))
        if fraction < 1:
            count = max(1, round(len(self) * fraction))
            chosen = np.sort(np.random.default_rng(seed).choice(len(self), size=count, replace=False))
            index = torch.from_numpy(chosen)
            view.images, view.masks = self.images[index], self.masks[index]
            if self.names is not None:
                view.names = tuple(self.names[i] for i in chosen)
        return view

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image = self.images[index].float().div_(255.0)
        mask = self.masks[index].long()
        if self.augment:
            image, mask = self._augment(image, mask, index % len(self))
        elif tuple(image.shape[-2:]) != self.size:
            image, mask = _resize(image, mask, self.size)
        image = (image - self.mean) / self.std
        return image, mask

    def _augment(
        self, image: torch.Tensor, mask: torch.Tensor, index: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        height, width = self.size
        low, high = self.scale_range
        scale = rng.uniform(low, high) if high > low else low
        scaled = (max(1, round(height * scale)), max(1, round(width * scale)))
        if tuple(image.shape[-2:]) != scaled:
            image, mask = _resize(image, mask, scaled)
        # Pad up to the output size (image with the mean, so 0 after normalization).
        pad_h, pad_w = max(0, height - scaled[0]), max(0, width - scaled[1])
        if pad_h or pad_w:
            top, left = int(rng.integers(0, pad_h + 1)), int(rng.integers(0, pad_w + 1))
            padding = (left, pad_w - left, top, pad_h - top)
            image = F.pad(image - self.mean, padding) + self.mean
            mask = F.pad(mask, padding, value=self.ignore_index)
        # Crop down to the output size.
        top = int(rng.integers(0, image.shape[-2] - height + 1))
        left = int(rng.integers(0, image.shape[-1] - width + 1))
        image = image[:, top : top + height, left : left + width]
        mask = mask[top : top + height, left : left + width]
        if self.hflip and rng.random() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        return image.contiguous(), mask.contiguous()


def _resize(
    image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear (antialiased) for the image, nearest for the mask."""
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[
        0
    ].clamp_(0.0, 1.0)
    mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0]
    return image, mask.long()
