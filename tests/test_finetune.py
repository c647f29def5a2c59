"""Staged fine-tuning: what each stage trains, new heads for new classes, and a working bundle."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from nasfcn.bundle import STAGES, FinetuneRecipe, Preprocess, StageRecipe, load_bundle, write_bundle
from nasfcn.cli import app
from nasfcn.data import DataConfig, generate_shapes, load_dataset
from nasfcn.finetune import STAGE_PARTS, FinetuneError, adapt_classes, finetune, finetune_data
from nasfcn.genotype import EncoderGene, Genotype
from nasfcn.model import build_model
from nasfcn.train import evaluate, load_checkpoint

runner = CliRunner()
#: The new task: shapes regrouped into round and angular ones (3 classes instead of 4).
NEW_CLASSES = ("background", "round", "angular")
REGROUP = np.array([0, 1, 2, 2], dtype=np.uint8)  # background, circle, square, triangle


@pytest.fixture(scope="module")
def folder_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``folder:`` dataset (images/ + masks/ + classes.txt) with a different number of classes."""
    root = tmp_path_factory.mktemp("round-or-angular")
    images, masks = generate_shapes(7, "train", 60, (32, 32))
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for index, (image, mask) in enumerate(zip(images.numpy(), masks.numpy(), strict=True)):
        Image.fromarray(image.transpose(1, 2, 0)).save(root / "images" / f"{index:03d}.png")
        Image.fromarray(REGROUP[mask]).save(root / "masks" / f"{index:03d}.png")
    (root / "classes.txt").write_text("\n".join(NEW_CLASSES) + "\n")
    return root


def _pretrained(shapes_checkpoint: Path):
    model, info = load_checkpoint(shapes_checkpoint)
    return model, Preprocess.from_dict(info["preprocess"])


def _only(stage: str, epochs: int = 1) -> FinetuneRecipe:
    stages = {name: StageRecipe(epochs if name == stage else 0, 1e-2) for name in STAGES}
    return FinetuneRecipe(**stages, batch_size=8)


def test_every_recipe_stage_has_its_parts() -> None:
    assert tuple(STAGE_PARTS) == STAGES


def test_stage_one_trains_only_the_new_head(shapes_checkpoint: Path, folder_data: Path) -> None:
    model, preprocess = _pretrained(shapes_checkpoint)
    recipe = _only("head")
    data = finetune_data(f"folder:{folder_data}", preprocess, recipe)
    assert data.class_names == NEW_CLASSES
    before = {k: v.clone() for k, v in model.state_dict().items()}
    initial, _ = adapt_classes(model, 3, recipe.seed)  # the new head as it starts
    result = finetune(model, data, recipe, device="cpu")
    after = result.model.state_dict()
    assert result.replaced == ("head.classifier.weight", "head.classifier.bias")
    assert [(s.name, s.epochs) for s in result.stages] == [("head", 1)]
    frozen = [key for key in after if not key.startswith("head.")]
    assert frozen  # encoder and decoder: weights and batch-norm statistics, bit for bit
    for key in frozen:
        assert torch.equal(after[key], before[key]), key
    for key in result.replaced:
        assert not torch.equal(after[key], initial.state_dict()[key]), key
    assert result.stages[0].trainable_params == sum(after[k].numel() for k in result.replaced)
    assert all(p.requires_grad for p in result.model.parameters())  # nothing stays frozen


def test_stage_two_adds_the_decoder_but_not_the_encoder(shapes_checkpoint: Path, folder_data: Path) -> None:
    model, preprocess = _pretrained(shapes_checkpoint)
    recipe = _only("decoder")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = finetune(model, finetune_data(f"folder:{folder_data}", preprocess, recipe), recipe, device="cpu")
    after = result.model.state_dict()
    for key, value in after.items():
        if key.startswith("encoder."):
            assert torch.equal(value, before[key]), key
    decoder = [k for k in after if k.startswith("decoder.") and k.endswith(".weight")]
    assert decoder
    assert all(not torch.equal(after[k], before[k]) for k in decoder)


