"""Surrogate backends: LightGBM vs scikit-learn's HistGradientBoosting, by rank correlation and fit time.

For each backend and training size n: ``--splits`` seeded draws of n architectures, a
``nasfcn.search.Surrogate`` (5 bootstrapped members, the strategy's settings) fitted on their
knob encoding, and Spearman's rho of its mean prediction against the true mean val mIoU of
every other architecture; ``+rung`` adds each architecture's epoch-1 mean val mIoU as a
column (the first ASHA rung's value, as if every candidate had been trained one epoch).
With ``--table``, on a table's architectures (sizes larger than the table minus 8 are
skipped); without, on every architecture of ``--space`` with a made-up quality that is a
function of the knobs (one term per knob, a skip x upsampling interaction, noise sd 0.01).
Prints the median rho and the mean seconds per fit.

    .venv/bin/python benchmarks/surrogate_fit.py [--table t.parquet] [--sizes 20,50,100] [--backends lightgbm]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nasfcn.genotype import Genotype
from nasfcn.search import KnobEncoder, Surrogate
from nasfcn.space import SearchSpace, load_space, parse_space
from nasfcn.table import load

ROOT = Path(__file__).resolve().parents[1]


def table_problem(path: str) -> tuple[SearchSpace, list[Genotype], np.ndarray, np.ndarray]:
    table = load(path)
    space = parse_space(table.facts["space_yaml"])
    archs = table.archs()
    return space, [table.genotype(a) for a in archs], table.means(), table.means(epoch=1)


def synthetic_problem(space_file: Path) -> tuple[SearchSpace, list[Genotype], np.ndarray, np.ndarray]:
    space = load_space(space_file)
    genotypes = list(space.iter_genotypes(include_train=False))
    rng = np.random.default_rng(0)
    encoder = KnobEncoder(space)
    x = np.nan_to_num(encoder.matrix(genotypes), nan=-1.0)
    weights = rng.normal(0, 0.03, size=x.shape[1])
    quality = 0.4 + x @ weights + 0.02 * np.sin(x[:, 0] * x[:, 1]) + rng.normal(0, 0.01, len(genotypes))
    return space, genotypes, quality, quality - 0.1 + rng.normal(0, 0.02, len(genotypes))


def measure(problem, sizes: list[int], splits: int, backends: list[str]) -> None:
    space, genotypes, quality, rung = problem
    encoder = KnobEncoder(space)
    knobs = encoder.matrix(genotypes)
    features = {"knobs": knobs, "knobs+rung": np.column_stack([knobs, rung])}
    print(f"{len(genotypes)} architectures; {splits} splits per size")
    for size in sizes:
        if size > len(genotypes) - 8:
            print(f"n={size}: skipped, the problem has {len(genotypes)} architectures")
            continue
        for backend in backends:
            for label, x in features.items():
                rhos, seconds = [], []
                for split in range(splits):
                    order = np.random.default_rng([size, split]).permutation(len(genotypes))
                    train, test = order[:size], order[size:]
                    start = time.perf_counter()
                    model = Surrogate(backend, seed=split).fit(x[train], quality[train])
                    seconds.append(time.perf_counter() - start)
                    rhos.append(spearmanr(model.predict(x[test])[0], quality[test]).statistic)
                print(
                    f"n={size:4d} {backend:9s} {label:11s} spearman median {np.median(rhos):.3f} "
                    f"(min {np.min(rhos):.3f}) fit {np.mean(seconds):.3f} s"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", help="a table file; default: a synthetic quality over --space")
    parser.add_argument("--space", type=Path, default=ROOT / "search_spaces" / "fcn_bench.yaml")
    parser.add_argument("--sizes", default="20,50,100")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--backends", default="lightgbm,hist", help="comma-separated: lightgbm, hist")
    args = parser.parse_args()
    problem = table_problem(args.table) if args.table else synthetic_problem(args.space)
    measure(problem, [int(s) for s in args.sizes.split(",")], args.splits, args.backends.split(","))


if __name__ == "__main__":
    main()
