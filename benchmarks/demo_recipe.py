"""Which training settings let short CPU runs learn? Fixed architectures x settings x seeds.

Draws ``--archs`` architectures of a space (``space.sample(0..N-1)``, their searched training
knobs dropped so every setting trains the same networks), trains each with every
``--setting`` and every seed in this process (``nasfcn.train.fit``, one torch thread, no
Ray), and prints per setting the mean best and final val mIoU, how many runs stayed at the
background level, and the CPU seconds a run took (``time.process_time``: on a loaded
machine CPU seconds, unlike wall seconds, stay close to what an idle core needs).

    python benchmarks/demo_recipe.py --space search_spaces/fcn_tiny.yaml --archs 3 --seeds 2 \\
        --setting demo:size=64,n=768,epochs=6,batch=16,lr=3e-3 \\
        --setting hot:size=32,n=768,epochs=12,batch=8,lr=1e-2,warmup=0.15 --out runs.jsonl

A setting is ``NAME:key=value,...`` with keys ``size`` (image side), ``n`` (train images),
``epochs``, ``batch``, ``lr``, ``wd`` (weight decay), ``optimizer`` (adamw | sgd),
``schedule`` (cosine | poly | constant), ``warmup`` (share of the run spent warming up),
``jitter`` (0 turns scale jitter off). Every finished run is appended to ``--out`` (JSON
lines) and read back on a rerun, so an interrupted sweep resumes where it stopped.
``--genotype FILE`` (repeatable) trains the networks of those genotype JSON files instead of
samples of ``--space``, e.g. the short-run probes of ``benchmarks/genotypes/``:

    python benchmarks/demo_recipe.py --genotype benchmarks/genotypes/unet3_w16_b2.json \\
        --data folder:runs/equal_budget/data/shapes-s0 --seeds 2 \\
        --setting warm:n=512,epochs=12,lr=4.1e-3,warmup=0.15,jitter=0 \\
        --setting old:n=512,epochs=12,lr=4.1e-3 --out probes.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from nasfcn.data import DataConfig, DatasetBundle, load_dataset
from nasfcn.genotype import Genotype, TrainGene
from nasfcn.space import load_space
from nasfcn.train import TrainRecipe, fit

ROOT = Path(__file__).resolve().parent.parent
#: val mIoU at or below which a run counts as "background only" (shapes: ~0.15-0.17)
BACKGROUND_LEVEL = 0.2
KEYS = ("size", "n", "epochs", "batch", "lr", "wd", "optimizer", "schedule", "warmup", "jitter")
DEFAULTS: dict[str, str] = {
    "size": "64",
    "n": "768",
    "epochs": "6",
    "batch": "16",
    "lr": "3e-3",
    "wd": "1e-4",
    "optimizer": "adamw",
    "schedule": "cosine",
    "warmup": "0",
    "jitter": "1",
}


@dataclass(frozen=True)
class Setting:
    name: str
    values: tuple[tuple[str, str], ...]  # every key of KEYS, in order

    @classmethod
    def parse(cls, text: str) -> Setting:
        name, _, rest = text.partition(":")
        values = dict(DEFAULTS)
        for item in filter(None, rest.split(",")):
            key, _, value = item.partition("=")
            if key not in KEYS:
                raise SystemExit(f"--setting {text!r}: unknown key {key!r}; known: {', '.join(KEYS)}")
            values[key] = value
        return cls(name, tuple((key, values[key]) for key in KEYS))

    def get(self, key: str) -> str:
        return dict(self.values)[key]

    def data_config(self, data_seed: int) -> DataConfig:
        jitter = float(self.get("jitter")) > 0
        return DataConfig(
            image_size=int(self.get("size")),
            train_samples=int(self.get("n")),
            val_samples=128,
            seed=data_seed,
            scale_range=(0.75, 1.25) if jitter else (1.0, 1.0),
        )

    def recipe(self, seed: int) -> TrainRecipe:
        epochs = int(self.get("epochs"))
        return TrainRecipe(
            epochs=epochs,
            batch_size=int(self.get("batch")),
            lr=float(self.get("lr")),
            weight_decay=float(self.get("wd")),
            optimizer=self.get("optimizer"),
            schedule=self.get("schedule"),
            warmup_epochs=float(self.get("warmup")) * epochs,
            seed=seed,
            keep_checkpoint=False,
        )


def architectures(space: Path, seeds: list[int]) -> list[Genotype]:
    """Seeded samples of the space without their training knobs: the recipe sets those."""
    loaded = load_space(space)
    return [replace(loaded.sample(seed), train=TrainGene()) for seed in seeds]


def from_file(path: Path) -> Genotype:
    """A genotype JSON file (``nasfcn spaces sample --out``, a bundle's genotype.json) without its
    training knobs."""
    try:
        return replace(Genotype.from_json(path.read_text(encoding="utf-8")), train=TrainGene())
    except (OSError, ValueError) as err:
        raise SystemExit(f"--genotype {path}: {err}") from None


def train_one(genotype: Genotype, data: DatasetBundle, setting: Setting, seed: int) -> dict[str, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fit(genotype, data, setting.recipe(seed), device="cpu")
    return {
        "setting": setting.name,
        "values": dict(setting.values),
        "arch_id": genotype.arch_id,
        "seed": seed,
        "miou": [round(epoch.val.miou, 4) for epoch in result.history],
        "train_loss": [round(epoch.train_loss, 4) for epoch in result.history],
        "cpu_s": round(time.process_time() - cpu, 2),
        "wall_s": round(time.perf_counter() - wall, 2),
    }


def run_key(setting: Setting, arch_id: str, seed: int) -> str:
    return json.dumps([dict(setting.values), arch_id, seed], sort_keys=True)


def summarise(settings: list[Setting], runs: list[dict[str, Any]]) -> None:
    header = "| setting | runs | best val mIoU (mean, min-max) | final | at background | CPU s/run |"
    print("\n" + header)
    print("|---|---|---|---|---|---|")
    for setting in settings:
        mine = [r for r in runs if r["values"] == dict(setting.values)]
        if not mine:
            continue
        best = [max(r["miou"]) for r in mine]
        final = [r["miou"][-1] for r in mine]
        stuck = sum(b <= BACKGROUND_LEVEL for b in best)
        print(
            f"| {setting.name} | {len(mine)} | {statistics.mean(best):.3f} ({min(best):.3f}-{max(best):.3f}) "
            f"| {statistics.mean(final):.3f} | {stuck} | {statistics.mean(r['cpu_s'] for r in mine):.1f} |"
        )
    print("\nper architecture (best val mIoU, seeds in order):")
    for arch in dict.fromkeys(r["arch_id"] for r in runs):
        cells = []
        for setting in settings:
            mine = [r for r in runs if r["arch_id"] == arch and r["values"] == dict(setting.values)]
            values = [max(r["miou"]) for r in mine]
            cells.append(f"{setting.name} " + "/".join(f"{v:.2f}" for v in values))
        print(f"  {arch}: " + "; ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", type=Path, default=ROOT / "search_spaces" / "fcn_tiny.yaml")
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--archs", type=int, default=3)
    parser.add_argument("--first-arch", type=int, default=0, help="first sample seed of the space")
    parser.add_argument("--arch-seeds", help="sample seeds of the space, e.g. 2,3,15 (instead of --archs)")
    parser.add_argument(
        "--genotype",
        type=Path,
        action="append",
        help="a genotype JSON file to train (repeatable; instead of sampling --space)",
    )
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--setting", action="append", required=True, help="NAME:key=value,...")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, appended and resumed")
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(1)  # what a search trial gets (cpus_per_trial 1)
    settings = [Setting.parse(text) for text in args.setting]
    arch_seeds = (
        [int(seed) for seed in args.arch_seeds.split(",")]
        if args.arch_seeds
        else list(range(args.first_arch, args.first_arch + args.archs))
    )
    if args.genotype:
        genotypes = [from_file(path) for path in args.genotype]
    else:
        genotypes = architectures(args.space, arch_seeds)
    runs = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    done = {run_key(Setting(r["setting"], tuple(r["values"].items())), r["arch_id"], r["seed"]) for r in runs}
    bundles: dict[DataConfig, DatasetBundle] = {}
    for setting in [] if args.summary_only else settings:
        config = setting.data_config(args.data_seed)
        for genotype in genotypes:
            for seed in range(args.seeds):
                if run_key(setting, genotype.arch_id, seed) in done:
                    continue
                if config not in bundles:
                    bundles[config] = load_dataset(args.data, config)
                run = train_one(genotype, bundles[config], setting, seed)
                runs.append(run)
                with args.out.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(run) + "\n")
                print(
                    f"{setting.name} {genotype.arch_id} seed {seed}: "
                    + " ".join(f"{m:.2f}" for m in run["miou"])
                    + f"  ({run['cpu_s']:.0f} CPU s)",
                    flush=True,
                )
    relevant = [r for r in runs if r["arch_id"] in {g.arch_id for g in genotypes}]
    summarise(settings, relevant)


if __name__ == "__main__":
    main()
