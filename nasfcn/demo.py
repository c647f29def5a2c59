"""``make demo``: what nasfcn can do today, on the embedded defaults, in seconds on a CPU.

For now it validates the shipped spaces, then draws architectures from ``fcn_tiny.yaml``
and prints what each costs. Later stages (search, leaderboard, export) extend it.
"""

from __future__ import annotations

from pathlib import Path

from nasfcn.cli import console, spaces_sample, spaces_show
from nasfcn.space import load_space, shipped_spaces

TINY = Path(__file__).resolve().parent.parent / "search_spaces" / "fcn_tiny.yaml"


def main() -> None:
    console.rule("nasfcn demo: search spaces and the cost of their architectures")
    for path in shipped_spaces():
        space = load_space(path)
        console.print(f"[green]ok[/green] {path.name}: {space.size():,} architectures")
    spaces_show(TINY)
    spaces_sample(TINY, n=6, seed=0, size=64, classes=6, device="cpu")
    console.print(
        "\nNext: [bold]nasfcn spaces sample search_spaces/fcn_small.yaml --n 10[/bold] "
        "or write your own space (search_spaces/README.md)."
    )


if __name__ == "__main__":
    main()
