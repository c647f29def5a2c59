"""Confusion-matrix metrics against a plain NumPy reference and hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nasfcn.metrics import ConfusionMatrix, SegMetrics, metrics_from_confusion

IGNORE = 255


def reference(pred: np.ndarray, target: np.ndarray, num_classes: int) -> dict[str, object]:
    """Straight from the definitions: one boolean mask per class, no bincount."""
    labelled = target != IGNORE
    pred, target = pred[labelled], target[labelled]
    iou, dice, accuracy, weights = [], [], [], []
    for c in range(num_classes):
        is_pred, is_true = pred == c, target == c
        tp = np.logical_and(is_pred, is_true).sum()
        union = np.logical_or(is_pred, is_true).sum()
        iou.append(tp / union if union else math.nan)
        dice.append(2 * tp / (is_pred.sum() + is_true.sum()) if union else math.nan)
        accuracy.append(tp / is_true.sum() if is_true.sum() else math.nan)
        weights.append(is_true.sum() / target.size if target.size else math.nan)

    def mean(values):
        kept = [v for v in values if not math.isnan(v)]
        return sum(kept) / len(kept) if kept else math.nan

    return {
        "miou": mean(iou),
        "mean_dice": mean(dice),
        "mean_class_accuracy": mean(accuracy),
        "pixel_accuracy": (pred == target).mean() if target.size else math.nan,
        "fw_iou": (
            sum(w * v for w, v in zip(weights, iou, strict=True) if w > 0) if target.size else math.nan
        ),
        "per_class_iou": iou,
        "per_class_dice": dice,
        "per_class_accuracy": accuracy,
        "num_pixels": int(target.size),
    }


def assert_matches(result: SegMetrics, expected: dict[str, object]) -> None:
    for name, value in expected.items():
        got = getattr(result, name)
        if isinstance(value, list):
            np.testing.assert_allclose(np.array(got), np.array(value, dtype=float), rtol=1e-9)
        else:
            np.testing.assert_allclose(got, value, rtol=1e-9, err_msg=name)


@st.composite
def segmentations(draw):
    num_classes = draw(st.integers(1, 6))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # Draw labels from a random subset of classes so some are absent from one side or both.
    present_true = rng.choice(num_classes, size=rng.integers(1, num_classes + 1), replace=False)
    present_pred = rng.choice(num_classes, size=rng.integers(1, num_classes + 1), replace=False)
    target = rng.choice(present_true, size=shape)
    pred = rng.choice(present_pred, size=shape)
    target[rng.random(shape) < draw(st.sampled_from([0.0, 0.2, 1.0]))] = IGNORE
    return num_classes, pred, target


@settings(max_examples=150, deadline=None)
@given(segmentations())
def test_matches_the_numpy_reference(case):
    num_classes, pred, target = case
    metric = ConfusionMatrix(num_classes)
    metric.update(torch.from_numpy(pred), torch.from_numpy(target))
    assert_matches(metric.compute(), reference(pred, target, num_classes))


@settings(max_examples=50, deadline=None)
@given(segmentations(), st.integers(1, 3))
def test_batches_accumulate_like_one_update(case, pieces):
    num_classes, pred, target = case
    whole = ConfusionMatrix(num_classes)
    whole.update(torch.from_numpy(pred), torch.from_numpy(target))
    split = ConfusionMatrix(num_classes)
    for p, t in zip(np.array_split(pred, pieces), np.array_split(target, pieces), strict=True):
        if p.size:
            split.update(torch.from_numpy(p), torch.from_numpy(t))
    assert torch.equal(whole.matrix, split.matrix)


def test_hand_computed_case():
    # 2 classes, 6 pixels, one ignored:
    #   target 0 0 1 1 1 255
    #   pred   0 1 1 1 0 1
    # class 0: tp 1, fp 1, fn 1 -> IoU 1/3, Dice 2/4, recall 1/2
    # class 1: tp 2, fp 1, fn 1 -> IoU 2/4, Dice 4/6, recall 2/3
    target = torch.tensor([[0, 0, 1, 1, 1, IGNORE]])
    pred = torch.tensor([[0, 1, 1, 1, 0, 1]])
    metric = ConfusionMatrix(2)
    metric.update(pred, target)
    result = metric.compute()
    assert metric.matrix.tolist() == [[1, 1], [1, 2]]
    assert result.per_class_iou == pytest.approx((1 / 3, 1 / 2))
    assert result.miou == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert result.per_class_dice == pytest.approx((1 / 2, 2 / 3))
    assert result.mean_dice == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result.pixel_accuracy == pytest.approx(3 / 5)
    assert result.mean_class_accuracy == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result.fw_iou == pytest.approx(2 / 5 * 1 / 3 + 3 / 5 * 1 / 2)
    assert result.num_pixels == 5


def test_absent_class_is_nan_and_left_out_of_means():
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 0, 1, 1])
    metric = ConfusionMatrix(3)
    metric.update(pred, target)
    result = metric.compute()
    assert math.isnan(result.per_class_iou[2])
    assert math.isnan(result.per_class_accuracy[2])
    assert math.isnan(result.per_class_dice[2])
    assert result.miou == 1.0
    assert result.mean_dice == 1.0


def test_predicted_but_absent_class_counts_as_zero():
    target = torch.tensor([0, 0, 0, 0])
    pred = torch.tensor([0, 0, 0, 2])
    metric = ConfusionMatrix(3)
    metric.update(pred, target)
    result = metric.compute()
    assert result.per_class_iou[2] == 0.0
    assert math.isnan(result.per_class_accuracy[2])  # recall needs ground truth
    assert result.miou == pytest.approx((3 / 4 + 0) / 2)
    assert result.mean_class_accuracy == pytest.approx(3 / 4)


def test_logits_and_indices_agree():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 7, generator=generator)
    target = torch.randint(0, 4, (2, 5, 7), generator=generator)
    target[:, 0] = IGNORE
    from_logits, from_indices = ConfusionMatrix(4), ConfusionMatrix(4)
    from_logits.update(logits, target)
    from_indices.update(logits.argmax(1).to(torch.uint8), target)
    assert torch.equal(from_logits.matrix, from_indices.matrix)
    assert from_logits.compute() == from_indices.compute()


def test_everything_ignored_gives_nan_and_json_nulls():
    metric = ConfusionMatrix(3)
    metric.update(torch.zeros(2, 2, dtype=torch.long), torch.full((2, 2), IGNORE))
    result = metric.compute()
    assert result.num_pixels == 0
    assert math.isnan(result.miou)
    assert math.isnan(result.pixel_accuracy)
    data = result.as_dict()
    assert data["miou"] is None
    assert data["per_class_iou"] == [None, None, None]
    json.dumps(data, allow_nan=False)


def test_as_dict_is_json_safe():
    metric = ConfusionMatrix(3)
    metric.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
    data = metric.compute().as_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["per_class_iou"][2] is None
    assert data["num_pixels"] == 3


def test_reset_and_empty_matrix():
    metric = ConfusionMatrix(2)
    assert metric.matrix.sum() == 0
    assert math.isnan(metric.compute().miou)
    metric.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    metric.reset()
    assert metric.matrix.sum() == 0


def test_matrix_is_a_copy():
    metric = ConfusionMatrix(2)
    metric.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    metric.matrix.zero_()
    assert metric.matrix.sum() == 2


@pytest.mark.parametrize(
    ("pred", "target", "error", "fragment"),
    [
        (torch.tensor([0, 3]), torch.tensor([0, 1]), ValueError, "0..2"),
        (torch.tensor([0, 1]), torch.tensor([0, 7]), ValueError, "0..2"),
        (torch.tensor([0, -1]), torch.tensor([0, 1]), ValueError, "0..2"),
        (torch.tensor([0, 1, 1]), torch.tensor([0, 1]), ValueError, "does not match"),
        (torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), TypeError, "logits"),
        (torch.zeros(1, 2, 4), torch.tensor([[0, 1, 1, 0]]), ValueError, "channels"),
    ],
)
def test_bad_inputs_explain_themselves(pred, target, error, fragment):
    with pytest.raises(error, match=fragment):
        ConfusionMatrix(3).update(pred, target)


def test_ignored_pixels_may_hold_any_prediction():
    metric = ConfusionMatrix(2)
    metric.update(torch.tensor([0, 9]), torch.tensor([0, IGNORE]))
    assert metric.compute().pixel_accuracy == 1.0


def test_metrics_from_confusion_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        metrics_from_confusion(torch.zeros(2, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_matrix_stays_on_the_inputs_device():
    metric = ConfusionMatrix(3)
    metric.update(torch.tensor([0, 1, 2], device="cuda"), torch.tensor([0, 1, 1], device="cuda"))
    assert metric.matrix.device.type == "cuda"
    assert metric.compute().pixel_accuracy == pytest.approx(2 / 3)
