"""The FCN builder: every registered choice builds, keeps the input size, and trains."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from nasfcn.catalogue import keeps_pool_indices, needs_pool_indices
from nasfcn.genotype import AttentionGene, EncoderGene, Genotype, HeadGene
from nasfcn.model import ATTENTION, DOWNSAMPLERS, SKIPS, UPSAMPLERS, build_model
from nasfcn.model.upsample import TransposedUp, Unpool2x2
from nasfcn.space import load_space, shipped_spaces

ODD_SIZES = [(37, 53), (97, 131), (32, 33)]


def _genotype(skip="fcn8s", upsample="bilinear", attention="none", downsample="maxpool", **enc):
    encoder = EncoderGene(**{"stages": 3, "width": 4, "downsample": downsample, **enc})
    where = None if attention == "none" else "both"
    return Genotype(
        encoder=encoder,
        skip=skip,
        upsample=upsample,
        attention=AttentionGene(attention, where),
        head=HeadGene(extra_conv=True),
    )


def _check(model: torch.nn.Module, num_classes: int, sizes=ODD_SIZES, in_channels: int = 3) -> None:
    for height, width in sizes:
        x = torch.randn(2, in_channels, height, width, requires_grad=True)
        logits = model(x)
        assert logits.shape == (2, num_classes, height, width)
        assert torch.isfinite(logits).all()
        logits.sum().backward()
        assert x.grad is not None
        assert torch.isfinite(x.grad).all()


COMBOS = [
    (skip, up, att, down)
    for skip, up, att, down in itertools.product(
        SKIPS.names(), UPSAMPLERS.names(), ATTENTION.names(), DOWNSAMPLERS.names()
    )
    if not (needs_pool_indices(up) and not keeps_pool_indices(down))
]


@pytest.mark.parametrize(
    ("skip", "upsample", "attention", "downsample"), COMBOS, ids=["-".join(c) for c in COMBOS]
)
def test_every_registered_choice_builds_and_keeps_size(skip, upsample, attention, downsample) -> None:
    model = build_model(_genotype(skip, upsample, attention, downsample), num_classes=5)
    _check(model, 5, sizes=[(37, 53), (16, 16)])


@pytest.mark.parametrize(
    ("skip", "upsample", "attention", "downsample"), COMBOS, ids=["-".join(c) for c in COMBOS]
)
def test_every_registered_choice_counts_flops_as_torch_does(skip, upsample, attention, downsample) -> None:
    """nasfcn.cost counts with its own dispatch mode; the figures must be FlopCounterMode's."""
    from torch.utils.flop_counter import FlopCounterMode

    from nasfcn.cost import _INTERPOLATION_FLOPS, _count_flops

    model = build_model(_genotype(skip, upsample, attention, downsample), num_classes=5).eval()
    x = torch.randn(2, 3, 37, 53)
    total, by_op = _count_flops(model, x)
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_INTERPOLATION_FLOPS) as counter:
        model(x)
    expected = {str(op): n for op, n in counter.get_flop_counts()["Global"].items() if n}
    assert total == counter.get_total_flops() > 0
    assert by_op == expected


# The forward pads a side to a multiple of the total stride (8 or 16 in fcn_tiny) and crops back, so
# only a side's residue mod 16 changes what a size check exercises: 33 x 35 pads and crops as
# 97 x 131 did (residues 1 and 3) at a ninth of the pixels; 37 x 53 gives residues 5 and 5.
ODD_SIZES = [(37, 53), (33, 35)]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 2,100 networks, each built and run twice at small odd sizes
def test_every_fcn_tiny_architecture_builds_and_keeps_size() -> None:
    space = load_space("search_spaces/fcn_tiny.yaml")
    count = 0
    for genotype in space.iter_genotypes(include_train=False):
        model = build_model(genotype, num_classes=6).eval()
        with torch.no_grad():
            for height, width in ODD_SIZES:
                assert model(torch.randn(1, 3, height, width)).shape == (1, 6, height, width)
        count += 1
    assert count == 2100


@pytest.mark.slow
def test_every_fcn_bench_architecture_builds_at_the_table_sizes() -> None:
    """A tabular build trains all 280: none may fail to build or change the output size."""
    count = 0
    for genotype in load_space("search_spaces/fcn_bench.yaml").iter_genotypes(include_train=False):
        model = build_model(genotype, num_classes=4).eval()
        with torch.no_grad():
            for height, width in [(32, 32), (37, 53)]:
                assert model(torch.randn(1, 3, height, width)).shape == (1, 4, height, width)
        count += 1
    assert count == 280


@pytest.mark.slow
def test_every_fcn_cpu_architecture_builds_and_keeps_size() -> None:
    """The default search space: none of its 192 networks may fail to build at an odd size."""
    count = 0
    for genotype in load_space("search_spaces/fcn_cpu.yaml").iter_genotypes(include_train=False):
        model = build_model(genotype, num_classes=4).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 37, 53)).shape == (1, 4, 37, 53)
        count += 1
    assert count == 192


