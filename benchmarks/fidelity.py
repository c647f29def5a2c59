"""Multi-fidelity: how well does cheap training rank architectures, and at what share of the cost?

Compares one or more reduced-fidelity tables with a full-fidelity table of the same space
(``nasfcn tabulate`` at a smaller ``--image-size`` and/or fewer ``--train-samples``, with
``--no-cache``: the result cache does not key on the image size) and prints, for every
fidelity and epoch, Spearman's rho of the architectures' mean val mIoU there against their
mean after full training (the full table's last epoch), and the cost fraction: the seconds
its runs took up to that epoch over the seconds of full training, both measured. The full
table's own epochs are listed too (the ``--fidelity epochs`` rows: ASHA's usual signal).
The goal (issue 24): rho >= 0.8 at <= 10% of the cost; EcoNAS reports 0.61 for its reduced
setting.

    .venv/bin/python benchmarks/fidelity.py --table FULL.parquet --low LOW.parquet [--low ...]

A reduced table evaluates at its own size; ``nasfcn search --fidelity`` validates at full
size. Both train the same way, so the table measures the training signal a reduced rung
sees; the validation side is the one difference (see README, "Multi-fidelity").
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasfcn.stats import fidelity
from nasfcn.table import Table, load

GOAL_RHO, GOAL_COST = 0.8, 0.10


@dataclass(frozen=True)
class Row:
    fidelity: str  # "epochs" for the full table's own epochs, else the reduced table's setting
    epoch: int
    rho: float
    cost: float  # measured seconds up to this epoch over full training's seconds
    archs: int

    def line(self) -> str:
        met = "yes" if self.rho >= GOAL_RHO and self.cost <= GOAL_COST else "no"
        return f"| {self.fidelity} | {self.epoch} | {self.rho:.3f} | {self.cost:.1%} | {self.archs} | {met} |"


def setting(table: Table) -> str:
    """A table's fidelity in words: ``32 px, 128 train images``."""
    facts = table.facts
    return f"{facts.get('image_size')} px, {facts.get('train_samples')} train images"


def rows(full: Table, low: Table, label: str) -> list[Row]:
    """Every epoch of ``low`` against ``full``'s last epoch, over the architectures both hold."""
    shared = sorted(set(full.archs()) & set(low.archs()))
    if len(shared) < 3:
        raise SystemExit(f"{low.source}: only {len(shared)} architectures in common with {full.source}")
    target = np.array([full.mean(arch) for arch in shared])
    full_s = sum(_seconds(full, arch, full.epochs) for arch in shared)
    found = []
    for epoch in range(1, low.epochs + 1):
        scores = np.array([low.mean(arch, epoch=epoch) for arch in shared])
        spent = sum(_seconds(low, arch, epoch) for arch in shared)
        rho = fidelity(np.column_stack([scores, target]))[0]  # NaN-aware, as the table report's
        found.append(Row(label, epoch, rho, spent / full_s, len(shared)))
    return found


def _seconds(table: Table, arch: str, epoch: int) -> float:
    """Mean over seeds of the seconds an architecture's runs took up to ``epoch``."""
    per_seed = [float(np.nansum(table.curve(arch, seed, "seconds")[:epoch])) for seed in table.seeds]
    return float(np.mean(per_seed)) if per_seed else math.nan


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--table", type=Path, required=True, help="The full-fidelity table (.parquet).")
    parser.add_argument("--low", type=Path, action="append", default=[], help="A reduced-fidelity table.")
    args = parser.parse_args()
    full = load(args.table)
    found = rows(full, full, f"epochs ({setting(full)})")
    for path in args.low:
        low = load(path)
        if low.space_hash != full.space_hash:
            raise SystemExit(f"{path}: built from another space than {args.table}")
        found += rows(full, low, setting(low))
    print(f"full training: {setting(full)}, {full.epochs} epochs, {len(full.seeds)} seeds")
    print(f"goal: Spearman >= {GOAL_RHO} at <= {GOAL_COST:.0%} of the cost\n")
    print("| fidelity | epoch | Spearman | cost | archs | goal |")
    print("|---|---|---|---|---|---|")
    for row in found:
        print(row.line())


if __name__ == "__main__":
    main()
