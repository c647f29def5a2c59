"""Genotype identity: canonical JSON and arch_id invariants."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nasfcn.genotype import (
    AttentionGene,
    EncoderGene,
    Genotype,
    GenotypeError,
    HeadGene,
    TrainGene,
)
from nasfcn.space import load_space


def _genotype(**overrides) -> Genotype:
    base = {
        "encoder": EncoderGene(stages=3, width=8, kernel_size=(3, 5, 3)),
        "skip": "fcn8s",
        "upsample": "transposed",
    }
    base.update(overrides)
    return Genotype(**base)


def test_json_round_trip_is_exact() -> None:
    genotype = _genotype(train=TrainGene(lr=0.01, batch_size=8))
    again = Genotype.from_json(genotype.to_json())
    assert again == genotype
    assert again.to_json() == genotype.to_json()


def test_canonical_json_ignores_key_order() -> None:
    data = json.loads(_genotype().to_json())
    shuffled = json.dumps(dict(reversed(list(data.items()))))
    assert Genotype.from_json(shuffled).to_json() == _genotype().to_json()
    assert _genotype().to_json() == json.dumps(data, sort_keys=True, separators=(",", ":"))


def test_inactive_knobs_are_dropped() -> None:
    plain = _genotype(attention=AttentionGene("none"))
    with_stale_where = _genotype(attention=AttentionGene("none", where="both"))
    assert plain == with_stale_where
    assert plain.arch_id == with_stale_where.arch_id
    assert "where" not in plain.to_json()
    no_extra = _genotype(head=HeadGene(extra_conv=False, extra_kernel_size=7))
    assert no_extra.arch_id == _genotype().arch_id


def test_training_knobs_excluded_from_arch_id() -> None:
    a = _genotype(train=TrainGene(lr=0.01))
    b = _genotype(train=TrainGene(lr=0.1, weight_decay=1e-4))
    assert a.arch_id == b.arch_id
    assert a.trial_key != b.trial_key


def test_numbers_are_normalized() -> None:
    assert _genotype(train=TrainGene(lr=1)).to_json() == _genotype(train=TrainGene(lr=1.0)).to_json()
    assert _genotype(encoder=EncoderGene(stages=3, width=8, kernel_size=3)) == _genotype(
        encoder=EncoderGene(stages=3, width=8, kernel_size=(3, 3, 3))
    )


def test_same_network_same_id() -> None:
    # A cap that never bites, and the dilation of a 1x1 kernel, do not change the network.
    assert EncoderGene(stages=3, width=8, max_width=64) == EncoderGene(stages=3, width=8)
    assert EncoderGene(stages=2, width=32, max_width=16) == EncoderGene(stages=2, width=16, max_width=16)
    assert EncoderGene(stages=2, width=8, kernel_size=(1, 3), dilation=(2, 2)) == EncoderGene(
        stages=2, width=8, kernel_size=(1, 3), dilation=(1, 2)
    )


@pytest.mark.parametrize(
    "change",
    [
        {"skip": "fcn16s"},
        {"upsample": "bilinear"},
        {"attention": AttentionGene("se", "decoder")},
        {"head": HeadGene(extra_conv=True)},
        {"encoder": EncoderGene(stages=3, width=8, kernel_size=(3, 5, 5))},
        {"encoder": EncoderGene(stages=3, width=8, kernel_size=(3, 5, 3), norm="group")},
        {"encoder": EncoderGene(stages=3, width=8, kernel_size=(3, 5, 3), max_width=16)},
    ],
)
def test_any_network_change_changes_arch_id(change) -> None:
    assert _genotype(**change).arch_id != _genotype().arch_id


def test_arch_ids_of_a_space_are_distinct_for_distinct_networks() -> None:
    space = load_space("search_spaces/fcn_tiny.yaml")
    genotypes = list(space.iter_genotypes(include_train=False))
    assert len({g.arch_id for g in genotypes}) == len({g.arch_json() for g in genotypes})


@given(st.integers(min_value=0, max_value=10_000))
def test_sampled_genotypes_survive_json(seed: int) -> None:
    genotype = load_space("search_spaces/fcn_small.yaml").sample(seed)
    assert Genotype.from_json(genotype.to_json()) == genotype
    assert len(genotype.arch_id) == 12


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[]", "must be an object"),
        ("{", "not valid JSON"),
        ('{"skip": "none"}', "missing the field 'encoder'"),
        ('{"encoder": {"stages": 2, "width": 8, "kernel": 3}}', "unknown keys ['kernel']"),
        (
            '{"encoder": {"stages": 2, "width": 8, "kernel_size": [3]}}',
            "has 1 values but the encoder has 2",
        ),
        (
            '{"encoder": {"stages": 2, "width": 8, "downsample": "strided_conv"}, "upsample": "max_unpool"}',
            "needs encoder.downsample maxpool",
        ),
    ],
)
def test_malformed_genotypes_explain_themselves(text: str, fragment: str) -> None:
    with pytest.raises(GenotypeError) as info:
        Genotype.from_json(text)
    assert fragment in str(info.value)
