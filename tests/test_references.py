"""The classic designs: they build, keep any input size, and are what their names say."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.model import build_model
from nasfcn.model.attention import CBAM
from nasfcn.model.skip import SKIPS
from nasfcn.model.upsample import MaxUnpoolUp, TransposedUp, bilinear_kernel
from nasfcn.references import REFERENCES, for_space, reference, width_for_space
from nasfcn.registry import UnknownChoiceError
from nasfcn.space import load_space


@pytest.mark.parametrize("name", REFERENCES.names())
def test_every_reference_builds_and_keeps_odd_sizes(name: str) -> None:
    model = build_model(reference(name, width=4), num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 37, 53))
    assert out.shape == (2, 3, 37, 53)


def test_the_fcns_fuse_scores_at_strides_32_16_and_8() -> None:
    fused = {}
    for name in ("fcn32s", "fcn16s", "fcn8s"):
        genotype = reference(name)
        stages = genotype.encoder.stages
        levels = SKIPS.get(genotype.skip).levels(stages)
        fused[name] = sorted([2**stages, *(2**level for level in levels)], reverse=True)
        assert build_model(genotype, 5).scores_first  # FCNs fuse class scores, not features
    assert fused == {"fcn32s": [32], "fcn16s": [32, 16], "fcn8s": [32, 16, 8]}
    assert reference("fcn8s").encoder.blocks_per_stage == (2, 2, 3, 3, 3)  # VGG-16


def test_fcn_upsampling_starts_as_bilinear_interpolation() -> None:
    model = build_model(reference("fcn32s", width=4), num_classes=3)
    deconvs = [m.deconv for m in model.modules() if isinstance(m, TransposedUp)]
    assert deconvs
    for deconv in deconvs:
        if deconv.in_channels == deconv.out_channels:
            expected = bilinear_kernel(deconv.in_channels, deconv.kernel_size[0])
            assert torch.equal(deconv.weight, expected)


def test_segnet_unpools_with_the_encoders_pooling_indices() -> None:
    genotype = reference("segnet", width=4)
    assert genotype.upsample == "max_unpool"
    assert genotype.encoder.downsample == "maxpool"
    model = build_model(genotype, num_classes=3).eval()
    assert sum(isinstance(m, MaxUnpoolUp) for m in model.modules()) == genotype.encoder.stages
    _, indices, _ = model.encoder(torch.randn(1, 3, 64, 64))
    assert len(indices) == genotype.encoder.stages
    assert all(i is not None and i.dtype == torch.int64 for i in indices)


def test_unet_concatenates_features_and_the_cbam_variant_adds_attention() -> None:
    unet, cbam = reference("unet"), reference("unet_cbam")
    assert unet.skip == "unet_concat"
    assert SKIPS.get("unet_concat").levels(4) == (3, 2, 1, 0)
    assert not any(isinstance(m, CBAM) for m in build_model(unet, 3).modules())
    decoder = build_model(cbam, 3).decoder
    assert sum(isinstance(m, CBAM) for m in decoder.modules()) >= cbam.encoder.stages
    assert unet.arch_id != cbam.arch_id


def test_width_scales_the_size() -> None:
    small = sum(p.numel() for p in build_model(reference("unet", 8), 3).parameters())
    large = sum(p.numel() for p in build_model(reference("unet", 16), 3).parameters())
    assert 3.5 < large / small < 4.5  # convolutions grow with width squared


def test_references_take_their_width_from_a_space() -> None:
    space = load_space("search_spaces/fcn_tiny.yaml")  # widths 8, 12, 16
    assert width_for_space(space) == 12
    refs = for_space(space)
    assert set(refs) == set(REFERENCES.names())
    assert all(g.encoder.width == 12 for g in refs.values())


def test_unknown_reference_lists_the_known_ones() -> None:
    with pytest.raises(UnknownChoiceError, match="fcn8s"):
        reference("fcn4s")
    with pytest.raises(ValueError, match="width"):
        reference("unet", width=0)


def test_cli_lists_references_and_writes_genotypes(tmp_path) -> None:
    result = CliRunner().invoke(
        app, ["spaces", "refs", "--width", "4", "--size", "32", "--classes", "3", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    for name in REFERENCES.names():
        assert name in result.output
        written = json.loads((tmp_path / f"{name}.json").read_text())
        assert written == json.loads(reference(name, 4).to_json())
    both = CliRunner().invoke(
        app, ["spaces", "refs", "--width", "4", "--space", "search_spaces/fcn_tiny.yaml"]
    )
    assert both.exit_code == 2
