"""``coins``: real coins cut out of scikit-image's coin photograph, pasted by size class."""

from __future__ import annotations

import math
import socket
import sys
import urllib.request

import numpy as np
import pytest
import torch

from nasfcn.data import _coins, _photos, generate_coins, load_dataset
from nasfcn.data._synthetic import sample_rng, to_uint8

SIZE = (48, 56)


def _scene(split: str, index: int, seed: int = 0):
    pool = _coins.coin_pools()[split]
    return _coins._draw_scene(sample_rng(_coins._SALT, seed, split, index), *SIZE, pool=pool)


def test_every_coin_of_the_photograph_is_cut_out_round_and_whole():
    coins = _coins.coins()
    assert len(coins) == _coins.COIN_COUNT
    for coin in coins:
        rows, cols = np.flatnonzero(coin.mask.any(axis=1)), np.flatnonzero(coin.mask.any(axis=0))
        height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert min(height, width) >= 30  # a coin, not a speck
        assert max(height, width) <= 70  # one coin, not a merged pair
        assert coin.mask.sum() / (math.pi * height * width / 4) > 0.9  # round: fills its ellipse
        assert not coin.mask[[0, -1]].any()  # wholly inside its window
        assert not coin.mask[:, [0, -1]].any()
        assert coin.grey[coin.mask].mean() > coin.grey[~coin.mask].mean() + 0.15  # a coin, not cloth


def test_split_pools_are_disjoint_and_cover_every_coin():
    pools = _coins.coin_pools()
    assert sorted(np.concatenate(list(pools.values())).tolist()) == list(range(_coins.COIN_COUNT))
    for split in ("train", "val", "test"):
        used = {pasted.coin for index in range(40) for pasted in _scene(split, index).coins}
        assert used <= set(pools[split].tolist())


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_masks_are_the_pasted_coins_in_pasting_order(split):
    _, masks = generate_coins(0, split, 12, SIZE)
    for index in range(12):
        expected = np.zeros(SIZE, dtype=np.uint8)
        for pasted in _scene(split, index).coins:
            expected[_coins.coin_mask(pasted, *SIZE)] = pasted.label
        assert np.array_equal(masks[index].numpy(), expected)


def test_background_pixels_are_another_photographs_crop():
    images, masks = generate_coins(2, "train", 8, SIZE)
    coins_photo = _photos.SKIMAGE_PHOTOS.index("coins.png")
    for index in range(8):
        scene = _scene("train", index, seed=2)
        assert scene.background.photo != coins_photo
        plain = scene.background.render(*SIZE) + scene.noise
        expected = torch.from_numpy(to_uint8(plain[None]))[0]
        background = masks[index] == 0
        assert torch.equal(images[index][:, background], expected[:, background])


def test_the_class_is_the_pasted_size_with_a_gap_between_classes():
    areas: dict[int, list[int]] = {1: [], 2: []}
    for index in range(60):
        for pasted in _scene("train", index).coins:
            areas[pasted.label].append(int(_coins.coin_mask(pasted, *SIZE).sum()))
    assert areas[1]
    assert areas[2]
    assert max(areas[1]) < min(areas[2])  # unoccluded, a small coin is always smaller


def test_generates_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("coins tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setitem(sys.modules, "pooch", None)  # skimage's downloader: importing it fails
    for cached in (_photos.photographs, _coins.coins):
        cached.cache_clear()
    bundle = load_dataset("coins", image_size=24, train_samples=6, val_samples=3)
    assert bundle.class_names == ("background", "small coin", "large coin")
    assert bundle.train.images.shape == (6, 3, 24, 24)
