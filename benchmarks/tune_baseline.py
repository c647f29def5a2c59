"""A plain Ray Tune + Optuna TPE + ASHA search: the hand-written baseline of ``equal_budget.py``.

Written the way an ML engineer would in an afternoon, and kept free of nasfcn on purpose
(``tests/benchmarks/test_tune_baseline.py`` reads its imports): its own small encoder-decoder
family (depth, width, kernel, skip, upsampling, squeeze-excitation, learning rate), a plain
PyTorch loop (AdamW, one-cycle schedule with 15% warm-up, horizontal flips), ASHA with grace 1
and reduction factor 3, TPE through OptunaSearch. It reads a folder (``images/``, ``masks/``
with class-index PNGs, ``splits/{train,val,test}.txt``, optional ``classes.txt``), selects on
val, and evaluates its best checkpoint once on test. The whole run, Ray's start and the test
evaluation included, ends within ``--minutes``.

    python benchmarks/tune_baseline.py --data-folder DIR --minutes 5 --seed 0 --cpus 2 [--out r.json]

It prints one JSON line: test and val mIoU of the best configuration, the configuration, the
number of trials and the seconds it took.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

IGNORE = 255
#: Kept back from Tune's budget for picking the best, the test evaluation and Ray's shutdown
#: (31 s on the loaded 2-core machine, where 20 s let a 3-minute run end at 192 s).
RESERVE_S = 35.0
BATCH = 16

SPACE = {
    "depth": [3, 4],
    "width": [8, 16, 32],
    "kernel": [3, 5],
    "skip": ["none", "add", "concat"],
    "up": ["bilinear", "transposed"],
    "se": [False, True],
}


# ----------------------------------------------------------------------------------- data
def load_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    stems = (folder / "splits" / f"{split}.txt").read_text().split()
    images, masks = [], []
    for stem in stems:
        image_path = next((folder / "images").glob(f"{stem}.*"))
        images.append(np.asarray(Image.open(image_path).convert("RGB")))
        masks.append(np.asarray(Image.open(folder / "masks" / f"{stem}.png")))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return x, torch.from_numpy(np.stack(masks)).long()


def load_folder(folder: Path) -> dict[str, Any]:
    data = {split: load_split(folder, split) for split in ("train", "val", "test")}
    mean = data["train"][0].mean(dim=(0, 2, 3), keepdim=True)
    std = data["train"][0].std(dim=(0, 2, 3), keepdim=True)
    data = {split: ((x - mean) / std, y) for split, (x, y) in data.items()}
    classes_file = folder / "classes.txt"
    if classes_file.exists():
        classes = len([line for line in classes_file.read_text().splitlines() if line.strip()])
    else:
        labels = torch.cat([y.flatten() for _, y in data.values()])
        classes = int(labels[labels != IGNORE].max()) + 1
    return {"splits": data, "classes": classes}


# ---------------------------------------------------------------------------------- model
def conv_block(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SE(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, max(channels // 4, 4)),
            nn.ReLU(inplace=True),
            nn.Linear(max(channels // 4, 4), channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class Net(nn.Module):
    """Encoder of ``depth`` stages (channels double, max-pool between), mirrored decoder."""

    def __init__(self, classes: int, depth: int, width: int, kernel: int, skip: str, up: str, se: bool):
        super().__init__()
        chans = [width * 2**i for i in range(depth)]
        self.skip, self.up = skip, up
        self.enc = nn.ModuleList()
        cin = 3
        for c in chans:
            self.enc.append(nn.Sequential(conv_block(cin, c, kernel), SE(c) if se else nn.Identity()))
            cin = c
        self.ups, self.dec = nn.ModuleList(), nn.ModuleList()
        for c_low, c_high in zip(chans[-2::-1], chans[:0:-1], strict=True):
            if up == "transposed":
                self.ups.append(nn.ConvTranspose2d(c_high, c_low, 2, stride=2))
            else:
                self.ups.append(nn.Conv2d(c_high, c_low, 1))
            self.dec.append(conv_block(2 * c_low if skip == "concat" else c_low, c_low, kernel))
        self.head = nn.Conv2d(chans[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for i, stage in enumerate(self.enc):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        for up, dec, feat in zip(self.ups, self.dec, feats[-2::-1], strict=True):
            if self.up == "transposed":
                x = up(x)
                if x.shape[-2:] != feat.shape[-2:]:  # odd sizes: pooling floored them
                    x = F.interpolate(x, size=feat.shape[-2:])
            else:
                x = up(F.interpolate(x, size=feat.shape[-2:], mode="bilinear", align_corners=False))
            if self.skip == "add":
                x = x + feat
            elif self.skip == "concat":
                x = torch.cat([x, feat], dim=1)
            x = dec(x)
        return self.head(x)


# ------------------------------------------------------------------------------- training
def miou(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int) -> float:
    model.eval()
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    with torch.no_grad():
        for i in range(0, len(x), 64):
            pred = model(x[i : i + 64]).argmax(1)
            keep = y[i : i + 64] != IGNORE
            confusion += torch.bincount(
                y[i : i + 64][keep] * classes + pred[keep], minlength=classes * classes
            ).view(classes, classes)
    inter = confusion.diag().float()
    union = confusion.sum(0) + confusion.sum(1) - confusion.diag()
    present = union > 0
    return float((inter[present] / union[present]).mean())


def build(config: dict[str, Any], classes: int) -> nn.Module:
    keys = ("depth", "width", "kernel", "skip", "up", "se")
    return Net(classes, **{k: config[k] for k in keys})


def train_fn(config: dict[str, Any], data: dict[str, Any], max_epochs: int = 12) -> None:
    from ray import tune

    torch.set_num_threads(1)
    (x, y), (vx, vy) = data["splits"]["train"], data["splits"]["val"]
    torch.manual_seed(config["seed"])
    model = build(config, data["classes"])
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=1e-4)
    steps = (len(x) + BATCH - 1) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config["lr"], total_steps=max_epochs * steps, pct_start=0.15
    )
    best = -1.0
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            idx = order[i : i + BATCH]
            xb, yb = x[idx], y[idx]
            flip = torch.rand(len(idx)) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            yb = torch.where(flip[:, None, None], yb.flip(-1), yb)
            loss = F.cross_entropy(model(xb), yb, ignore_index=IGNORE)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        score = miou(model, vx, vy, data["classes"])
        if score > best:
            best = score
            with tempfile.TemporaryDirectory() as folder:
                torch.save(model.state_dict(), Path(folder) / "model.pt")
                tune.report(
                    {"val_miou": score, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(folder)
                )
        else:
            tune.report({"val_miou": score, "epoch": epoch})


# ---------------------------------------------------------------------------------- search
def search(args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    data = load_folder(Path(args.data_folder))
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    param_space = {k: tune.choice(v) for k, v in SPACE.items()}
    param_space["lr"] = tune.loguniform(1e-3, 3e-2)
    param_space["seed"] = args.seed
    budget = deadline - time.monotonic() - RESERVE_S
    if budget <= 0:
        raise SystemExit(f"--minutes {args.minutes} leaves no time to search after loading the data")
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(train_fn, data=data, max_epochs=args.max_epochs), {"cpu": 1}
        ),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric="val_miou",
            mode="max",
            search_alg=OptunaSearch(seed=args.seed),
            scheduler=ASHAScheduler(max_t=args.max_epochs, grace_period=1, reduction_factor=3),
            num_samples=-1,
            max_concurrent_trials=args.cpus,
            time_budget_s=budget,
        ),
        run_config=tune.RunConfig(
            storage_path=str(Path(args.storage or tempfile.mkdtemp(prefix="tune-baseline-")).resolve()),
            name=f"baseline-{args.seed}",
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute="val_miou", checkpoint_score_order="max"
            ),
        ),
    )
    results = tuner.fit()
    if not any("val_miou" in (result.metrics or {}) for result in results):
        failed = results.num_errors
        raise SystemExit(f"no trial finished an epoch in {args.minutes} minutes ({failed} failed)")
    best = results.get_best_result(metric="val_miou", mode="max", scope="all")
    checkpoint = best.get_best_checkpoint("val_miou", "max")
    model = build(best.config, data["classes"])
    with checkpoint.as_directory() as folder:
        model.load_state_dict(torch.load(Path(folder) / "model.pt"))
    torch.set_num_threads(args.cpus)
    test_x, test_y = data["splits"]["test"]
    ray.shutdown()
    return {
        "test_miou": miou(model, test_x, test_y, data["classes"]),
        "val_miou": float(best.metrics_dataframe["val_miou"].max()),
        "config": {k: v for k, v in best.config.items() if k != "seed"},
        "trials": len(results),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    start = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-folder", required=True, help="images/, masks/, splits/{train,val,test}.txt")
    parser.add_argument("--minutes", type=float, default=5.0, help="wall-clock budget of the whole run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-epochs", type=int, default=12, help="ASHA's max_t")
    parser.add_argument("--storage", help="Tune's results folder (default: a new temporary one)")
    parser.add_argument("--out", help="also write the result JSON here")
    args = parser.parse_args(argv)
    result = search(args, deadline=start + 60 * args.minutes)
    result["seconds"] = round(time.monotonic() - start, 1)
    line = json.dumps(result)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
