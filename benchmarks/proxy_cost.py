"""What zero-cost proxies cost a search trial: each proxy's seconds against one epoch's training.

``nasfcn search --proxies`` scores every trial's network at its cost step; issue 23's rule is
that proxies cost <= 2% of a trial's training time. This scores N seeded architectures of a
space (default ``fcn_tiny``) with every proxy on the minibatch a search uses (``trial_batch``:
16 training images at the search's default 64 x 64, seed 0) and trains each for one epoch
with the search's default recipe (512 ``shapes`` images, batch 16), one torch thread.
Prints per proxy the median seconds and its share of the median epoch.

    .venv/bin/python benchmarks/proxy_cost.py [--space search_spaces/fcn_tiny.yaml] [--archs 4]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from nasfcn import catalogue
from nasfcn.data import DataConfig, load_dataset
from nasfcn.proxies import compute, trial_batch
from nasfcn.space import load_space
from nasfcn.train import TrainRecipe, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="search_spaces/fcn_tiny.yaml")
    parser.add_argument("--archs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = load_space(args.space)
    data = load_dataset("shapes", DataConfig(image_size=args.image_size, train_samples=512, seed=0))
    batch = trial_batch(data, seed=0)
    names = catalogue.PROXIES.names()
    seconds = {name: [] for name in names}
    epochs = []
    for k in range(args.archs):
        genotype = space.sample(k)
        for name, result in compute(genotype, batch, names, seed=0).items():
            seconds[name].append(result.seconds)
        start = time.perf_counter()
        fit(genotype, data, TrainRecipe(epochs=1, batch_size=16, lr=3e-3), device="cpu")
        epochs.append(time.perf_counter() - start)
    epoch = float(np.median(epochs))
    print(f"{platform.processor() or platform.machine()}, torch threads 1, {space.name}, {args.archs} archs")
    print(f"minibatch {tuple(batch.images.shape)}; one epoch (512 images + val): median {epoch:.2f} s")
    print(f"{'proxy':<10} {'median s':>9} {'max s':>7} {'% of epoch':>10}")
    for name in names:
        values = np.asarray(seconds[name])
        share = 100 * float(np.median(values)) / epoch
        print(f"{name:<10} {np.median(values):9.4f} {values.max():7.4f} {share:10.2f}")


if __name__ == "__main__":
    main()
