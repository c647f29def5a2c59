"""The space language: shipped spaces, define-by-run suggestion, sampling, counting."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from nasfcn.space import RandomTrial, load_space, parse_space, shipped_spaces

SHIPPED = shipped_spaces()
ROOT = Path(__file__).resolve().parents[1]


def _heavy_modules_after(code: str) -> list[str]:
    """Which of torch and ray a fresh interpreter has imported after running ``code``."""
    report = "import sys; print(' '.join(m for m in ('torch', 'ray') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return result.stdout.split()


def test_importing_the_space_imports_neither_torch_nor_ray() -> None:
    assert _heavy_modules_after("import nasfcn.space") == []


def test_loading_a_space_imports_neither_torch_nor_ray() -> None:
    code = "from nasfcn.space import load_space\nload_space('search_spaces/fcn_small.yaml')"
    assert _heavy_modules_after(code) == []


def test_the_required_spaces_ship() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"fcn_tiny", "fcn_small", "fcn_full", "segnet"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_spaces_load(path) -> None:
    space = load_space(path)
    assert space.name == path.stem
    assert space.size() > 1
    assert space.text == path.read_text()


def test_fcn_small_draws_only_learning_rates_that_trained() -> None:
    """1e-4..3e-2 let candidates sit at the background level (search_spaces/README.md)."""
    space = load_space("search_spaces/fcn_small.yaml")
    rates = [space.sample(seed).train.lr for seed in range(200)]
    assert all(rate is not None and 1e-3 <= rate <= 1e-2 for rate in rates)


def test_sample_is_deterministic_per_seed() -> None:
    space = load_space("search_spaces/fcn_small.yaml")
    assert space.sample(7) == space.sample(7)
    assert len({space.sample(seed).trial_key for seed in range(20)}) == 20


def test_inactive_knobs_are_never_suggested() -> None:
    space = parse_space(
        textwrap.dedent(
            """
            name: t
            attention:
              type: {choices: [none, se]}
              where: {choices: [encoder, both]}
            head: {extra_conv: false, extra_kernel_size: {choices: [3, 5]}}
            """
        )
    )
    for seed in range(30):
        trial = RandomTrial(seed)
        genotype = space.suggest(trial)
        assert "head/extra_kernel_size" not in trial.params
        if genotype.attention.type == "none":
            assert "attention/where" not in trial.params
            assert genotype.attention.where is None
        else:
            assert trial.params["attention/where"] == genotype.attention.where


def test_max_unpool_implies_maxpool_without_suggesting_it() -> None:
    space = parse_space(
        "name: t\nencoder: {downsample: {choices: [maxpool, strided_conv]}}\n"
        "upsample: {choices: [bilinear, max_unpool]}\n"
    )
    seen = set()
    for seed in range(40):
        trial = RandomTrial(seed)
        genotype = space.suggest(trial)
        if genotype.upsample == "max_unpool":
            assert "encoder/downsample" not in trial.params
            assert genotype.encoder.downsample == "maxpool"
        seen.add((genotype.upsample, genotype.encoder.downsample))
    assert seen == {
        ("bilinear", "maxpool"),
        ("bilinear", "strided_conv"),
        ("max_unpool", "maxpool"),
    }


def test_per_stage_knobs_get_one_parameter_per_stage() -> None:
    space = parse_space(
        "name: t\nencoder:\n  stages: {choices: [2, 4]}\n"
        "  kernel_size: {choices: [1, 3, 5, 7], per_stage: true}\n"
    )
    for seed in range(10):
        trial = RandomTrial(seed)
        genotype = space.suggest(trial)
        stages = genotype.encoder.stages
        names = sorted(k for k in trial.params if k.startswith("encoder/kernel_size/"))
        assert names == [f"encoder/kernel_size/{i}" for i in range(stages)]
        assert genotype.encoder.kernel_size == tuple(trial.params[n] for n in names)


def test_user_condition_switches_a_knob() -> None:
    space = load_space("search_spaces/fcn_small.yaml")
    for seed in range(40):
        trial = RandomTrial(seed)
        genotype = space.suggest(trial)
        if genotype.encoder.downsample != "strided_conv":
            assert "encoder/dilation" not in trial.params
            assert set(genotype.encoder.dilation) == {1}


def test_optuna_drives_the_space_and_fixed_trial_replays_it() -> None:
    space = load_space("search_spaces/fcn_small.yaml")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=4))
    drawn = []

    def objective(trial: optuna.Trial) -> float:
        genotype = space.suggest(trial)
        drawn.append(genotype)
        return float(genotype.encoder.stages)

    study.optimize(objective, n_trials=12)
    for trial, genotype in zip(study.trials, drawn, strict=True):
        assert space.suggest(optuna.trial.FixedTrial(trial.params)) == genotype
        assert all("." not in name for name in trial.params)  # / paths, as documented


def _brute_force(space) -> int:
    return len({g.arch_id for g in space.iter_genotypes(include_train=False)})


COUNTING_SPACES = {
    "caps and dilation": """
        name: t
        encoder:
          stages: {choices: [2, 3]}
          width: {choices: [8, 16, 32]}
          max_width: {choices: [16, 32, null]}
          kernel_size: {choices: [1, 3], per_stage: true}
          dilation: {choices: [1, 2], when: "encoder.norm == batch"}
          norm: {choices: [batch, none]}
          blocks_per_stage: {int: [1, 2], per_stage: true}
        upsample: {choices: [bilinear, max_unpool]}
        head: {extra_conv: {choices: [true, false]}, extra_kernel_size: {choices: [3, 5]}}
        """,
    "shared kernel, per-stage dilation": """
        name: t
        encoder:
          stages: {choices: [1, 2]}
          kernel_size: {choices: [1, 3, 5]}
          dilation: {choices: [1, 2, 3], per_stage: true}
          downsample: {choices: [maxpool, strided_conv]}
        upsample: {choices: [transposed, max_unpool, pixel_shuffle]}
        attention:
          type: {choices: [none, spatial, cbam]}
          where: {choices: [encoder, decoder, both]}
        """,
    "per-stage kernel, shared dilation": """
        name: t
        encoder:
          stages: {int: [2, 3]}
          kernel_size: {choices: [1, 7], per_stage: true}
          dilation: {choices: [1, 4]}
        skip: {choices: [none, fcn16s, unet_add]}
        train: {batch_size: {choices: [4, 8]}}
        """,
}


@pytest.mark.parametrize("text", COUNTING_SPACES.values(), ids=COUNTING_SPACES.keys())
def test_size_counts_distinct_architectures(text: str) -> None:
    space = parse_space(textwrap.dedent(text))
    assert space.size() == _brute_force(space)


def test_fcn_tiny_size_matches_enumeration() -> None:
    space = load_space("search_spaces/fcn_tiny.yaml")
    assert space.size() == _brute_force(space) == 2100


def test_size_is_infinite_with_float_training_knobs() -> None:
    space = load_space("search_spaces/fcn_tiny.yaml")
    assert math.isinf(space.size(include_train=True))
    with pytest.raises(ValueError, match="continuous"):
        next(space.iter_genotypes(include_train=True))


def test_training_knobs_do_not_change_arch_id() -> None:
    space = parse_space("name: t\ntrain: {lr: {choices: [0.01, 0.1]}, batch_size: {choices: [4, 8]}}\n")
    genotypes = list(space.iter_genotypes())
    assert len(genotypes) == 4
    assert len({g.arch_id for g in genotypes}) == 1
    assert len({g.trial_key for g in genotypes}) == 4


def test_space_hash_ignores_layout_and_names_but_not_meaning() -> None:
    from nasfcn.space import space_hash

    text = Path("search_spaces/fcn_tiny.yaml").read_text()
    base = space_hash(parse_space(text))
    relaid = "# a comment\n" + text.replace("name: fcn_tiny", "name: renamed").replace(", ", " ,   ")
    assert space_hash(parse_space(relaid)) == base
    assert space_hash(load_space("search_spaces/fcn_tiny.yaml")) == base
    narrower = text.replace("kernel_size: {choices: [3, 5]}", "kernel_size: {choices: [3]}")
    assert narrower != text
    assert space_hash(parse_space(narrower)) != base
    assert len(base) == 16


def test_fcn_bench_enumerates_every_topology_axis_at_one_width() -> None:
    space = load_space("search_spaces/fcn_bench.yaml")
    genotypes = list(space.iter_genotypes(include_train=False))
    assert len(genotypes) == space.size() == 280
    assert all(knob.values is not None for knob in space.searched)  # no continuous knob
    assert {(g.encoder.width, g.encoder.stages, g.encoder.downsample) for g in genotypes} == {
        (8, 3, "maxpool")
    }
    assert {g.encoder.kernel_size for g in genotypes} == {(3, 3, 3), (5, 5, 5)}
    assert {g.skip for g in genotypes} == {"none", "fcn16s", "fcn8s", "unet_concat", "unet_add"}
    assert {g.upsample for g in genotypes} == {"bilinear", "transposed", "pixel_shuffle", "max_unpool"}
    attention = {(g.attention.type, g.attention.where) for g in genotypes}
    assert len(attention) == 7  # none, and se / spatial / cbam in the encoder or the decoder
    with_train = list(space.iter_genotypes(include_train=True))  # the measured regime, fixed
    assert {(g.train.lr, g.train.batch_size) for g in with_train} == {(0.01, 8)}
    assert len(with_train) == 280


def test_the_default_search_space_holds_the_design_measured_to_learn_in_short_runs() -> None:
    """RESULTS.md, "What holds a short run back": a 3-stage, width-16 U-Net with two blocks per
    stage reached 0.72 val mIoU in 12 epochs of `shapes`; the default space must be able to pick it."""
    import inspect

    from nasfcn.cli._search import search

    default = inspect.signature(search).parameters["space"].default
    assert Path(default) == Path("search_spaces/fcn_cpu.yaml")
    space = load_space(default)
    assert space.size() == 192
    measured = {
        (g.encoder.stages, g.encoder.width, g.encoder.blocks_per_stage, g.skip, g.upsample)
        for g in space.iter_genotypes(include_train=False)
    }
    assert (3, 16, (2, 2, 2), "unet_add", "bilinear") in measured
