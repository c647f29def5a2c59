"""compute: every proxy on a real FCN, the same number twice, one proxy's failure recorded."""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import torch

from nasfcn import catalogue
from nasfcn.cost import measure
from nasfcn.data import DataConfig, load_dataset
from nasfcn.model import build_model
from nasfcn.proxies import PROXIES, Batch, ProxyError, compute, minibatch
from nasfcn.registry import UnknownChoiceError

UNTIMED = [name for name in catalogue.PROXIES if not catalogue.PROXIES.get(name).timed]


@pytest.fixture(scope="module")
def shapes_batch() -> Batch:
    bundle = load_dataset("shapes", DataConfig(image_size=32, train_samples=16, val_samples=4))
    return minibatch(bundle, 4, seed=0)


@pytest.mark.slow
def test_every_proxy_computes_on_an_fcn_and_gives_the_same_number_twice(
    shapes_batch: Batch, helpers: SimpleNamespace
) -> None:
    for genotype in helpers.bench_genotypes(2):  # the first and the last of fcn_bench
        first = compute(genotype, shapes_batch, seed=3)
        again = compute(genotype, shapes_batch, seed=3)
        assert list(first) == list(catalogue.PROXIES)
        assert all(r.error is None and math.isfinite(r.value) for r in first.values()), first
        assert {n: first[n].value for n in UNTIMED} == {n: again[n].value for n in UNTIMED}
        assert first["latency"].value > 0


def test_the_seed_sets_the_weights_and_one_proxy_does_not_change_another(
    shapes_batch: Batch, helpers: SimpleNamespace
) -> None:
    genotype = helpers.bench_genotypes(1)[0]
    alone = compute(genotype, shapes_batch, ["snip"], seed=3)["snip"].value
    after_others = compute(genotype, shapes_batch, ["synflow", "zen", "snip"], seed=3)["snip"].value
    assert alone == after_others
    assert compute(genotype, shapes_batch, ["snip"], seed=4)["snip"].value != alone


def test_a_given_model_is_left_as_it_was(helpers: SimpleNamespace) -> None:
    net = helpers.two_layer_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    compute(net, helpers.double_batch(), ["synflow", "zen", "snip"])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net[1].inplace
    assert next(net.parameters()).grad is None


def test_a_proxy_that_raises_is_recorded_and_the_others_compute(helpers: SimpleNamespace) -> None:
    one_image = helpers.double_batch(images=1)
    results = compute(helpers.two_layer_net(), one_image, ["snip", "naswot", "grad_norm"])
    assert results["naswot"].error == "ProxyError: naswot needs a batch of 2 images or more"
    assert math.isnan(results["naswot"].value)
    for name in ("snip", "grad_norm"):
        assert results[name].error is None
        assert results[name].value > 0


@pytest.fixture
def broken_snip() -> Iterator[None]:
    def boom(model: object, batch: object, generator: object) -> float:
        raise RuntimeError("out of memory")

    original = PROXIES.get("snip")
    PROXIES.remove("snip")
    PROXIES.add("snip", boom)
    yield
    PROXIES.remove("snip")
    PROXIES.add("snip", original)


def test_any_exception_of_a_proxy_is_its_own_result(broken_snip: None, helpers: SimpleNamespace) -> None:
    results = compute(helpers.two_layer_net(), helpers.double_batch(), ["snip", "synflow"])
    assert results["snip"].error == "RuntimeError: out of memory"
    assert results["synflow"].error is None
    assert results["synflow"].value > 0


def test_an_unknown_proxy_is_refused_before_any_work(helpers: SimpleNamespace) -> None:
    with pytest.raises(
        UnknownChoiceError, match=r"unknown zero-cost proxy 'synflw' \(did you mean 'synflow'\?\)"
    ):
        compute(helpers.two_layer_net(), helpers.double_batch(), ["params", "synflw"])


def test_the_cost_proxies_are_what_a_trial_records(shapes_batch: Batch, helpers: SimpleNamespace) -> None:
    genotype = helpers.bench_genotypes(1)[0]
    results = compute(genotype, shapes_batch, ["params", "flops"])
    report = measure(build_model(genotype, 4, 3), (32, 32), repeats=1, warmup=0)
    assert results["params"].value == report.params
    assert results["flops"].value == report.flops


def test_a_batch_with_every_pixel_ignored_is_refused() -> None:
    with pytest.raises(ProxyError, match="every pixel of the batch is 255"):
        Batch(torch.zeros(2, 3, 4, 4), torch.full((2, 4, 4), 255), 3)
    with pytest.raises(ProxyError, match="mask values must be 0 to 2 or 255, found 0 to 3"):
        Batch(torch.zeros(2, 3, 4, 4), torch.tensor([0, 3]).repeat_interleave(16).reshape(2, 4, 4), 3)


def test_the_minibatch_is_drawn_by_its_seed() -> None:
    bundle = load_dataset("shapes", DataConfig(image_size=32, train_samples=16, val_samples=4))
    assert torch.equal(minibatch(bundle, 4, 1).images, minibatch(bundle, 4, 1).images)
    assert not torch.equal(minibatch(bundle, 4, 1).images, minibatch(bundle, 4, 2).images)
    with pytest.raises(ProxyError, match="a batch of 17 images, but shapes has 16 training images"):
        minibatch(bundle, 17, 0)
