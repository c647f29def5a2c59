"""``photos``: objects pasted on the photographs bundled with scikit-image and scikit-learn."""

from __future__ import annotations

import socket
import sys
import urllib.request

import numpy as np
import pytest
import torch

from nasfcn.data import DatasetError, _photos, generate_photos, load_dataset
from nasfcn.data._digits import _scans
from nasfcn.data._synthetic import sample_rng, to_uint8

SIZE = (40, 48)


def _scene(split: str, index: int, seed: int = 0):
    pool = _scans()[2][split]
    return _photos._draw_scene(sample_rng(_photos._SALT, seed, split, index), *SIZE, pool=pool)


def test_every_bundled_photograph_is_read_and_distinct():
    photos = _photos.photographs()
    assert len(photos) == len(_photos.SKIMAGE_PHOTOS) + 2  # + scikit-learn's china and flower
    for photo in photos:
        assert photo.ndim == 3
        assert photo.shape[2] == 3
        assert min(photo.shape[:2]) >= min(_photos.PHOTO_SIDE, 300)
        assert 0.0 <= photo.min() < photo.max() <= 1.0
    means = {round(float(p.mean()), 4) for p in photos}
    assert len(means) == len(photos)


@pytest.mark.parametrize("split", ["train", "val"])
def test_masks_are_the_pasted_silhouettes_in_painting_order(split):
    _, masks = generate_photos(0, split, 12, SIZE)
    for index in range(12):
        expected = np.zeros(SIZE, dtype=np.uint8)
        for obj in _scene(split, index).objects:
            expected[_photos.object_mask(obj, *SIZE)] = obj.label
        assert np.array_equal(masks[index].numpy(), expected)


def test_background_pixels_are_the_photograph_crop_and_objects_are_not():
    images, masks = generate_photos(3, "train", 8, SIZE)
    for index in range(8):
        scene = _scene("train", index, seed=3)
        plain = scene.background.render(*SIZE) + scene.noise
        expected = torch.from_numpy(to_uint8(plain[None]))[0]
        background = masks[index] == 0
        assert torch.equal(images[index][:, background], expected[:, background])
        pasted = ~background
        if pasted.any():
            same = (images[index][:, pasted] == expected[:, pasted]).all(dim=0)
            assert same.float().mean() < 0.5  # an object's paint comes from another photograph


def test_objects_are_painted_from_another_photograph():
    for index in range(20):
        scene = _scene("train", index)
        assert all(obj.paint.photo != scene.background.photo for obj in scene.objects)


def test_digit_objects_use_the_splits_own_scans():
    pools = _scans()[2]
    for split in ("train", "val"):
        scans = {
            obj.scan
            for index in range(40)
            for obj in _scene(split, index).objects
            if _photos.CLASS_NAMES[obj.label] == "digit"
        }
        assert scans
        assert scans <= set(pools[split].tolist())


def test_generates_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("photos tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setitem(sys.modules, "pooch", None)  # skimage's downloader: importing it fails
    for cached in (_photos.photographs, _photos._horse):
        cached.cache_clear()
    bundle = load_dataset("photos", image_size=24, train_samples=6, val_samples=3)
    assert bundle.class_names == ("background", "horse", "digit", "star")
    assert bundle.train.images.shape == (6, 3, 24, 24)


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_photos, "find_spec", lambda name: None)
    _photos.photographs.cache_clear()
    with pytest.raises(DatasetError, match="pip install scikit-image"):
        load_dataset("photos", train_samples=2, val_samples=2)
    monkeypatch.undo()
    _photos.photographs.cache_clear()
