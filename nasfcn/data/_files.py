"""File-backed datasets: ``voc:PATH`` (PASCAL VOC layout) and ``folder:PATH``.

Loading checks every file first (structure, then content) and reports all problems
at once, each naming the file and the fix. Images are decoded once, resized to the
size training needs and held in memory as uint8.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from nasfcn.data._core import (
    IGNORE_INDEX,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DataConfig,
    DatasetError,
    Source,
    raise_problems,
    register_dataset,
)
from nasfcn.data._images import ImageTooLargeError, open_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Mask modes that hold class indices (not colours).
INDEX_MODES = ("P", "L", "I", "I;16")
VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


@dataclass(frozen=True)
class Pair:
    """One sample on disk."""

    name: str  # the shared file stem
    image: Path
    mask: Path


def read_classes(path: Path) -> tuple[str, ...]:
    """``classes.txt``: one class name per line, in label order; blank lines and ``#`` skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read class names ({err}); save it as UTF-8 text") from err
    names = tuple(s for s in (line.split("#", 1)[0].strip() for line in lines) if s)
    if not names:
        raise DatasetError(f"{path}: no class names; write one name per line, background first")
    if len(names) > IGNORE_INDEX:
        raise DatasetError(
            f"{path}: {len(names)} classes, but labels must stay below the ignore index "
            f"{IGNORE_INDEX}; use at most {IGNORE_INDEX} classes"
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DatasetError(f"{path}: duplicate class names {duplicates}; make each name unique")
    return names


def read_split(path: Path) -> list[str]:
    """A split file: one sample id (file stem) per line; blank lines and ``#`` skipped."""
    return [sample_id for _, sample_id in read_split_lines(path)]


def read_split_lines(path: Path) -> list[tuple[int, str]]:
    """A split file's ids with their (1-based) line numbers, so errors can name the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read split ({err}); save it as UTF-8 text") from err
    kept = [(number, line.split("#", 1)[0].strip()) for number, line in enumerate(lines, 1)]
    # VOC-style lines may carry a second column; an id never contains spaces.
    entries = [(number, text.split()[0]) for number, text in kept if text]
    if not entries:
        raise DatasetError(f"{path}: the split is empty; list one sample id (file stem) per line")
    return entries


def _is_plain_id(sample_id: str) -> bool:
    """A sample id names a file in its folder: no path separators, not ``.`` or ``..``."""
    return sample_id not in (".", "..") and not any(c in sample_id for c in "/\\\0")


def _inside_root(pairs: Iterable[Pair], root: Path, problems: list[str]) -> list[Pair]:
    """The pairs whose files stay inside ``root``; a symlink out of it is a problem, not followed."""
    inside = root.resolve()
    kept = []
    for pair in pairs:
        outside = [p for p in (pair.image, pair.mask) if not p.resolve().is_relative_to(inside)]
        for path in outside:
            problems.append(
                f"{_rel(path, root)}: a link to {path.resolve()}, outside the dataset folder {inside}; "
                f"copy the file into the dataset (links that stay inside it are fine)"
            )
        if not outside:
            kept.append(pair)
    return kept


def _decode(
    pairs: Iterable[Pair],
    size: tuple[int, int],
    num_classes: int | None,
    root: Path,
    problems: list[str],
) -> tuple[list[np.ndarray], list[np.ndarray], set[int]]:
    """Read, check and resize every pair; record problems instead of stopping at the first."""
    images, masks, labels_seen = [], [], set()
    height, width = size
    for pair in pairs:
        image_name, mask_name = _rel(pair.image, root), _rel(pair.mask, root)
        try:
            with open_image(pair.image) as handle:
                image = handle.convert("RGB")
        except ImageTooLargeError as err:
            problems.append(f"{image_name}: {err}")
            continue
        except (OSError, UnidentifiedImageError, ValueError) as err:
            problems.append(f"{image_name}: cannot read the image ({err}); re-save it as PNG or JPEG")
            continue
        try:
            with open_image(pair.mask) as handle:
                mask = handle.copy()
        except ImageTooLargeError as err:
            problems.append(f"{mask_name}: {err}")
            continue
        except (OSError, UnidentifiedImageError, ValueError) as err:
            problems.append(f"{mask_name}: cannot read the mask ({err}); re-save it as PNG")
            continue
        if mask.mode not in INDEX_MODES:
            problems.append(
                f"{mask_name}: mask has mode {mask.mode!r}; masks must be single-channel "
                f"PNGs of class indices (mode P or L, {IGNORE_INDEX} = ignore); a grey-level "
                f"mask converts with PIL: Image.open(path).convert('L').save(path)"
            )
            continue
        if image.size != mask.size:
            problems.append(
                f"{mask_name}: mask is {mask.size[0]}x{mask.size[1]} but {image_name} is "
                f"{image.size[0]}x{image.size[1]} (width x height); masks must match their image"
            )
            continue
        mask_array = np.asarray(mask)
        values = {int(v) for v in np.unique(mask_array)} - {IGNORE_INDEX}
        if num_classes is not None:
            bad = sorted(v for v in values if not 0 <= v < num_classes)
            if bad:
                problems.append(
                    f"{mask_name}: label values {bad[:10]} are not classes (valid: 0..{num_classes - 1}"
                    f" and {IGNORE_INDEX} = ignore); fix the mask or add the classes to classes.txt"
                )
                continue
        elif any(v < 0 or v > IGNORE_INDEX for v in values):
            problems.append(f"{mask_name}: label values outside 0..{IGNORE_INDEX}; save the mask as 8-bit")
            continue
        labels_seen |= values
        images.append(np.asarray(image.resize((width, height), Image.Resampling.BILINEAR)))
        masks.append(
            np.asarray(
                Image.fromarray(mask_array.astype(np.uint8)).resize((width, height), Image.Resampling.NEAREST)
            )
        )
    return images, masks, labels_seen


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _stack(images: list[np.ndarray], masks: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
    image_tensor = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return image_tensor, torch.from_numpy(np.stack(masks))


def load_pairs(
    kind: str,
    root: Path,
    train: list[Pair],
    val: list[Pair],
    class_names: tuple[str, ...] | None,
    config: DataConfig,
    problems: list[str],
    test: list[Pair] | None = None,
) -> Source:
    """Decode and check the splits, then raise every problem found so far.

    Class names default to ``class_0 .. class_{max label}`` of train and val: the test split
    (decoded when ``test`` is given) never changes what a network is built for.
    """
    num_classes = len(class_names) if class_names else None
    train, val = _inside_root(train, root, problems), _inside_root(val, root, problems)
    train_images, train_masks, train_labels = _decode(
        train, config.train_cache_size, num_classes, root, problems
    )
    val_images, val_masks, val_labels = _decode(val, config.size, num_classes, root, problems)
    raise_problems(f"{kind} dataset {root}", problems)
    if class_names is None:
        labels = train_labels | val_labels
        if not labels:
            raise DatasetError(
                f"{kind} dataset {root}: every mask pixel is {IGNORE_INDEX} (ignore), so there is "
                f"nothing to learn; check the masks"
            )
        class_names = tuple(f"class_{i}" for i in range(max(labels) + 1))
    test_split = (
        _test_split(kind, root, test, config, len(class_names), problems) if test is not None else None
    )
    return Source(
        *_stack(train_images, train_masks),
        *_stack(val_images, val_masks),
        class_names=class_names,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        train_names=tuple(p.name for p in train),
        val_names=tuple(p.name for p in val),
        **(test_split or {}),
    )


def _test_split(
    kind: str, root: Path, test: list[Pair], config: DataConfig, num_classes: int, problems: list[str]
) -> dict[str, Any] | None:
    """The decoded test split as ``Source`` fields, or None when it lists no usable pair."""
    test = _inside_root(test, root, problems)
    images, masks, _ = _decode(test, config.size, num_classes, root, problems)
    raise_problems(f"{kind} dataset {root}, test split", problems)
    if not test:
        return None
    test_images, test_masks = _stack(images, masks)
    return {"test_images": test_images, "test_masks": test_masks, "test_names": tuple(p.name for p in test)}


def _root(kind: str, argument: str | None) -> Path:
    root = Path(argument or "").expanduser()
    if not root.is_dir():
        raise DatasetError(f"{kind} dataset {root}: no such folder; check the path after '{kind}:'")
    return root


def _find_image(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


@register_dataset("voc")
def load_voc(argument: str | None, config: DataConfig) -> Source:
    root = _root("voc", argument)
    images_dir, masks_dir = root / "JPEGImages", root / "SegmentationClass"
    splits_dir = root / "ImageSets" / "Segmentation"
    missing = [d for d in (images_dir, masks_dir, splits_dir) if not d.is_dir()]
    if missing:
        hint = ""
        nested = [*root.glob("*/JPEGImages"), *root.glob("*/*/JPEGImages")]
        if nested:
            hint = f" (did you mean voc:{nested[0].parent}?)"
        raise DatasetError(
            f"voc dataset {root}: missing folder(s) "
            f"{', '.join(_rel(d, root) for d in missing)}{hint}; a VOC root holds JPEGImages/, "
            f"SegmentationClass/ and ImageSets/Segmentation/{{train,val}}.txt"
        )
    problems: list[str] = []
    splits: dict[str, list[Pair]] = {}
    for split in ("train", "val", "test"):
        split_file = splits_dir / f"{split}.txt"
        if not split_file.is_file():
            if split != "test":  # optional: the held-out split an export reports
                problems.append(
                    f"{_rel(split_file, root)}: missing; list the {split} image ids, one per line"
                )
            continue
        pairs = []
        for line, name in read_split_lines(split_file):
            if not _is_plain_id(name):
                problems.append(
                    f"{_rel(split_file, root)}, line {line}: {name!r} is a path, not an image id; "
                    f"list ids of files in JPEGImages/ (e.g. 2007_000032), without folders"
                )
                continue
            image = _find_image(images_dir, name)
            mask = masks_dir / f"{name}.png"
            if image is None:
                problems.append(
                    f"{_rel(images_dir / name, root)}.jpg: missing, but listed in "
                    f"{_rel(split_file, root)}; add the image or remove the id"
                )
            elif not mask.is_file():
                problems.append(
                    f"{_rel(mask, root)}: missing mask for {_rel(image, root)}; add the mask "
                    f"or remove {name!r} from {_rel(split_file, root)}"
                )
            else:
                pairs.append(Pair(name, image, mask))
        splits[split] = pairs
    _check_held_out(
        {name: [p.name for p in pairs] for name, pairs in splits.items()}, splits_dir, root, problems
    )
    classes_file = root / "classes.txt"
    class_names = read_classes(classes_file) if classes_file.is_file() else VOC_CLASSES
    test = splits.get("test") if config.with_test else None
    return load_pairs(
        "voc", root, splits.get("train", []), splits.get("val", []), class_names, config, problems, test
    )


@register_dataset("folder")
def load_folder(argument: str | None, config: DataConfig) -> Source:
    root = _root("folder", argument)
    images_dir, masks_dir = root / "images", root / "masks"
    missing = [d.name + "/" for d in (images_dir, masks_dir) if not d.is_dir()]
    if missing:
        raise DatasetError(
            f"folder dataset {root}: missing {' and '.join(missing)}; put images in images/ "
            f"and masks (PNG, same file stem) in masks/"
        )
    problems: list[str] = []
    images: dict[str, Path] = {}
    for path in sorted(images_dir.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in images:
            problems.append(
                f"{_rel(path, root)}: two images named {path.stem!r} "
                f"({images[path.stem].name} and {path.name}); keep one"
            )
        images[path.stem] = path
    masks = {p.stem: p for p in sorted(masks_dir.glob("*.png")) if p.is_file()}
    if not images:
        raise DatasetError(f"folder dataset {root}: images/ holds no images ({', '.join(IMAGE_SUFFIXES)})")
    splits_dir = root / "splits"
    if splits_dir.is_dir():
        split_ids = _folder_splits(splits_dir, root, images, problems)
    else:
        split_ids = _seeded_split(sorted(images), config, root)
        for stem in sorted(set(masks) - set(images)):
            problems.append(
                f"{_rel(masks[stem], root)}: mask without an image; add "
                f"images/{stem}.png (or .jpg) or delete the mask"
            )
    pairs: dict[str, list[Pair]] = {}
    for split, stems in split_ids.items():
        pairs[split] = []
        for stem in stems:
            if stem not in images:
                continue  # reported by _folder_splits
            if stem not in masks:
                hint = ""
                if any((masks_dir / f"{stem}{s}").exists() for s in IMAGE_SUFFIXES if s != ".png"):
                    hint = " (masks must be PNG: lossy formats change the class indices)"
                problems.append(
                    f"{_rel(images[stem], root)}: no mask masks/{stem}.png{hint}; "
                    f"add the mask or remove the image"
                )
                continue
            pairs[split].append(Pair(stem, images[stem], masks[stem]))
    classes_file = root / "classes.txt"
    class_names = read_classes(classes_file) if classes_file.is_file() else None
    test = pairs.get("test") if config.with_test else None
    return load_pairs("folder", root, pairs["train"], pairs["val"], class_names, config, problems, test)


def _folder_splits(
    splits_dir: Path, root: Path, images: dict[str, Path], problems: list[str]
) -> dict[str, list[str]]:
    split_ids: dict[str, list[str]] = {}
    for split in ("train", "val"):
        split_file = splits_dir / f"{split}.txt"
        if not split_file.is_file():
            problems.append(
                f"{_rel(split_file, root)}: missing; with a splits/ folder both train.txt "
                f"and val.txt are needed (or delete splits/ for a seeded split)"
            )
            split_ids[split] = []
            continue
        split_ids[split] = _listed_ids(split_file, root, images, problems)
    test_file = splits_dir / "test.txt"  # optional: the held-out split an export reports
    if test_file.is_file():
        split_ids["test"] = _listed_ids(test_file, root, images, problems)
    _check_held_out(split_ids, splits_dir, root, problems)
    return split_ids


def _listed_ids(split_file: Path, root: Path, images: dict[str, Path], problems: list[str]) -> list[str]:
    ids = read_split(split_file)
    for stem in ids:
        if stem not in images:
            problems.append(
                f"{_rel(split_file, root)}: lists {stem!r} but images/ has no such image; "
                f"add images/{stem}.png (or .jpg) or remove the line"
            )
    return ids


def _check_held_out(
    split_ids: dict[str, list[str]], splits_dir: Path, root: Path, problems: list[str]
) -> None:
    """Val is held out of train, and test out of both: a shared id is a problem naming the files."""
    pairs = [("train", "val", "val must be held out"), ("train", "test", "test must be held out")]
    pairs.append(("val", "test", "test must be held out of the split the search selects on"))
    for first, second, why in pairs:
        shared = sorted(set(split_ids.get(first, ())) & set(split_ids.get(second, ())))
        if shared:
            problems.append(
                f"{_rel(splits_dir, root)}: {len(shared)} id(s) in both {first}.txt and {second}.txt "
                f"(e.g. {shared[0]!r}); {why}, so remove them from one"
            )


def _seeded_split(stems: list[str], config: DataConfig, root: Path) -> dict[str, list[str]]:
    """Shuffle with ``config.seed`` and hold out ``val_fraction`` (at least one) for val."""
    if len(stems) < 2:
        raise DatasetError(
            f"folder dataset {root}: {len(stems)} image(s) cannot be split into train and val; "
            f"add images or write splits/train.txt and splits/val.txt"
        )
    order = np.random.default_rng(config.seed).permutation(len(stems))
    n_val = min(len(stems) - 1, max(1, math.floor(len(stems) * config.val_fraction + 0.5)))
    val = sorted(stems[i] for i in order[:n_val])
    train = sorted(stems[i] for i in order[n_val:])
    return {"train": train, "val": val}
