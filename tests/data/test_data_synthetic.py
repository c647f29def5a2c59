"""Generated datasets (``shapes``, ``digits``, ``photos``, ``coins``): determinism, sizes, classes,
difficulty."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasfcn.data import (
    DATASETS,
    generate_coins,
    generate_digits,
    generate_photos,
    generate_shapes,
    is_generated,
    load_dataset,
)
from nasfcn.data._digits import _scans

GENERATORS = {
    "shapes": generate_shapes,
    "digits": generate_digits,
    "photos": generate_photos,
    "coins": generate_coins,
}
NUM_CLASSES = {"shapes": 4, "digits": 11, "photos": 4, "coins": 3}


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_samples(name):
    first = load_dataset(name, train_samples=8, val_samples=4, seed=5)
    again = load_dataset(name, train_samples=8, val_samples=4, seed=5)
    assert torch.equal(first.train.images, again.train.images)
    assert torch.equal(first.train.masks, again.train.masks)
    assert torch.equal(first.val.images, again.val.images)


@pytest.mark.parametrize("name", GENERATORS)
def test_other_seed_other_samples(name):
    first = load_dataset(name, train_samples=4, val_samples=2, seed=0)
    other = load_dataset(name, train_samples=4, val_samples=2, seed=1)
    assert not torch.equal(first.train.images, other.train.images)


@pytest.mark.parametrize("name", GENERATORS)
def test_sample_i_does_not_depend_on_how_many_are_made(name):
    generate = GENERATORS[name]
    images, masks = generate(0, "train", 40, (24, 24))  # more than one render chunk
    tail_images, tail_masks = generate(0, "train", 3, (24, 24), start=35)
    assert torch.equal(images[35:38], tail_images)
    assert torch.equal(masks[35:38], tail_masks)


@pytest.mark.parametrize("name", GENERATORS)
def test_train_and_val_scenes_differ(name):
    train_images, _ = GENERATORS[name](0, "train", 4, (32, 32))
    val_images, _ = GENERATORS[name](0, "val", 4, (32, 32))
    assert not torch.equal(train_images, val_images)


@pytest.mark.parametrize("name", GENERATORS)
def test_odd_image_size(name):
    bundle = load_dataset(name, image_size=(37, 53), train_samples=4, val_samples=2)
    for dataset in (bundle.train, bundle.val):
        image, mask = dataset[1]
        assert image.shape == (3, 37, 53)
        assert image.dtype == torch.float32
        assert mask.shape == (37, 53)
        assert mask.dtype == torch.int64
    assert bundle.in_channels == 3


@pytest.mark.parametrize("name", GENERATORS)
def test_every_class_appears(name):
    _, masks = GENERATORS[name](0, "train", 96, (48, 48))
    assert set(masks.unique().tolist()) == set(range(NUM_CLASSES[name]))
    bundle = load_dataset(name, train_samples=1, val_samples=1)
    assert bundle.num_classes == NUM_CLASSES[name]
    assert len(bundle.palette) == NUM_CLASSES[name]


@pytest.mark.parametrize("name", GENERATORS)
def test_normalization_is_measured_on_train(name):
    bundle = load_dataset(name, train_samples=64, val_samples=8, hflip=False)
    pixels = torch.stack([bundle.train[i][0] for i in range(64)])
    if bundle.config.scale_range == (1.0, 1.0):
        assert pixels.mean().item() == pytest.approx(0.0, abs=0.05)
    assert all(0 < s < 1 for s in bundle.std)
    assert len(bundle.mean) == 3


def test_shapes_foreground_is_a_real_minority():
    _, masks = generate_shapes(0, "train", 64, (64, 64))
    fractions = np.bincount(masks.flatten().numpy(), minlength=4) / masks.numel()
    assert 0.6 < fractions[0] < 0.9
    assert (fractions[1:] > 0.02).all()  # no class starves


def test_shapes_colour_does_not_reveal_the_class():
    """Every class is painted from the same textures: per-class colour statistics match."""
    images, masks = generate_shapes(0, "train", 512, (32, 32))
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 3).float() / 255
    labels = masks.reshape(-1)
    background = pixels[labels == 0]
    for label in range(1, 4):
        shape = pixels[labels == label]
        # Tolerances allow for sampling noise: each shape is one texture, ~400 per class.
        assert torch.allclose(shape.mean(0), background.mean(0), atol=0.06)
        assert torch.allclose(shape.std(0), background.std(0), atol=0.04)


def test_shapes_colour_classifier_is_at_chance():
    """A per-pixel classifier on RGB alone scores no better than chance on balanced accuracy."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.naive_bayes import GaussianNB

    def pixels(split):
        images, masks = generate_shapes(1, split, 96, (32, 32))
        return images.permute(0, 2, 3, 1).reshape(-1, 3).numpy(), masks.reshape(-1).numpy()

    features, labels = pixels("train")
    test_features, test_labels = pixels("val")
    model = GaussianNB(priors=np.full(4, 1 / 4)).fit(features, labels)
    score = balanced_accuracy_score(test_labels, model.predict(test_features))
    assert score < 0.33  # chance is 1/4


def test_digits_val_scans_are_held_out_of_train():
    _, labels, pools = _scans()
    assert set(pools["train"]).isdisjoint(pools["val"])
    assert len(pools["train"]) + len(pools["val"]) == len(labels)
    for pool in pools.values():
        assert set(labels[pool]) == set(range(10))


def test_tiny_images_still_work():
    for name in GENERATORS:
        image, mask = load_dataset(name, image_size=9, train_samples=2, val_samples=2).val[0]
        assert image.shape == (3, 9, 9)
        assert mask.shape == (9, 9)


@pytest.mark.parametrize("name", GENERATORS)
def test_the_test_split_is_seeded_and_shares_no_scene_with_train_or_val(name):
    options = {"image_size": 24, "train_samples": 16, "val_samples": 16, "test_samples": 16, "seed": 3}
    bundle = load_dataset(name, **options, with_test=True)
    again = load_dataset(name, **{**options, "train_samples": 1, "val_samples": 1}, with_test=True)
    assert bundle.test is not None
    assert again.test is not None
    assert len(bundle.test) == 16
    assert torch.equal(bundle.test.images, again.test.images)  # independent of the other splits' sizes
    seen = {bytes(image.numpy()) for image in (*bundle.train.images, *bundle.val.images)}
    assert not seen & {bytes(image.numpy()) for image in bundle.test.images}
    assert load_dataset(name, **options).test is None  # not loaded unless asked: a search never is


def test_test_scenes_use_no_digit_scan_of_train_scenes():
    pools = _scans()[2]
    assert not set(pools["test"]) & set(pools["train"])


def test_the_generated_datasets_are_the_four_generators():
    """Every dataset made from a seed has a ``generate_X`` here, so the tests above cover them all."""
    assert {name for name in DATASETS.names() if is_generated(name)} == set(GENERATORS)


@pytest.mark.parametrize("name", GENERATORS)
def test_the_registered_loader_serves_its_generators_samples(name):
    """``load_dataset(name)`` serves the generator's own samples, split by split."""
    bundle = load_dataset(
        name, image_size=(20, 28), train_samples=5, val_samples=3, test_samples=2, seed=4, with_test=True
    )
    assert len(bundle.class_names) == NUM_CLASSES[name]
    for split, dataset in (("train", bundle.train), ("val", bundle.val), ("test", bundle.test)):
        images, masks = GENERATORS[name](4, split, len(dataset), (20, 28))
        assert torch.equal(dataset.images, images), split
        assert torch.equal(dataset.masks, masks), split