@pytest.mark.parametrize("path", shipped_spaces(), ids=lambda p: p.stem)
def test_samples_of_every_shipped_space_train_at_odd_sizes(path) -> None:
    space = load_space(path)
    size = space.min_size
    samples = 2 if space.name == "fcn_full" else 6
    for seed in range(samples):
        model = build_model(space.sample(seed), num_classes=4, in_channels=space.in_channels)
        _check(model, 4, sizes=[(size + 1, size + 3)], in_channels=space.in_channels)


def test_other_input_channels_and_classes() -> None:
    model = build_model(_genotype("unet_concat"), num_classes=2, in_channels=1)
    _check(model, 2, sizes=[(40, 41)], in_channels=1)
    with pytest.raises(ValueError, match=r"expected input N x 1 x H x W, got \(1, 3, 8, 8\)"):
        model(torch.randn(1, 3, 8, 8))


def test_fcn_skips_fuse_the_documented_levels() -> None:
    for skip, levels in [("none", ()), ("fcn16s", (4,)), ("fcn8s", (4, 3))]:
        model = build_model(_genotype(skip, stages=5, width=2), num_classes=3)
        assert model.scores_first
        assert model.decoder.levels == levels
        # Strides 32 / 16 / 8: the single final upsampling covers what fusion did not.
        stride = 2 ** (levels[-1] if levels else 5)
        assert stride == {"none": 32, "fcn16s": 16, "fcn8s": 8}[skip]
    unet = build_model(_genotype("unet_concat", stages=4), num_classes=3)
    assert not unet.scores_first
    assert unet.decoder.levels == (3, 2, 1, 0)
    assert all(unet.decoder.fused)


def test_new_score_layers_start_at_zero() -> None:
    model = build_model(_genotype("fcn8s"), num_classes=3)
    for score in model.decoder.scores:
        assert torch.count_nonzero(score.weight) == 0


def test_transposed_upsampling_starts_bilinear() -> None:
    up = TransposedUp(2, 2, 4)
    x = torch.randn(1, 2, 6, 6)
    out = up(x, [24, 24], torch.empty(0))
    reference = F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False)
    # Identical away from the border, where the deconvolution sees zero padding.
    assert torch.allclose(out[..., 4:-4, 4:-4], reference[..., 4:-4, 4:-4], atol=1e-5)


def test_segnet_unpools_with_the_encoders_own_indices() -> None:
    model = build_model(_genotype("none", "max_unpool", stages=3), num_classes=3).eval()
    assert not model.scores_first
    recorded: dict[str, list[torch.Tensor]] = {"pool": [], "unpool": []}
    for down in model.encoder.downs:
        down.pool.register_forward_hook(lambda m, i, o: recorded["pool"].append(o[1]))
    for up in model.decoder.ups:
        up.unpool.register_forward_hook(lambda m, i, o: recorded["unpool"].append(i[1]))
    with torch.no_grad():
        model(torch.randn(1, 3, 37, 45))
    assert len(recorded["pool"]) == len(recorded["unpool"]) == 3
    # The decoder walks the levels deepest first.
    for pooled, unpooled in zip(reversed(recorded["pool"]), recorded["unpool"], strict=True):
        assert unpooled is pooled


def test_max_unpool_places_values_at_the_max_positions() -> None:
    # A width cap keeps every level at 3 channels, so the unpooling needs no projection.
    model = build_model(_genotype("none", "max_unpool", stages=1, width=3, max_width=3), num_classes=3).eval()
    up = model.decoder.ups[0]
    x = torch.randn(1, 3, 8, 8)
    pooled, indices = model.encoder.downs[0](x)
    restored = up(pooled, [8, 8], indices)
    # Every non-zero of the restored map sits where max-pooling found the maximum.
    mask = torch.zeros_like(x).flatten(2)
    mask.scatter_(2, indices.flatten(2), 1.0)
    assert torch.all(restored.flatten(2)[mask == 0] == 0)


def test_unpooling_equals_max_unpool2d_in_value_and_gradient() -> None:
    # The scatter form exists so tracing and ONNX keep sizes dynamic; it must be MaxUnpool2d exactly.
    x = torch.randn(2, 5, 18, 26)
    pooled, indices = F.max_pool2d(x, 2, stride=2, return_indices=True)
    ours = pooled.clone().requires_grad_()
    theirs = pooled.clone().requires_grad_()
    out = Unpool2x2()(ours, indices)
    reference = torch.nn.MaxUnpool2d(2, stride=2)(theirs, indices)
    assert torch.equal(out, reference)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (reference * weights).sum().backward()
    assert torch.equal(ours.grad, theirs.grad)


def test_models_are_deterministic_given_the_seed() -> None:
    genotype = _genotype("unet_add", "pixel_shuffle", "cbam")
    torch.manual_seed(0)
    a = build_model(genotype, 4)
    torch.manual_seed(0)
    b = build_model(genotype, 4)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
