"""``Fidelity``: what ``--fidelity`` accepts, and the budget ASHA counts in; the default warm-up."""

from __future__ import annotations

import pytest

from nasfcn.recipe import WARMUP_SHARE, Fidelity, TrainRecipe, TrainRecipeError


@pytest.mark.parametrize(
    ("text", "resolution", "subset"),
    [
        ("epochs", 1.0, 1.0),
        ("resolution=0.5", 0.5, 1.0),
        ("subset=0.25", 1.0, 0.25),
        ("resolution=0.5,subset=0.25", 0.5, 0.25),
        (" subset = 0.25 , resolution = 0.5 ", 0.5, 0.25),
    ],
)
def test_fidelity_values_parse(text: str, resolution: float, subset: float) -> None:
    fidelity = Fidelity.parse(text)
    assert (fidelity.resolution, fidelity.subset) == (resolution, subset)
    assert Fidelity.parse(fidelity.to_text()) == fidelity


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resolution=0", "--fidelity resolution must be in (0, 1], got 0.0"),
        ("subset=1.5", "--fidelity subset must be in (0, 1], got 1.5"),
        ("subset=nan", "--fidelity subset must be in (0, 1], got nan"),
        ("resolution=half", "--fidelity resolution='half' is not a number"),
        ("size=0.5", "--fidelity 'size=0.5': unknown or repeated setting 'size'"),
        ("resolution=0.5,resolution=0.25", "unknown or repeated setting 'resolution'"),
        ("low", "--fidelity 'low': 'low' sets nothing"),
    ],
)
def test_bad_fidelity_values_name_the_option_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(TrainRecipeError) as caught:
        Fidelity.parse(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "--fidelity" in str(caught.value)


def test_the_budget_counts_full_epoch_equivalents() -> None:
    fidelity = Fidelity(resolution=0.5, subset=0.25, low_epochs=2)
    assert fidelity.epoch_cost == 0.0625  # (32/64)^2 x 1/4
    assert [fidelity.budget(epoch) for epoch in range(1, 6)] == [0.0625, 0.125, 1.125, 2.125, 3.125]
    assert [fidelity.is_low(epoch) for epoch in (1, 2, 3)] == [True, True, False]
    assert fidelity.side(64) == 32
    assert Fidelity().budget(3) == 3.0
    assert not Fidelity().is_low(1)


def test_the_description_says_which_epochs_train_at_what() -> None:
    text = Fidelity(0.5, 0.25, low_epochs=2).describe(64)
    assert (
        text
        == "epochs 1-2 at 32 px on 25% of the train images (cost 0.0625 of an epoch each), then full size"
    )
    assert Fidelity().describe(64) == "every epoch at full size"


def test_a_recipe_without_a_warm_up_warms_up_for_its_default_share_of_the_run() -> None:
    # Short runs of wider networks stayed at the background level without a warm-up (RESULTS.md).
    assert TrainRecipe(epochs=20).warmup == pytest.approx(20 * WARMUP_SHARE)
    assert TrainRecipe(epochs=20, warmup_epochs=0).warmup == 0.0  # an explicit zero is kept
    assert TrainRecipe(epochs=20, warmup_epochs=1.5).warmup == 1.5


def test_a_stored_recipe_without_a_warm_up_reads_back_as_the_same_recipe() -> None:
    recipe = TrainRecipe(epochs=8)
    assert TrainRecipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(TrainRecipeError, match="warmup_epochs must be >= 0"):
        TrainRecipe(warmup_epochs=-1)
