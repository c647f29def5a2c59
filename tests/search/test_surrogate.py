"""The surrogate model: knob features, a fit that ranks held-out architectures, one answer per seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from nasfcn.search import KnobEncoder, Surrogate
from nasfcn.space import parse_space

SPACE = parse_space(
    """
name: knobs
input: {channels: 3, min_size: 32}
encoder: {stages: 3, width: 8, max_width: 32, kernel_size: {choices: [3, 5]}, downsample: maxpool}
skip: {choices: [none, fcn16s, fcn8s, unet_concat, unet_add]}
upsample: {choices: [bilinear, transposed, pixel_shuffle, max_unpool]}
attention: {type: {choices: [none, se, spatial, cbam]}, where: {choices: [encoder, decoder]}}
"""
)
GENOTYPES = list(SPACE.iter_genotypes(include_train=False))
SKIPS = ("none", "fcn16s", "fcn8s", "unet_concat", "unet_add")


def quality(genotype) -> float:
    """A simple function of the knobs: the skip path counts most, then a learned upsampling."""
    return 0.1 * SKIPS.index(genotype.skip) + 0.05 * (genotype.upsample == "transposed")


def test_every_searched_knob_is_one_column_coded_as_documented() -> None:
    encoder = KnobEncoder(SPACE)
    assert encoder.columns == ("skip", "upsample", "encoder/kernel_size", "attention/type", "attention/where")
    plain = next(g for g in GENOTYPES if g.attention.type == "none" and g.skip == "fcn8s")
    row = dict(zip(encoder.columns, encoder.row(plain), strict=True))
    assert row["skip"] == 2.0  # a name: its index in the YAML's choices
    assert row["encoder/kernel_size"] == float(plain.encoder.kernel_size[0])  # a number: itself
    assert math.isnan(row["attention/where"])  # inactive without attention


# HistGradientBoosting's OpenMP threads take seconds per fit on a busy machine
@pytest.mark.parametrize("backend", ["lightgbm", pytest.param("hist", marks=pytest.mark.slow)])
def test_the_fit_ranks_held_out_architectures_and_is_the_same_for_a_seed(backend: str) -> None:
    order = np.random.default_rng(0).permutation(len(GENOTYPES))
    train, held = [GENOTYPES[i] for i in order[:50]], [GENOTYPES[i] for i in order[50:]]
    encoder = KnobEncoder(SPACE)
    y = np.asarray([quality(g) for g in train])
    model = Surrogate(backend, seed=3).fit(encoder.matrix(train), y)
    mean, spread = model.predict(encoder.matrix(held))
    assert spearmanr(mean, [quality(g) for g in held]).statistic > 0.9
    assert spread.shape == mean.shape
    assert (spread >= 0).all()
    assert spread.max() > 0
    again = Surrogate(backend, seed=3).fit(encoder.matrix(train), y).predict(encoder.matrix(held))
    np.testing.assert_array_equal(again[0], mean)
    np.testing.assert_array_equal(again[1], spread)


def test_too_few_observations_predict_their_mean_without_spread() -> None:
    encoder = KnobEncoder(SPACE)
    model = Surrogate(seed=0).fit(encoder.matrix(GENOTYPES[:2]), np.asarray([0.2, 0.4]))
    mean, spread = model.predict(encoder.matrix(GENOTYPES[:5]))
    assert mean.tolist() == [pytest.approx(0.3)] * 5
    assert spread.tolist() == [0.0] * 5


def test_a_bad_backend_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="surrogate backend must be one of hist, lightgbm, got 'xgb'"):
        Surrogate("xgb")
