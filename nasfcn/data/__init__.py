"""Datasets for segmentation, named by spec strings: ``shapes``, ``digits``, ``photos``, ``coins``,
``voc:PATH``, ``folder:PATH``.

``load_dataset(spec, config)`` checks everything up front and returns a
:class:`DatasetBundle`: train and val datasets yielding ``(image, mask)`` (float32
C x H x W normalized, int64 H x W with 255 = ignore) plus class names, palette and
normalization. A new dataset is one loader function under ``@register_dataset``.
"""

from nasfcn.data import _coins, _digits, _files, _photos, _shapes  # noqa: F401  (register the datasets)
from nasfcn.data._coins import generate_coins
from nasfcn.data._core import (
    DATASETS,
    IGNORE_INDEX,
    DataConfig,
    DatasetBundle,
    DatasetError,
    Source,
    absolute_spec,
    is_generated,
    load_dataset,
    parse_scale_range,
    parse_spec,
    register_dataset,
    voc_palette,
)
from nasfcn.data._dataset import SegmentationDataset
from nasfcn.data._digits import generate_digits
from nasfcn.data._files import VOC_CLASSES
from nasfcn.data._images import ImageTooLargeError, open_image, pixel_limit
from nasfcn.data._photos import generate_photos
from nasfcn.data._shapes import generate_shapes

__all__ = [
    "DATASETS",
    "IGNORE_INDEX",
    "VOC_CLASSES",
    "DataConfig",
    "DatasetBundle",
    "DatasetError",
    "ImageTooLargeError",
    "SegmentationDataset",
    "Source",
    "absolute_spec",
    "generate_coins",
    "generate_digits",
    "generate_photos",
    "generate_shapes",
    "is_generated",
    "load_dataset",
    "open_image",
    "parse_scale_range",
    "parse_spec",
    "pixel_limit",
    "register_dataset",
    "voc_palette",
]
