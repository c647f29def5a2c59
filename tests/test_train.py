"""The trainer: deterministic, reports every epoch, stops on request, keeps the best."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from nasfcn.data import DataConfig, load_dataset
from nasfcn.genotype import EncoderGene, Genotype, TrainGene
from nasfcn.recipe import WARMUP_SHARE
from nasfcn.train import (
    TrainingDiverged,
    TrainRecipe,
    evaluate,
    fit,
    load_checkpoint,
    lr_factor,
    select_device,
)

SMALL = DataConfig(image_size=32, train_samples=32, val_samples=16, seed=1)


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes", SMALL)


def _genotype(skip: str = "unet_add", **train) -> Genotype:
    return Genotype(
        encoder=EncoderGene(stages=2, width=4),
        skip=skip,
        upsample="bilinear",
        train=TrainGene(**train),
    )


RECIPE = TrainRecipe(epochs=2, batch_size=8, lr=1e-2)


def test_same_seed_gives_identical_runs(shapes) -> None:
    a = fit(_genotype(), shapes, RECIPE, device="cpu")
    b = fit(_genotype(), shapes, RECIPE, device="cpu")
    assert [e.train_loss for e in a.history] == [e.train_loss for e in b.history]
    assert [e.val.as_dict() for e in a.history] == [e.val.as_dict() for e in b.history]
    c = fit(_genotype(), shapes, TrainRecipe(epochs=2, batch_size=8, lr=1e-2, seed=1), device="cpu")
    assert [e.train_loss for e in c.history] != [e.train_loss for e in a.history]


def test_report_receives_every_epoch_and_can_stop(shapes) -> None:
    seen = []

    def report(epoch: int, metrics: dict) -> bool:
        seen.append((epoch, metrics))
        return epoch == 2

    result = fit(_genotype(), shapes, TrainRecipe(epochs=4, batch_size=8), device="cpu", report=report)
    assert [epoch for epoch, _ in seen] == [1, 2]
    assert result.stopped_early
    assert len(result.history) == 2
    metrics = seen[0][1]
    for key in ("train_loss", "val_miou", "val_pixel_accuracy", "val_per_class_iou", "lr", "seconds"):
        assert key in metrics
    assert len(metrics["val_per_class_iou"]) == shapes.num_classes


def test_best_checkpoint_reloads_to_the_best_metrics(shapes, tmp_path) -> None:
    result = fit(
        _genotype("fcn16s"), shapes, TrainRecipe(epochs=3, batch_size=8), device="cpu", out_dir=tmp_path
    )
    assert result.checkpoint == tmp_path
    assert result.best.val.miou == max(e.val.miou for e in result.history)
    model, info = load_checkpoint(tmp_path)
    assert info["arch_id"] == result.genotype.arch_id
    assert info["epoch"]["epoch"] == result.best_epoch
    loader = torch.utils.data.DataLoader(shapes.val, batch_size=32)
    again = evaluate(model, loader, shapes.num_classes)
    assert again.as_dict() == result.best.val.as_dict()


def test_genotype_training_knobs_override_the_recipe(shapes) -> None:
    result = fit(_genotype(lr=0.05, batch_size=4, optimizer="sgd"), shapes, RECIPE, device="cpu")
    assert result.recipe.lr == 0.05
    assert result.recipe.batch_size == 4
    assert result.recipe.optimizer == "sgd"


def test_divergence_raises_a_clear_error(shapes) -> None:
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        fit(_genotype(lr=1e12, optimizer="sgd"), shapes, RECIPE, device="cpu")


def test_a_recipe_that_sets_no_warm_up_warms_up_for_its_default_share() -> None:
    factors = [lr_factor(step, 200, 10, TrainRecipe(epochs=20)) for step in range(200)]
    warmup_steps = round(20 * WARMUP_SHARE * 10)
    assert factors[0] == pytest.approx(1 / warmup_steps)
    assert factors[warmup_steps - 1] == pytest.approx(1.0)
    assert all(a < b for a, b in itertools.pairwise(factors[:warmup_steps]))
    assert lr_factor(0, 200, 10, TrainRecipe(epochs=20, warmup_epochs=0)) == pytest.approx(1.0)


def test_schedules_warm_up_then_decay() -> None:
    recipe = TrainRecipe(epochs=10, warmup_epochs=1, schedule="cosine")
    factors = [lr_factor(step, 100, 10, recipe) for step in range(100)]
    assert factors[0] == pytest.approx(0.1)
    assert factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))
    assert factors[-1] < 0.01
    poly = TrainRecipe(schedule="poly", warmup_epochs=0)
    assert lr_factor(50, 100, 10, poly) == pytest.approx(0.5**0.9)


@pytest.mark.parametrize(
    ("field", "value"), [("epochs", 0), ("lr", 0.0), ("optimizer", "adam"), ("schedule", "step")]
)
def test_bad_recipes_are_refused(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        TrainRecipe(**{field: value})


def test_device_selection() -> None:
    assert select_device("cpu").type == "cpu"
    assert select_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")


@pytest.mark.slow
def test_skips_matter_on_shapes() -> None:
    """A U-Net-like net clearly beats an FCN-32s-like one on ``shapes`` after the same training.

    Floors, never times. At 32x32 a 4-stage encoder ends at 2x2, so FCN-32s has little to
    upsample from: measured 0.448 against 0.213 (about 40 s on 2 CPU cores; at 64x64 and 20
    epochs the same contrast took three minutes).
    """
    data = load_dataset("shapes", DataConfig(image_size=32, train_samples=512, val_samples=128))
    recipe = TrainRecipe(epochs=16, batch_size=16, lr=3e-3)
    encoder = EncoderGene(stages=4, width=16)
    unet = fit(Genotype(encoder=encoder, skip="unet_concat"), data, recipe, device="cpu")
    fcn32 = fit(Genotype(encoder=encoder, skip="none"), data, recipe, device="cpu")
    assert unet.best.val.miou >= 0.4
    assert unet.best.val.miou > fcn32.best.val.miou + 0.1
    assert math.isfinite(fcn32.best.val.miou)


@pytest.mark.gpu
def test_fit_on_cuda_uses_mixed_precision_unless_turned_off(shapes, tmp_path) -> None:
    from dataclasses import replace

    mixed = fit(_genotype(), shapes, RECIPE, device="cuda", out_dir=tmp_path / "amp")
    full = fit(_genotype(), shapes, replace(RECIPE, amp=False, channels_last=False), device="cuda")
    assert mixed.device.startswith("cuda")
    assert all(math.isfinite(e.train_loss) for e in (*mixed.history, *full.history))
    # float16 autocast changes the arithmetic: the losses cannot match float32's exactly
    assert [e.train_loss for e in mixed.history] != [e.train_loss for e in full.history]
    model, info = load_checkpoint(tmp_path / "amp")  # a CUDA-trained checkpoint loads on the CPU
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert info["recipe"]["amp"] is True


def test_a_given_model_trains_only_its_unfrozen_parameters(shapes) -> None:
    from nasfcn.model import build_model

    torch.manual_seed(0)
    model = build_model(_genotype(), shapes.num_classes)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith("head."))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(_genotype(), shapes, TrainRecipe(epochs=1, batch_size=8), device="cpu", model=model)
    after = model.state_dict()
    frozen = [k for k in after if not k.startswith("head.")]
    assert any("running_mean" in k for k in frozen)  # frozen batch norms keep their statistics
    assert all(torch.equal(after[k], before[k]) for k in frozen)
    assert not torch.equal(after["head.classifier.weight"], before["head.classifier.weight"])
    with pytest.raises(ValueError, match="the model predicts 3 classes but shapes has 4"):
        fit(_genotype(), shapes, RECIPE, device="cpu", model=build_model(_genotype(), 3))


def test_reduced_fidelity_trains_the_first_epochs_small_then_full_with_the_same_weights(shapes) -> None:
    from nasfcn.recipe import Fidelity

    seen: list[dict] = []
    recipe = TrainRecipe(epochs=3, batch_size=8, lr=1e-2, schedule="poly", poly_power=1.0, warmup_epochs=0)
    fidelity = Fidelity(resolution=0.5, subset=0.5, low_epochs=2)
    result = fit(
        _genotype(), shapes, recipe, device="cpu", report=lambda e, m: seen.append(m), fidelity=fidelity
    )
    assert len(result.history) == 3
    full, half = len(shapes.train), len(shapes.train) // 2
    steps = [n // 8 for n in (half, half, full)]  # two reduced epochs on half the images, then all
    # the schedule spans the run's real steps: the poly decay reaches its end at the last step
    assert result.final.lr == pytest.approx(recipe.lr * (1 - (sum(steps) - 1) / sum(steps)))
    assert all(m["val_miou"] is not None for m in seen)
    view = shapes.train.reduced((16, 16), 0.5, shapes.config.seed)
    assert len(view) == half
    image, mask = view[0]
    assert tuple(image.shape[-2:]) == (16, 16)
    assert tuple(mask.shape) == (16, 16)
    again = shapes.train.reduced((16, 16), 0.5, shapes.config.seed)
    assert torch.equal(view.images, again.images)  # the same images for every trial of a seed