def test_a_new_number_of_classes_replaces_exactly_the_class_layers() -> None:
    # FCN-8s with transposed convolutions: score layers and class-score upsamplers depend on it too.
    genotype = Genotype(encoder=EncoderGene(stages=3, width=4), skip="fcn8s", upsample="transposed")
    model = build_model(genotype, 4)
    same, none = adapt_classes(model, 4)
    assert same is model
    assert none == ()
    adapted, replaced = adapt_classes(model, 6)
    assert adapted.num_classes == 6
    assert set(replaced) == {
        "head.classifier.weight",
        "head.classifier.bias",
        "decoder.scores.0.weight",
        "decoder.scores.0.bias",
        "decoder.scores.1.weight",
        "decoder.scores.1.bias",
        "decoder.ups.0.deconv.weight",
        "decoder.ups.1.deconv.weight",
        "decoder.final.deconv.weight",
    }
    old = model.state_dict()
    for key, value in adapted.state_dict().items():
        if key not in replaced:
            assert torch.equal(value, old[key]), key


def test_a_later_stage_that_does_worse_is_undone(shapes_checkpoint: Path) -> None:
    """AdamW at lr 10 on the whole model wrecks what the decoder stage learned (deterministic on
    CPU: val mIoU 0.15 after the decoder stage, 0.05 after the full one): the decoder stage's
    weights are the ones kept, and the result says so."""
    model, preprocess = _pretrained(shapes_checkpoint)
    config = DataConfig(image_size=32, train_samples=64, val_samples=16, seed=1)
    data = load_dataset("shapes", replace(config, mean=preprocess.mean, std=preprocess.std))
    recipe = FinetuneRecipe(
        head=StageRecipe(0, 1e-2), decoder=StageRecipe(3, 1e-2), full=StageRecipe(1, 10.0), batch_size=8
    )

    result = finetune(model, data, recipe, device="cpu")

    decoder, full = result.stages
    assert full.val.miou < decoder.val.miou
    assert result.best_stage == "decoder"
    assert result.best is decoder
    kept = evaluate(result.model, torch.utils.data.DataLoader(data.val, batch_size=32), data.num_classes)
    assert kept.miou == pytest.approx(decoder.val.miou)


def test_classes_can_be_raised_but_not_lowered(shapes_checkpoint: Path, folder_data: Path) -> None:
    _, preprocess = _pretrained(shapes_checkpoint)
    data = finetune_data(f"folder:{folder_data}", preprocess, FinetuneRecipe(), classes=5)
    assert data.class_names == (*NEW_CLASSES, "class_3", "class_4")
    assert len(data.palette) == 5
    assert data.mean == preprocess.mean  # normalized as the network was trained
    with pytest.raises(FinetuneError, match=r"--classes 2, but folder:.* has 3 classes"):
        finetune_data(f"folder:{folder_data}", preprocess, FinetuneRecipe(), classes=2)


@pytest.fixture
def bundle(shapes_checkpoint: Path, tmp_path: Path) -> Path:
    model, preprocess = _pretrained(shapes_checkpoint)
    folder = tmp_path / "shapes_bundle"
    write_bundle(folder, model, preprocess, {"val": {"miou": 0.3}}, FinetuneRecipe(), "")
    return folder


