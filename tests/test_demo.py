"""``make demo``'s search: what lets its candidates learn in a few CPU minutes (RESULTS.md)."""

from __future__ import annotations

from nasfcn.demo import demo_config


def test_the_demo_warms_up_and_judges_candidates_after_two_epochs() -> None:
    config = demo_config()
    # 6 epochs of 768 scenes at 64 px in batches of 16 left every candidate near 0.3 val mIoU.
    assert config.recipe.warmup_epochs > 0
    assert config.asha_grace_period >= 2  # after one epoch most candidates predict only background
    assert config.recipe.epochs == config.epochs


def test_the_demos_longest_trial_takes_thousands_of_small_steps() -> None:
    config = demo_config()
    steps = config.epochs * (config.train_samples // config.recipe.batch_size)
    assert steps >= 4000  # measured: 4,096 steps of 32 px scenes gave width-16 networks 0.56-0.64 val mIoU
    assert config.image_size <= 32
