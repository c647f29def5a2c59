"""One error root: every error nasfcn raises on purpose is a NasfcnError and keeps its old base."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import nasfcn
from nasfcn.errors import NasfcnError, raise_problems
from nasfcn.train import TrainRecipe, TrainRecipeError

#: Alembic's migration scripts run only inside Alembic.
_SKIPPED = ("nasfcn.store.migrations",)


def _public_errors() -> list[type[BaseException]]:
    """Every public exception class defined in a nasfcn module (warnings are not errors)."""
    found = []
    for module_info in pkgutil.walk_packages(nasfcn.__path__, "nasfcn."):
        name = module_info.name
        if name.endswith("__main__") or name.startswith(_SKIPPED):
            continue
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == name
                and issubclass(cls, Exception)
                and not issubclass(cls, Warning)
                and not cls_name.startswith("_")
                and cls is not NasfcnError
            ):
                found.append(cls)
    return found


PUBLIC_ERRORS = _public_errors()


def test_the_walk_finds_the_errors() -> None:
    names = {cls.__name__ for cls in PUBLIC_ERRORS}
    assert {"BundleError", "StoreError", "UnknownChoiceError", "TrainRecipeError"} <= names


@pytest.mark.parametrize("error", PUBLIC_ERRORS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_public_error_is_a_nasfcn_error_and_keeps_a_builtin_base(
    error: type[BaseException],
) -> None:
    assert issubclass(error, NasfcnError)
    assert issubclass(error, ValueError | RuntimeError | KeyError)


def test_raise_problems_lists_every_problem_after_the_header() -> None:
    with pytest.raises(TrainRecipeError) as caught:
        raise_problems(["a is bad", "b is bad"], "invalid thing: ", TrainRecipeError)
    assert str(caught.value) == "invalid thing: a is bad; b is bad"


def test_raise_problems_without_problems_returns() -> None:
    raise_problems([], "invalid thing: ", TrainRecipeError)


def test_a_bad_train_recipe_is_a_named_value_error_listing_every_field() -> None:
    with pytest.raises(TrainRecipeError) as caught:
        TrainRecipe(epochs=0, lr=0.0)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == "invalid training recipe: epochs must be >= 1, got 0; lr must be > 0, got 0.0"


def test_unknown_train_recipe_fields_are_a_train_recipe_error() -> None:
    with pytest.raises(TrainRecipeError, match=r"unknown recipe fields \['epoch'\]"):
        TrainRecipe.from_dict({"epoch": 3})
