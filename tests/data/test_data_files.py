"""``folder:`` and ``voc:`` datasets: loading, splits, class names and every validation error."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasfcn.data import VOC_CLASSES, DatasetError, load_dataset

SMALL = {"image_size": (8, 12), "scale_range": (1.0, 1.0), "hflip": False}


def load_error(spec: str, **options) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(spec, **{**SMALL, **options})
    return str(info.value)


# --- folder: loading -------------------------------------------------------------------


def test_folder_loads_resized_samples(make_folder):
    bundle = load_dataset(f"folder:{make_folder()}", **SMALL)
    assert len(bundle.train) + len(bundle.val) == 6
    image, mask = bundle.val[0]
    assert image.shape == (3, 8, 12)
    assert image.dtype == torch.float32
    assert mask.shape == (8, 12)
    assert mask.dtype == torch.int64
    assert set(mask.unique().tolist()) == {0, 1, 2}


def test_folder_num_classes_is_max_label_plus_one(make_folder):
    bundle = load_dataset(f"folder:{make_folder(labels=(0, 4))}", **SMALL)
    assert bundle.num_classes == 5
    assert bundle.class_names == tuple(f"class_{i}" for i in range(5))


def test_folder_classes_txt_is_honoured(make_folder):
    root = make_folder(classes=["background", "road", "car", "tree"])
    bundle = load_dataset(f"folder:{root}", **SMALL)
    assert bundle.class_names == ("background", "road", "car", "tree")
    assert bundle.num_classes == 4
    assert len(bundle.palette) == 4


def test_folder_splits_are_honoured(make_folder):
    root = make_folder(splits={"train": ["img00", "img01", "img02"], "val": ["img05"]})
    bundle = load_dataset(f"folder:{root}", **SMALL)
    assert bundle.train.names == ("img00", "img01", "img02")
    assert bundle.val.names == ("img05",)


def test_folder_seeded_split_is_reproducible_and_holds_out_a_fifth(make_folder):
    root = make_folder(n=10)
    first = load_dataset(f"folder:{root}", seed=3, **SMALL)
    again = load_dataset(f"folder:{root}", seed=3, **SMALL)
    assert first.val.names == again.val.names
    assert len(first.val) == 2
    assert set(first.train.names).isdisjoint(first.val.names)
    assert set(first.train.names) | set(first.val.names) == {f"img{i:02d}" for i in range(10)}
    others = {load_dataset(f"folder:{root}", seed=s, **SMALL).val.names for s in range(4, 10)}
    assert len(others | {first.val.names}) > 1, "the split should depend on the seed"


def test_folder_ignore_label_survives_loading(make_folder):
    root = make_folder(labels=(0, 255, 1))
    bundle = load_dataset(f"folder:{root}", **SMALL)
    assert bundle.num_classes == 2
    assert 255 in bundle.val[0][1].unique().tolist()


def test_folder_train_cache_keeps_detail_for_upscaling(make_folder):
    bundle = load_dataset(f"folder:{make_folder()}", image_size=(8, 12), scale_range=(0.5, 2.0))
    assert tuple(bundle.train.images.shape[-2:]) == (16, 24)
    assert tuple(bundle.val.images.shape[-2:]) == (8, 12)
    for index in range(len(bundle.train)):
        image, mask = bundle.train[index]
        assert image.shape == (3, 8, 12)
        assert mask.shape == (8, 12)


def test_folder_uses_imagenet_normalization_by_default(make_folder):
    bundle = load_dataset(f"folder:{make_folder()}", **SMALL)
    assert bundle.mean == pytest.approx((0.485, 0.456, 0.406))
    custom = load_dataset(f"folder:{make_folder(name='b')}", mean=(0.5,) * 3, std=(0.5,) * 3)
    assert custom.mean == (0.5, 0.5, 0.5)


# --- folder: validation errors, each naming the file -------------------------------------


def test_folder_missing_path(tmp_path):
    message = load_error(f"folder:{tmp_path / 'nope'}")
    assert "nope" in message
    assert "no such folder" in message


def test_folder_missing_masks_folder(make_folder):
    root = make_folder()
    for path in (root / "masks").iterdir():
        path.unlink()
    (root / "masks").rmdir()
    assert "masks/" in load_error(f"folder:{root}")


def test_folder_missing_mask_names_the_image(make_folder):
    root = make_folder()
    (root / "masks" / "img03.png").unlink()
    message = load_error(f"folder:{root}")
    assert "img03" in message
    assert "masks/img03.png" in message


def test_folder_jpeg_mask_gets_a_hint(make_folder):
    root = make_folder()
    (root / "masks" / "img03.png").rename(root / "masks" / "img03.jpg")
    assert "masks must be PNG" in load_error(f"folder:{root}")


def test_folder_mask_without_image(make_folder, write_mask):
    root = make_folder()
    write_mask(root / "masks" / "stray.png")
    assert "masks/stray.png" in load_error(f"folder:{root}")


def test_folder_size_mismatch_names_the_mask(make_folder, write_mask):
    root = make_folder()
    write_mask(root / "masks" / "img02.png", size=(21, 14))
    message = load_error(f"folder:{root}")
    assert "masks/img02.png" in message
    assert "21x14" in message
    assert "20x14" in message


def test_folder_label_out_of_range_with_classes_txt(make_folder, write_mask):
    root = make_folder(classes=["background", "thing"])
    write_mask(root / "masks" / "img01.png", labels=(0, 1, 7))
    message = load_error(f"folder:{root}")
    assert "masks/img01.png" in message
    assert "[2, 7]" not in message  # only img01 has 7, but every mask has 2
    assert "7" in message
    assert "classes.txt" in message


def test_folder_unreadable_image(make_folder):
    root = make_folder()
    (root / "images" / "img04.png").write_bytes(b"not an image at all")
    message = load_error(f"folder:{root}")
    assert "images/img04.png" in message
    assert "cannot read" in message


def test_folder_rgb_mask_is_rejected(make_folder):
    root = make_folder()
    Image.new("RGB", (20, 14), (1, 2, 3)).save(root / "masks" / "img00.png")
    message = load_error(f"folder:{root}")
    assert "masks/img00.png" in message
    assert "'RGB'" in message


def test_folder_empty_split(make_folder):
    root = make_folder(splits={"train": ["img00"], "val": ["img01"]})
    (root / "splits" / "val.txt").write_text("\n# nothing here\n")
    message = load_error(f"folder:{root}")
    assert "val.txt" in message
    assert "empty" in message


def test_folder_split_lists_unknown_image(make_folder):
    root = make_folder(splits={"train": ["img00", "ghost"], "val": ["img01"]})
    message = load_error(f"folder:{root}")
    assert "train.txt" in message
    assert "ghost" in message


def test_folder_split_overlap_is_rejected(make_folder):
    root = make_folder(splits={"train": ["img00", "img01"], "val": ["img01"]})
    assert "img01" in load_error(f"folder:{root}")


def test_folder_one_split_file_is_not_enough(make_folder):
    root = make_folder(splits={"train": ["img00"]})
    assert "splits/val.txt" in load_error(f"folder:{root}")


def test_folder_single_image_cannot_be_split(make_folder):
    assert "cannot be split" in load_error(f"folder:{make_folder(n=1)}")


def test_folder_all_problems_are_listed_at_once(make_folder):
    root = make_folder()
    (root / "masks" / "img01.png").unlink()
    (root / "images" / "img04.png").write_bytes(b"junk")
    message = load_error(f"folder:{root}")
    assert "2 problems" in message
    assert "img01" in message
    assert "img04" in message


# --- voc: --------------------------------------------------------------------------------


def test_voc_loads_palette_masks_with_ignore_border(make_voc):
    bundle = load_dataset(f"voc:{make_voc()}", image_size=(14, 20), hflip=False)
    assert bundle.class_names == VOC_CLASSES
    assert bundle.num_classes == 21
    assert bundle.train.names == ("2007_000001", "2007_000002", "2007_000003")
    assert len(bundle.val) == 2
    _, mask = bundle.val[0]
    assert set(mask.unique().tolist()) == {0, 15, 20, 255}
    assert (mask[0] == 255).all()  # the ignore border kept by nearest resizing


def test_voc_classes_txt_overrides_names(make_voc):
    root = make_voc(labels=(0, 1, 2))
    (root / "classes.txt").write_text("background\nleaf\nstem\n")
    bundle = load_dataset(f"voc:{root}", **SMALL)
    assert bundle.class_names == ("background", "leaf", "stem")


def test_voc_missing_folder_points_at_nested_root(make_voc):
    root = make_voc()
    message = load_error(f"voc:{root.parent}")
    assert "JPEGImages" in message
    assert f"voc:{root}" in message


def test_voc_missing_mask_names_it(make_voc):
    root = make_voc()
    (root / "SegmentationClass" / "2007_000002.png").unlink()
    message = load_error(f"voc:{root}")
    assert "SegmentationClass/2007_000002.png" in message
    assert "train.txt" in message


def test_voc_missing_image_names_it(make_voc):
    root = make_voc()
    (root / "JPEGImages" / "2007_000004.jpg").unlink()
    assert "JPEGImages/2007_000004.jpg" in load_error(f"voc:{root}")


def test_voc_label_beyond_21_classes(make_voc):
    root = make_voc(labels=(0, 21))
    message = load_error(f"voc:{root}")
    assert "SegmentationClass/2007_000001.png" in message
    assert re.search(r"valid: 0\.\.20", message)


def test_voc_empty_split(make_voc):
    root = make_voc()
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("")
    message = load_error(f"voc:{root}")
    assert "train.txt" in message
    assert "empty" in message


def test_voc_missing_split_file(make_voc):
    root = make_voc()
    (root / "ImageSets" / "Segmentation" / "val.txt").unlink()
    assert "ImageSets/Segmentation/val.txt" in load_error(f"voc:{root}")


def test_voc_size_mismatch(make_voc, write_image):
    root = make_voc()
    write_image(root / "JPEGImages" / "2007_000005.jpg", size=(30, 30))
    assert "SegmentationClass/2007_000005.png" in load_error(f"voc:{root}")


def test_voc_image_content_is_cached_once(make_voc, monkeypatch):
    bundle = load_dataset(f"voc:{make_voc()}", **SMALL)

    def no_disk(*args, **kwargs):
        raise AssertionError("samples must come from memory")

    monkeypatch.setattr(Image, "open", no_disk)
    for index in range(len(bundle.train)):
        bundle.train[index]
    assert np.isfinite(bundle.val[1][0].numpy()).all()


# --- paths and links that leave the dataset --------------------------------------------


def test_voc_split_entry_naming_a_path_is_refused(make_voc, write_image, write_mask, tmp_path):
    root = make_voc()
    write_image(tmp_path / "outside" / "x.jpg")  # what ../../outside/x would reach
    write_mask(tmp_path / "outside" / "x.png", palette=True)
    split = root / "ImageSets" / "Segmentation" / "train.txt"
    split.write_text(split.read_text() + "../../outside/x\n")
    message = load_error(f"voc:{root}")
    assert "ImageSets/Segmentation/train.txt, line 4: '../../outside/x' is a path" in message


@pytest.mark.parametrize("entry", ["..", "/etc/passwd", "a\\b"])
def test_voc_split_entries_with_separators_are_refused(make_voc, entry):
    root = make_voc()
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text(f"2007_000004\n{entry}\n")
    assert f"val.txt, line 2: {entry!r} is a path" in load_error(f"voc:{root}")


def test_folder_image_linked_out_of_the_dataset_is_refused(make_folder, write_image, tmp_path):
    root = make_folder()
    write_image(tmp_path / "outside" / "private.png")
    (root / "images" / "img02.png").unlink()
    (root / "images" / "img02.png").symlink_to(tmp_path / "outside" / "private.png")
    message = load_error(f"folder:{root}")
    assert "images/img02.png: a link to" in message
    assert "outside the dataset folder" in message


def test_voc_mask_linked_out_of_the_dataset_is_refused(make_voc, write_mask, tmp_path):
    root = make_voc()
    write_mask(tmp_path / "outside" / "mask.png", (0, 15, 20), palette=True)
    (root / "SegmentationClass" / "2007_000005.png").unlink()
    (root / "SegmentationClass" / "2007_000005.png").symlink_to(tmp_path / "outside" / "mask.png")
    assert "SegmentationClass/2007_000005.png: a link to" in load_error(f"voc:{root}")


def test_links_that_stay_inside_the_dataset_are_followed(make_folder, make_voc, tmp_path):
    root = make_folder()
    (root / "originals").mkdir()
    (root / "images" / "img01.png").rename(root / "originals" / "img01.png")
    (root / "images" / "img01.png").symlink_to(Path("..") / "originals" / "img01.png")
    (tmp_path / "linked_root").symlink_to(root)  # the root itself may be a link
    bundle = load_dataset(f"folder:{tmp_path / 'linked_root'}", **SMALL)
    assert len(bundle.train) + len(bundle.val) == 6
    voc = make_voc()
    (voc / "SegmentationClass" / "2007_000001.png").rename(voc / "2007_000001.png")
    (voc / "SegmentationClass" / "2007_000001.png").symlink_to(voc / "2007_000001.png")
    assert len(load_dataset(f"voc:{voc}", **SMALL).train) == 3


def test_folder_decompression_bombs_are_refused_with_their_size(make_folder, write_png_bomb):
    """A few-KB PNG of 20000x20000 pixels (1.2 GB as RGB) once raised DecompressionBombError."""
    root = make_folder()
    write_png_bomb(root / "images" / "img00.png", 20000, 20000)  # Pillow itself refuses this one
    write_png_bomb(root / "masks" / "img01.png", 10000, 10000)  # Pillow only warns about this one
    assert (root / "images" / "img00.png").stat().st_size < 100_000
    message = load_error(f"folder:{root}")
    assert "2 problems" in message
    assert "images/img00.png: the image is 400,000,000 pixels, more than the 89,478,485" in message
    assert (
        "masks/img01.png: the image is 10000x10000 = 100,000,000 pixels, more than the 89,478,485" in message
    )
    assert "scale it down" in message


# --- the held-out test split -------------------------------------------------------------

TEST_SPLITS = {"train": ["img00", "img01", "img02"], "val": ["img03"], "test": ["img04", "img05"]}


def test_folder_test_split_is_loaded_only_when_asked(make_folder):
    root = make_folder(splits=TEST_SPLITS)
    searched = load_dataset(f"folder:{root}", **SMALL)
    exported = load_dataset(f"folder:{root}", **SMALL, with_test=True)
    assert searched.test is None  # a search never holds the test images
    assert exported.test is not None
    assert exported.test.names == ("img04", "img05")
    assert exported.val.names == searched.val.names == ("img03",)
    assert exported.test[0][0].shape == (3, 8, 12)


def test_folder_without_test_txt_has_no_test_split(make_folder):
    root = make_folder(splits={"train": ["img00", "img01"], "val": ["img02"]})
    assert load_dataset(f"folder:{root}", **SMALL, with_test=True).test is None
    assert load_dataset(f"folder:{make_folder(name='seeded')}", **SMALL, with_test=True).test is None


@pytest.mark.parametrize(("other", "why"), [("train", "test must be held out"), ("val", "selects on")])
def test_folder_test_ids_shared_with_train_or_val_are_refused(make_folder, other, why):
    root = make_folder(splits={**TEST_SPLITS, "test": ["img04", TEST_SPLITS[other][0]]})
    message = load_error(f"folder:{root}")  # refused by the search too, not only at export
    assert f"splits: 1 id(s) in both {other}.txt and test.txt (e.g. '{TEST_SPLITS[other][0]}')" in message
    assert why in message


def test_folder_test_split_problems_name_the_file(make_folder):
    root = make_folder(splits={**TEST_SPLITS, "test": ["img04", "nope"]})
    assert "splits/test.txt: lists 'nope' but images/ has no such image" in load_error(f"folder:{root}")


def test_folder_test_label_beyond_the_classes_is_refused(make_folder, write_mask):
    root = make_folder(splits=TEST_SPLITS)
    write_mask(root / "masks" / "img05.png", (0, 7))
    message = load_error(f"folder:{root}", with_test=True)
    assert "test split" in message
    assert "masks/img05.png: label values [7]" in message


def test_voc_test_txt_is_the_test_split(make_voc):
    root = make_voc(val=("2007_000004", "2007_000005", "2007_000006"))
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000004\n")
    (root / "ImageSets" / "Segmentation" / "test.txt").write_text("2007_000005\n2007_000006\n")
    bundle = load_dataset(f"voc:{root}", **SMALL, with_test=True)
    assert bundle.test is not None
    assert bundle.test.names == ("2007_000005", "2007_000006")
    assert bundle.val.names == ("2007_000004",)
    (root / "ImageSets" / "Segmentation" / "test.txt").write_text("2007_000004\n")
    assert "in both val.txt and test.txt" in load_error(f"voc:{root}")