@pytest.mark.slow
def test_finetuning_on_new_classes_gives_a_better_working_bundle(
    bundle: Path, folder_data: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "quick.yaml"
    recipe.write_text(
        FinetuneRecipe(
            head=StageRecipe(3, 1e-2), decoder=StageRecipe(2, 3e-3), full=StageRecipe(2, 1e-3)
        ).to_yaml()
    )
    out = tmp_path / "round_or_angular"
    args = ["finetune", "--bundle", str(bundle), "--data", f"folder:{folder_data}"]
    result = runner.invoke(app, [*args, "--recipe", str(recipe), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for text in ("stage head: 3 epochs", "stage decoder: 2 epochs", "stage full: 2 epochs", "before"):
        assert text in result.stdout
    assert "new for 3 classes: head.classifier.weight, head.classifier.bias" in result.stdout

    model, info = load_bundle(out)  # its manifest checked: a BundleWarning here would fail the test
    assert "manifest.json" in info.files
    assert info.preprocess.class_names == NEW_CLASSES
    assert info.preprocess.dataset == f"folder:{folder_data}"
    assert info.recipe == FinetuneRecipe.from_yaml(recipe.read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    tuned = metrics["finetune"]
    assert [s["name"] for s in tuned["stages"]] == ["head", "decoder", "full"]
    assert all(len(s["history"]) == s["epochs"] and s["val"]["miou"] is not None for s in tuned["stages"])
    assert metrics["source"]["kind"] == "finetune"
    best = max(tuned["stages"], key=lambda s: s["val"]["miou"])
    assert tuned["best_stage"] == best["name"]
    assert metrics["val"]["miou"] == best["val"]["miou"]
    assert metrics["val"]["stage"] == best["name"]
    assert f"kept stage {best['name']} (val mIoU {best['val']['miou']:.3f}, the best)" in result.stdout
    assert metrics["val"]["miou"] > tuned["baseline"]["miou"]
    assert list(metrics["val"]["per_class_iou"]) == list(NEW_CLASSES)
    assert metrics["cost"]["device"] == "cpu"
    assert all(metrics["export"][f]["max_abs_diff"] <= 1e-4 for f in ("onnx", "torchscript"))

    # The bundle reproduces the reported val mIoU on the new data.
    data = finetune_data(f"folder:{folder_data}", info.preprocess, info.recipe)
    loader = torch.utils.data.DataLoader(data.val, batch_size=32)
    assert evaluate(model, loader, 3).miou == pytest.approx(metrics["val"]["miou"])


def test_cli_refuses_bad_inputs_in_one_line(bundle: Path, folder_data: Path, tmp_path: Path) -> None:
    base = [
        "finetune",
        "--bundle",
        str(bundle),
        "--data",
        f"folder:{folder_data}",
        "--out",
        str(tmp_path / "o"),
    ]
    fewer = runner.invoke(app, [*base, "--classes", "2"])
    assert fewer.exit_code == 2
    assert "give --classes 3 or more" in fewer.stderr
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("stages: {head: {epochs: 1, lr: -1}}\n")
    bad = runner.invoke(app, [*base, "--recipe", str(recipe)])
    assert bad.exit_code == 2
    assert f"{recipe}: stages.head.lr must be a number > 0, got -1" in bad.stderr
    nodata = runner.invoke(app, [*base[:3], "--data", f"folder:{tmp_path / 'none'}", "--out", "x"])
    assert nodata.exit_code == 2
    assert "no such folder" in nodata.stderr
    assert "Traceback" not in fewer.output + bad.output + nodata.output


@pytest.mark.slow
def test_cli_refuses_a_huge_image_size_in_one_line(
    bundle: Path, folder_data: Path, tmp_path: Path, cli_under_memory_limit
) -> None:
    """60000x60000 inputs once reached the data loader (a MemoryError traceback)."""
    base = [
        "finetune",
        "--bundle",
        str(bundle),
        "--data",
        f"folder:{folder_data}",
        "--out",
        str(tmp_path / "o"),
    ]
    recipe = tmp_path / "huge.yaml"
    recipe.write_text("image_size: [60000, 60000]\n")
    by_recipe = cli_under_memory_limit([*base, "--recipe", str(recipe), "--device", "cpu"], 3)
    preprocess = bundle / "preprocess.json"
    preprocess.write_text(json.dumps({**json.loads(preprocess.read_text()), "image_size": [60000, 60000]}))
    by_bundle = cli_under_memory_limit([*base, "--device", "cpu"], 3)
    for result, message in (
        (by_recipe, f"{recipe}: image_size must be at most 4096 a side, got [60000, 60000]"),
        (by_bundle, f"{preprocess}: image_size must be [height, width], each 1..4096, got [60000, 60000]"),
    ):
        assert result.returncode == 2, result.stderr[-3000:]
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert message in result.stderr
    assert not (tmp_path / "o").exists()


def test_cli_refuses_a_bundle_that_does_not_match_its_manifest(
    bundle: Path, folder_data: Path, tmp_path: Path
) -> None:
    (bundle / "metrics.json").write_text(json.dumps({"val": {"miou": 0.99}}))  # a better-looking model
    args = [
        "finetune",
        "--bundle",
        str(bundle),
        "--data",
        f"folder:{folder_data}",
        "--out",
        str(tmp_path / "o"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())  # one message, however the console wraps it
    assert message.startswith(f"{bundle}: metrics.json does not match manifest.json (changed or replaced")
    assert message.endswith("export it again (nasfcn export ... --out PATH)")
    assert not (tmp_path / "o").exists()
