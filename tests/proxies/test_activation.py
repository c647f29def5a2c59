"""naswot and jacov: the kernel on known binary codes, the scores on nets whose codes are known."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from nasfcn.proxies import Batch, compute, jacov_score, naswot_kernel


def test_the_naswot_kernel_counts_the_units_two_codes_agree_on() -> None:
    codes = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 1]])
    # N_A - Hamming distance: 4 - d(i, j)
    expected = torch.tensor([[4, 2, 3], [2, 4, 1], [3, 1, 4]], dtype=torch.float64)
    assert torch.equal(naswot_kernel(codes), expected)


def _identity_relu_net(channels: int) -> nn.Sequential:
    conv = nn.Conv2d(channels, channels, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels)[:, :, None, None])
    return nn.Sequential(conv, nn.ReLU(inplace=True), nn.Conv2d(channels, 2, 1))


def test_naswot_is_the_log_determinant_of_the_images_codes_kernel() -> None:
    # One ReLU after an identity convolution: an image's code is (its pixels > 0), one bit a value.
    images = torch.tensor(
        [
            [[[1.0, -1.0], [2.0, 3.0]]],
            [[[1.0, 1.0], [-2.0, 3.0]]],
            [[[-1.0, -1.0], [2.0, -3.0]]],
        ]
    )
    batch = Batch(images, torch.zeros(3, 2, 2, dtype=torch.long), 2)
    codes = (images.reshape(3, -1) > 0).to(torch.float64).numpy()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T  # [[4, 2, 2], [2, 4, 0], [2, 0, 4]]
    value = compute(_identity_relu_net(1), batch, ["naswot"])["naswot"].value
    assert value == pytest.approx(math.log(np.linalg.det(kernel)), rel=1e-12)
    assert value == pytest.approx(math.log(4 * 16 - 2 * 8 + 2 * -8), rel=1e-12)  # det by cofactors: 32


def test_jacov_score_follows_the_eigenvalue_formula() -> None:
    jacobians = torch.tensor([[1.0, 2.0, 0.0, 1.0], [0.0, 1.0, 1.0, 3.0], [2.0, 0.0, 1.0, 1.0]])
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(jacobians.numpy()))
    expected = -np.sum(np.log(eigenvalues + 1e-5) + 1 / (eigenvalues + 1e-5))
    assert jacov_score(jacobians) == pytest.approx(expected, rel=1e-10)


def test_jacov_of_a_linear_net_sees_identical_jacobians(helpers: SimpleNamespace) -> None:
    # No activation: every image's Jacobian is the same, the correlations are all 1, the
    # eigenvalues N and N - 1 zeros.
    net = nn.Sequential(nn.Conv2d(3, 2, 1)).double()
    batch = helpers.double_batch(images=4, classes=2)
    k, n = 1e-5, 4
    expected = -((math.log(n + k) + 1 / (n + k)) + (n - 1) * (math.log(k) + 1 / k))
    assert compute(net, batch, ["jacov"])["jacov"].value == pytest.approx(expected, rel=1e-6)
