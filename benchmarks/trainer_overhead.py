"""Trainer overhead: ``nasfcn.train.fit`` against a bare hand-written PyTorch loop.

Both train the same genotype on the same data for the same number of steps in this
process (same DataLoader settings, same optimizer and schedule), and both evaluate on
the validation split after every epoch. Runs alternate (bare, fit, bare, fit, ...) so
drift in machine load hits both; the median of the repeats is reported.

    .venv/bin/python benchmarks/trainer_overhead.py [--epochs 3] [--repeats 3] [--device cuda]

On CUDA both use what ``fit`` turns on by default there (mixed precision and
channels-last), so the ratio compares loops, not techniques.

Prints images/s of both and their ratio (goal: fit / bare >= 0.95).
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from nasfcn.data import DataConfig, load_dataset
from nasfcn.genotype import EncoderGene, Genotype
from nasfcn.metrics import ConfusionMatrix
from nasfcn.model import build_model
from nasfcn.train import TrainRecipe, fit, lr_factor, select_device


def bare_loop(genotype: Genotype, data, recipe: TrainRecipe, device: torch.device) -> tuple[float, float]:
    """The loop a researcher would write by hand; returns (train images/s, wall seconds)."""
    started = time.perf_counter()
    cuda = device.type == "cuda"
    amp = cuda and recipe.amp
    memory_format = torch.channels_last if cuda and recipe.channels_last else torch.contiguous_format
    torch.manual_seed(recipe.seed)
    model = build_model(genotype, data.num_classes, data.in_channels).to(device, memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loader = DataLoader(
        data.train,
        batch_size=recipe.batch_size,
        shuffle=True,
        drop_last=True,
        pin_memory=cuda,
        generator=torch.Generator().manual_seed(recipe.seed),
    )
    val_loader = DataLoader(data.val, batch_size=max(recipe.batch_size, 32), pin_memory=cuda)
    total = len(loader) * recipe.epochs
    step, images, train_seconds = 0, 0, 0.0
    for epoch in range(1, recipe.epochs + 1):
        data.train.set_epoch(epoch)
        model.train()
        epoch_start = time.perf_counter()
        for x, y in loader:
            x = x.to(device, non_blocking=True, memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            for group in optimizer.param_groups:
                group["lr"] = recipe.lr * lr_factor(step, total, len(loader), recipe)
            with torch.autocast(device.type, enabled=amp):
                loss = F.cross_entropy(model(x), y, ignore_index=255)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            images += x.shape[0]
            step += 1
        if cuda:
            torch.cuda.synchronize(device)
        train_seconds += time.perf_counter() - epoch_start
        model.eval()
        confusion = ConfusionMatrix(data.num_classes, device=device)
        with torch.no_grad(), torch.autocast(device.type, enabled=amp):
            for x, y in val_loader:
                x = x.to(device, non_blocking=True, memory_format=memory_format)
                confusion.update(model(x).argmax(1), y.to(device, non_blocking=True))
        confusion.compute()
    return images / train_seconds, time.perf_counter() - started


def with_fit(genotype: Genotype, data, recipe: TrainRecipe, device: torch.device) -> tuple[float, float]:
    started = time.perf_counter()
    result = fit(genotype, data, recipe, device=device)
    per_epoch = (len(data.train) // recipe.batch_size) * recipe.batch_size  # drop_last, as bare
    train_seconds = sum(per_epoch / e.images_per_s for e in result.history)
    images = per_epoch * len(result.history)
    return images / train_seconds, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-samples", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = select_device(args.device)

    data = load_dataset(
        "shapes", DataConfig(image_size=args.image_size, train_samples=args.train_samples, val_samples=64)
    )
    genotype = Genotype(encoder=EncoderGene(stages=4, width=8, max_width=64), skip="unet_concat")
    recipe = TrainRecipe(epochs=args.epochs, batch_size=16, lr=3e-3, keep_checkpoint=False)
    bare_loop(genotype, data, TrainRecipe(epochs=1), device)  # warm up allocators and kernels

    bare_speed, fit_speed, bare_wall, fit_wall = [], [], [], []
    for repeat in range(args.repeats):
        speed, wall = bare_loop(genotype, data, recipe, device)
        bare_speed.append(speed)
        bare_wall.append(wall)
        speed, wall = with_fit(genotype, data, recipe, device)
        fit_speed.append(speed)
        fit_wall.append(wall)
        print(f"repeat {repeat + 1}: bare {bare_speed[-1]:.1f} img/s, fit {fit_speed[-1]:.1f} img/s")

    b, f = statistics.median(bare_speed), statistics.median(fit_speed)
    bw, fw = statistics.median(bare_wall), statistics.median(fit_wall)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"machine: {platform.processor() or platform.machine()}, device {where}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"model {genotype.arch_id} ({genotype.describe()}), "
        f"{args.train_samples} images x {args.epochs} epochs"
    )
    print(f"training throughput: bare {b:.1f} img/s, fit {f:.1f} img/s, ratio fit/bare {f / b:.3f}")
    print(
        f"end to end (train + per-epoch eval): bare {bw:.2f} s, fit {fw:.2f} s, ratio bare/fit {bw / fw:.3f}"
    )
    if not math.isfinite(f / b):
        raise SystemExit("no measurement")


if __name__ == "__main__":
    main()
