"""grad_norm, snip, grasp and fisher against their formulas written out on a two-layer net."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from nasfcn.proxies import compute


def _hand(net, batch):
    """Per pixel p: h = relu(W1 x), z = W2 h; the loss is the mean cross-entropy over labelled pixels.

    Returns the weights, their gradients (numpy, by the chain rule), and the pieces fisher needs.
    """
    w1 = net[0].weight.detach().numpy()[:, :, 0, 0]
    w2 = net[2].weight.detach().numpy()[:, :, 0, 0]
    x = batch.images.numpy().transpose(0, 2, 3, 1)  # N x H x W x Cin
    y = batch.masks.numpy()
    grads, pieces = _gradients(w1, w2, x, y, batch.num_classes)
    return (w1, w2), grads, pieces


def _gradients(w1, w2, x, y, classes):
    a1 = x @ w1.T  # N x H x W x hidden (the first convolution's output)
    h = np.maximum(a1, 0)
    z = h @ w2.T  # the logits
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    labelled = y != 255
    onehot = np.eye(classes)[np.where(labelled, y, 0)]
    g = (p - onehot) * labelled[..., None] / labelled.sum()  # dL/dz
    delta = (g @ w2) * (a1 > 0)  # dL/da1
    dw2 = np.einsum("nhwk,nhwj->kj", g, h)
    dw1 = np.einsum("nhwj,nhwc->jc", delta, x)
    return (dw1, dw2), {"a1": a1, "da1": delta, "z": z, "dz": g}


@pytest.fixture
def case(helpers: SimpleNamespace) -> SimpleNamespace:
    net, batch = helpers.two_layer_net(), helpers.double_batch()
    weights, grads, pieces = _hand(net, batch)
    return SimpleNamespace(net=net, batch=batch, weights=weights, grads=grads, pieces=pieces)


def _value(case: SimpleNamespace, name: str) -> float:
    result = compute(case.net, case.batch, [name], seed=0)[name]
    assert result.error is None
    return result.value


def test_grad_norm_is_the_sum_of_the_weight_gradients_norms(case: SimpleNamespace) -> None:
    expected = sum(np.linalg.norm(g) for g in case.grads)
    assert _value(case, "grad_norm") == pytest.approx(expected, rel=1e-10)


def test_snip_is_the_sum_of_weight_times_gradient_magnitudes(case: SimpleNamespace) -> None:
    expected = sum(np.abs(w * g).sum() for w, g in zip(case.weights, case.grads, strict=True))
    assert _value(case, "snip") == pytest.approx(expected, rel=1e-10)


def test_fisher_sums_half_the_mean_squared_channel_saliency_of_each_convolution(
    case: SimpleNamespace,
) -> None:
    expected = 0.0
    for act, grad in ((case.pieces["a1"], case.pieces["da1"]), (case.pieces["z"], case.pieces["dz"])):
        per_channel = (act * grad).sum(axis=(1, 2))  # N x C: summed over every pixel
        expected += 0.5 * (per_channel**2).mean(axis=0).sum()
    assert _value(case, "fisher") == pytest.approx(expected, rel=1e-9)


def test_grasp_is_minus_weight_times_hessian_gradient_product(case: SimpleNamespace) -> None:
    # Hg by central differences of the hand gradient along g: an independent route to the Hessian.
    (w1, w2), (g1, g2) = case.weights, case.grads
    x = case.batch.images.numpy().transpose(0, 2, 3, 1)
    y, classes, eps = case.batch.masks.numpy(), case.batch.num_classes, 1e-6
    plus, _ = _gradients(w1 + eps * g1, w2 + eps * g2, x, y, classes)
    minus, _ = _gradients(w1 - eps * g1, w2 - eps * g2, x, y, classes)
    hg = [(p - m) / (2 * eps) for p, m in zip(plus, minus, strict=True)]
    expected = sum((-w * h).sum() for w, h in zip(case.weights, hg, strict=True))
    assert _value(case, "grasp") == pytest.approx(expected, rel=1e-5)


def test_ignored_pixels_change_no_gradient_proxy(case: SimpleNamespace, helpers: SimpleNamespace) -> None:
    # Another image content under the ignored pixels: the loss and every gradient stay the same.
    batch = case.batch
    images = batch.images.clone()
    images[:, :, 0, :2] += 5.0
    moved = type(batch)(images, batch.masks, batch.num_classes)
    for name in ("grad_norm", "snip", "grasp"):
        # the first layer's gradient sums delta * x over labelled pixels only
        assert compute(case.net, moved, [name])[name].value == pytest.approx(_value(case, name), rel=1e-12)
