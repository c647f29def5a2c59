"""Multi-fidelity: how well does cheap training rank architectures, and at what share of the cost?

Compares one or more reduced-fidelity tables with a full-fidelity table of the same space
(``nasfcn tabulate`` at a smaller ``--image-size`` and/or fewer ``--train-samples``; the result
cache keys on both, so no run is taken from the full table) and prints, for every
fidelity and epoch, Spearman's rho of the architectures' mean val mIoU there against their
mean after full training (the full table's last epoch), with a 95% bootstrap interval, and the
cost fraction: the seconds its runs took up to that epoch over the seconds of full training,
both measured (``nasfcn.table.compare_tables``, as ``nasfcn tabulate compare``). The full
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
from dataclasses import dataclass
from pathlib import Path

from nasfcn.table import RankAgreement, Table, TableError, compare_tables, load

GOAL_RHO, GOAL_COST = 0.8, 0.10


@dataclass(frozen=True)
class Row:
    fidelity: str  # "epochs" for the full table's own epochs, else the reduced table's setting
    epoch: int
    agreement: RankAgreement  # this epoch of the reduced table against full training's last

    def line(self) -> str:
        a = self.agreement
        met = "yes" if a.spearman >= GOAL_RHO and a.cost_ratio <= GOAL_COST else "no"
        return (
            f"| {self.fidelity} | {self.epoch} | {a.spearman:.3f} "
            f"[{a.spearman_low:.2f}, {a.spearman_high:.2f}] | {a.cost_ratio:.1%} | {a.n} | {met} |"
        )


def setting(table: Table) -> str:
    """A table's fidelity in words: ``32 px, 128 train images``."""
    facts = table.facts
    return f"{facts.get('image_size')} px, {facts.get('train_samples')} train images"


def rows(full: Table, low: Table, label: str) -> list[Row]:
    """Every epoch of ``low`` against ``full``'s last epoch, over the architectures both hold."""
    try:
        return [
            Row(label, epoch, compare_tables(full, low, epoch_first=full.epochs, epoch_second=epoch))
            for epoch in range(1, low.epochs + 1)
        ]
    except TableError as err:
        raise SystemExit(str(err)) from None


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
        found += rows(full, low, setting(low))
    print(f"full training: {setting(full)}, {full.epochs} epochs, {len(full.seeds)} seeds")
    print(f"goal: Spearman >= {GOAL_RHO} at <= {GOAL_COST:.0%} of the cost\n")
    print("| fidelity | epoch | Spearman [95% CI] | cost | archs | goal |")
    print("|---|---|---|---|---|---|")
    for row in found:
        print(row.line())


if __name__ == "__main__":
    main()
