"""synflow and zen against their formulas written out on a two-layer net."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from nasfcn.proxies import compute


def test_synflow_of_a_bias_free_two_layer_net_is_twice_its_synaptic_flow(helpers: SimpleNamespace) -> None:
    # |W|, ones input, R = sum of outputs = H * W * 1^T |W2| |W1| 1; each layer's sum of
    # |w * dR/dw| is R (Euler: R is linear in each layer), so the score is 2 R.
    net, batch = helpers.two_layer_net(), helpers.double_batch(size=5)
    w1 = np.abs(net[0].weight.detach().numpy()[:, :, 0, 0])
    w2 = np.abs(net[2].weight.detach().numpy()[:, :, 0, 0])
    flow = 5 * 5 * np.ones(w2.shape[0]) @ w2 @ w1 @ np.ones(w1.shape[1])
    assert compute(net, batch, ["synflow"])["synflow"].value == pytest.approx(2 * flow, rel=1e-12)


def test_synflow_removes_batch_norm_as_its_paper_does(helpers: SimpleNamespace) -> None:
    plain = helpers.two_layer_net()
    with_norm = nn.Sequential(plain[0], nn.BatchNorm2d(4), nn.ReLU(), plain[2]).double()
    batch = helpers.double_batch()
    assert compute(with_norm, batch, ["synflow"])["synflow"].value == pytest.approx(
        compute(plain, batch, ["synflow"])["synflow"].value, rel=1e-12
    )


def test_zen_is_the_log_perturbation_response_plus_the_log_batch_norm_scales() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))
    shape = (3, 3, 4, 4)
    batch = SimpleNamespace(images=torch.zeros(shape), masks=torch.zeros(3, 4, 4, dtype=torch.long))
    from nasfcn.proxies import Batch

    value = compute(net, Batch(batch.images, batch.masks, 2), ["zen"], seed=7)["zen"].value

    # By hand: the generator seeded 7 draws W1, W2 (N(0, 1)), then x, then eps; biases are 0.
    generator = torch.Generator().manual_seed(7)
    w1 = torch.randn((4, 3, 1, 1), generator=generator).double().numpy()[:, :, 0, 0]
    w2 = torch.randn((2, 4, 1, 1), generator=generator).double().numpy()[:, :, 0, 0]
    x = torch.randn(shape, generator=generator).double().numpy().transpose(0, 2, 3, 1)
    eps = torch.randn(shape, generator=generator).double().numpy().transpose(0, 2, 3, 1)

    def f(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = inputs @ w1.T
        variance = a.var(axis=(0, 1, 2))  # the batch variance BatchNorm divides by
        return np.maximum((a - a.mean(axis=(0, 1, 2))) / np.sqrt(variance + 1e-5), 0) @ w2.T, variance

    clean, variance = f(x)
    noisy, _ = f(x + 0.01 * eps)
    expected = math.log(np.abs(clean - noisy).sum(axis=(1, 2, 3)).mean()) + 0.5 * math.log(variance.mean())
    assert value == pytest.approx(expected, rel=1e-4)
