"""Predict: palette PNG masks at every image's own size, overlays on request."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from nasfcn.bundle import (
    GENOTYPE_FILE,
    METRICS_FILE,
    PREPROCESS_FILE,
    WEIGHTS_FILE,
    FinetuneRecipe,
    Preprocess,
    load_bundle,
    write_bundle,
)
from nasfcn.cli import app
from nasfcn.genotype import EncoderGene, Genotype
from nasfcn.predict import PredictError, predict_files, predict_mask, to_input
from nasfcn.train import load_checkpoint

runner = CliRunner()


@pytest.fixture(scope="module")
def bundle(shapes_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, info = load_checkpoint(shapes_checkpoint)
    folder = tmp_path_factory.mktemp("predict") / "bundle"
    write_bundle(folder, model, Preprocess.from_dict(info["preprocess"]), {}, FinetuneRecipe(), "")
    return folder


def _images(folder: Path) -> list[Path]:
    """Any size, any mode: odd RGB PNG, wide JPEG, grey and RGBA."""
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    made = []
    for name, size, mode in [
        ("odd.png", (53, 37), "RGB"),
        ("wide.jpg", (160, 48), "RGB"),
        ("grey.png", (20, 31), "L"),
        ("alpha.png", (64, 64), "RGBA"),
    ]:
        channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        path = folder / name
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(path)
        made.append(path)
    return made


@pytest.mark.parametrize("native", [False, True], ids=["trained-size", "native"])
def test_masks_are_palette_pngs_at_each_images_own_size(bundle: Path, tmp_path: Path, native: bool) -> None:
    images = _images(tmp_path / "in")
    results = predict_files(bundle, images, tmp_path / "out", overlay=True, native=native)
    _, info = load_bundle(bundle)
    palette = [v for colour in info.preprocess.palette for v in colour]
    for path, result in zip(images, results, strict=True):
        with Image.open(path) as original, Image.open(result.mask) as mask:
            assert result.mask == tmp_path / "out" / f"{path.stem}.png"
            assert mask.mode == "P"
            assert mask.size == original.size == result.size
            assert mask.getpalette()[: len(palette)] == palette
            assert np.asarray(mask).max() < info.num_classes
        with Image.open(result.overlay) as overlay:
            assert overlay.mode == "RGB"
            assert overlay.size == result.size
        assert sum(result.class_fractions.values()) == pytest.approx(1.0)


def test_masks_are_the_networks_argmax(bundle: Path, tmp_path: Path) -> None:
    model, info = load_bundle(bundle)
    image = Image.open(_images(tmp_path)[0]).convert("RGB")
    width, height = image.size
    # Default: at the trained size, logits resized back to the image (bilinear), then argmax.
    x = to_input(image, info.preprocess, info.preprocess.image_size)
    assert tuple(x.shape) == (1, 3, *info.preprocess.image_size)
    with torch.no_grad():
        logits = F.interpolate(model(x), size=(height, width), mode="bilinear", align_corners=False)
        native = model(to_input(image, info.preprocess, None))
    assert np.array_equal(predict_mask(model, info.preprocess, image), logits.argmax(1)[0].numpy())
    assert np.array_equal(
        predict_mask(model, info.preprocess, image, native=True), native.argmax(1)[0].numpy()
    )


def test_inputs_are_normalized_as_in_training(bundle: Path) -> None:
    _, info = load_bundle(bundle)
    flat = Image.new("RGB", (5, 4), (255, 0, 128))
    x = to_input(flat, info.preprocess, None)
    expected = [
        (v / 255 - m) / s
        for v, m, s in zip((255, 0, 128), info.preprocess.mean, info.preprocess.std, strict=True)
    ]
    assert x[0, :, 0, 0].tolist() == pytest.approx(expected, abs=1e-6)  # float32


def test_bad_inputs_name_the_file(bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    with pytest.raises(PredictError, match=r"broken\.png: cannot read the image"):
        predict_files(bundle, [broken], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written before every image opened
    with pytest.raises(PredictError, match=r"missing\.png: no such image"):
        predict_files(bundle, [tmp_path / "missing.png"], tmp_path / "out")
    first, second = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    with pytest.raises(PredictError, match=r"would both write x\.png"):
        predict_files(bundle, [first, second], tmp_path / "out")


def test_cli_predicts_and_reports(bundle: Path, tmp_path: Path) -> None:
    images = [str(p) for p in _images(tmp_path / "in")[:2]]
    out = tmp_path / "masks"
    result = runner.invoke(app, ["predict", "--bundle", str(bundle), *images, "--out", str(out), "--overlay"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "odd.png",
        "odd_overlay.png",
        "wide.png",
        "wide_overlay.png",
    ]
    assert "(53x37)" in result.stdout
    broken = runner.invoke(app, ["predict", "--bundle", str(tmp_path / "nope"), *images, "--out", str(out)])
    assert broken.exit_code == 2
    assert "no such bundle" in broken.stderr


def _bombed(bundle: Path, folder: Path, case: str) -> Path:
    """A copy of ``bundle`` made hostile in one way."""
    copy = Path(shutil.copytree(bundle, folder / case))
    if case == "huge-input":
        pre = json.loads((copy / PREPROCESS_FILE).read_text())
        (copy / PREPROCESS_FILE).write_text(json.dumps({**pre, "image_size": [60000, 60000]}))
    elif case == "giant-genotype":  # billions of parameters, with weights that claim to match
        giant = Genotype(encoder=EncoderGene(stages=2, width=4096), skip="unet_add")
        (copy / GENOTYPE_FILE).write_text(json.dumps(giant.to_dict()))
        state = load_file(str(copy / WEIGHTS_FILE))
        with safe_open(str(copy / WEIGHTS_FILE), "pt") as handle:
            metadata = handle.metadata()
        save_file(state, str(copy / WEIGHTS_FILE), metadata={**metadata, "arch_id": giant.arch_id})
    else:  # a zip whose 20 MB metrics.json deflates to 20 KB
        with zipfile.ZipFile(copy.with_suffix(".zip"), "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member in copy.iterdir():
                if member.name != METRICS_FILE:
                    archive.write(member, member.name)
            archive.writestr(METRICS_FILE, b" " * (20 * 2**20))
        return copy.with_suffix(".zip")
    return copy


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("huge-input", "image_size must be [height, width], each 1..4096, got [60000, 60000]"),
        ("giant-genotype", "more than the 250,000,000 a bundle may hold (encoder.width 4096)"),
        ("zip-bomb", "metrics.json: larger than the 16,777,216 bytes this file may hold"),
    ],
)
def test_cli_refuses_a_bundle_bomb_in_one_line(
    bundle: Path, tmp_path: Path, case: str, message: str, cli_under_memory_limit
) -> None:
    """Each of these once took gigabytes (MemoryError, RuntimeError) or was read whole."""
    image = _images(tmp_path / "in")[0]
    bomb = _bombed(bundle, tmp_path, case)
    result = cli_under_memory_limit(["predict", "--bundle", str(bomb), str(image), "--out", str(tmp_path)], 3)
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert str(bomb) in result.stderr


def _message(stderr: str) -> list[str]:
    """What the CLI printed, as one message (the console wraps lines at 200 characters)."""
    return [" ".join(stderr.split())]


def test_a_decompression_bomb_is_refused_in_one_line(bundle: Path, tmp_path: Path, write_png_bomb) -> None:
    bomb = tmp_path / "bomb.png"
    write_png_bomb(bomb, 20000, 20000)
    good = _images(tmp_path / "in")[0]
    with pytest.raises(PredictError, match=r"bomb\.png: the image is 400,000,000 pixels, more than the 89,"):
        predict_files(bundle, [good, bomb], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = runner.invoke(app, ["predict", "--bundle", str(bundle), str(bomb), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert _message(result.stderr) == [
        f"{bomb}: the image is 400,000,000 pixels, more than the 89,478,485 an image may have "
        "(PIL.Image.MAX_IMAGE_PIXELS); scale it down"
    ]


def test_cli_names_a_bundle_file_that_does_not_match_its_manifest(bundle: Path, tmp_path: Path) -> None:
    changed = Path(shutil.copytree(bundle, tmp_path / "changed"))
    (changed / "model.onnx").write_bytes(b"an ONNX file of another network")  # not in the manifest
    image = str(_images(tmp_path / "in")[0])
    result = runner.invoke(app, ["predict", "--bundle", str(changed), image, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert _message(result.stderr) == [
        f"{changed}: model.onnx is not listed in manifest.json; restore the bundle's original files or "
        "export it again (nasfcn export ... --out PATH)"
    ]


@pytest.mark.slow
def test_cli_predicts_with_a_bundle_from_before_manifests_and_says_so(
    bundle: Path, tmp_path: Path, cli_under_memory_limit
) -> None:
    old = Path(shutil.copytree(bundle, tmp_path / "old"))
    (old / "manifest.json").unlink()
    image = str(_images(tmp_path / "in")[0])
    result = cli_under_memory_limit(["predict", "--bundle", str(old), image, "--out", str(tmp_path / "o")], 3)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"warning: {old}: no manifest.json (exported before nasfcn wrote one), so model.onnx, "
        "model.torchscript.pt and the other files are not checked against the weights; export it "
        "again (nasfcn export ... --out PATH) to add one"
    ]
    assert (tmp_path / "o" / "odd.png").is_file()
