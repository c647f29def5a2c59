"""The catalogue of named choices: every name has one implementation, and it stays torch-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nasfcn import catalogue
from nasfcn.registry import Registry, UnknownChoiceError

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "optuna", "sqlalchemy")


def _implementations(kind: str) -> tuple[str, ...]:
    """The names registered with an implementation for one catalogue kind."""
    from nasfcn import data, model, proxies, search, train

    registries = {
        "skip": model.SKIPS,
        "upsample": model.UPSAMPLERS,
        "downsample": model.DOWNSAMPLERS,
        "norm": model.NORMS,
        "activation": model.ACTIVATIONS,
        "attention": model.ATTENTION,
        "optimizer": train.OPTIMIZERS,
        "schedule": train.SCHEDULES,
        "dataset": data.DATASETS,
        "strategy": search.SEARCHERS,
        "proxy": proxies.PROXIES,
    }
    return registries[kind].names()


IMPLEMENTED = (
    "skip",
    "upsample",
    "downsample",
    "norm",
    "activation",
    "attention",
    "optimizer",
    "schedule",
    "dataset",
    "proxy",
)


@pytest.mark.parametrize("kind", [*IMPLEMENTED, "strategy"])
def test_every_catalogued_name_has_exactly_one_implementation(kind: str) -> None:
    catalogue.check_implemented(catalogue.KINDS[kind], _implementations(kind))


def test_a_catalogued_name_without_an_implementation_fails_the_check() -> None:
    choices: Registry[catalogue.Upsampling] = Registry("upsampling")
    for name in (*catalogue.UPSAMPLING, "nearest"):
        choices.add(name, catalogue.Upsampling(name, "an upsampling"))
    with pytest.raises(ValueError, match=r"upsampling: .*not implemented: nearest"):
        catalogue.check_implemented(choices, _implementations("upsample"))


def test_an_implementation_the_catalogue_lacks_fails_the_check() -> None:
    with pytest.raises(ValueError, match="not catalogued: nearest"):
        catalogue.check_implemented(catalogue.UPSAMPLING, (*_implementations("upsample"), "nearest"))


def test_a_model_registry_refuses_a_name_the_catalogue_lacks() -> None:
    from nasfcn.model import UPSAMPLERS

    with pytest.raises(ValueError, match=r"upsampling 'nearest' is not in nasfcn/catalogue\.py"):
        UPSAMPLERS.add("nearest", UPSAMPLERS.get("bilinear"))
    assert "nearest" not in UPSAMPLERS


def test_every_model_data_and_training_registry_is_bound_to_its_catalogue_kind() -> None:
    from nasfcn import data, model, proxies, search, train

    for kind, registry in (
        ("skip", model.SKIPS),
        ("upsample", model.UPSAMPLERS),
        ("downsample", model.DOWNSAMPLERS),
        ("norm", model.NORMS),
        ("activation", model.ACTIVATIONS),
        ("attention", model.ATTENTION),
        ("dataset", data.DATASETS),
        ("optimizer", train.OPTIMIZERS),
        ("schedule", train.SCHEDULES),
        ("strategy", search.SEARCHERS),
        ("proxy", proxies.PROXIES),
    ):
        assert registry.catalogue is catalogue.KINDS[kind], kind


@pytest.mark.parametrize("kind", ["optimizer", "schedule"])
def test_a_training_registry_refuses_a_name_the_catalogue_lacks(kind: str) -> None:
    from nasfcn import train

    registry = {"optimizer": train.OPTIMIZERS, "schedule": train.SCHEDULES}[kind]
    with pytest.raises(ValueError, match=r"'lion' is not in nasfcn/catalogue\.py"):
        registry.add("lion", registry.get(registry.names()[0]))
    assert "lion" not in registry


def test_an_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownChoiceError) as caught:
        catalogue.UPSAMPLING.get("bilinaer")
    assert str(caught.value) == (
        "unknown upsampling 'bilinaer' (did you mean 'bilinear'?); "
        "valid: bilinear, transposed, pixel_shuffle, max_unpool"
    )


def test_properties_the_space_and_configs_reason_about() -> None:
    assert [n for n in catalogue.UPSAMPLING if catalogue.needs_pool_indices(n)] == ["max_unpool"]
    assert catalogue.index_keeping_downsampling() == ("maxpool",)
    assert [n for n in catalogue.STRATEGIES if catalogue.STRATEGIES.get(n).multi_objective] == ["nsga2"]
    assert catalogue.min_stages("fcn8s") == 3
    assert catalogue.min_stages("not a skip path") == 1  # the validator reports the name itself


def test_a_dataset_takes_a_path_as_the_catalogue_says() -> None:
    from nasfcn.data import DATASETS

    for name in catalogue.DATASETS:
        assert DATASETS.get(name).takes_path is catalogue.DATASETS.get(name).takes_path, name
    specs = [catalogue.DATASETS.get(name).spec for name in catalogue.DATASETS]
    assert catalogue.one_of(specs) == "shapes, digits, photos, coins, voc:PATH or folder:PATH"


def test_one_of_reads_like_a_help_text() -> None:
    assert catalogue.one_of(["sgd", "adamw"]) == "sgd or adamw"
    assert catalogue.one_of(["a", "b", "c"]) == "a, b or c"
    assert catalogue.one_of(["asha"]) == "asha"


def test_kinds_hold_their_own_choice_records() -> None:
    for kind in catalogue.KINDS.values():
        assert isinstance(kind, Registry)
        for name in kind:
            assert kind.get(name).name == name


def _heavy_modules_after(code: str) -> list[str]:
    """Which heavy libraries a fresh interpreter has imported after running ``code``."""
    report = f"import sys; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return result.stdout.split()


def test_importing_the_catalogue_and_loading_every_shipped_space_stays_light() -> None:
    code = (
        "import nasfcn.catalogue, nasfcn.space\n"
        "from nasfcn.space import load_space, shipped_spaces\n"
        "for path in shipped_spaces(): load_space(path)"
    )
    assert _heavy_modules_after(code) == []


def test_the_light_import_check_sees_a_heavy_import() -> None:
    # The check above can fail: one torch import anywhere on the path shows up.
    assert _heavy_modules_after("import nasfcn.catalogue\nimport nasfcn.model") == ["torch"]
