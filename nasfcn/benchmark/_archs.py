"""Which architectures a benchmark runs: ``--archs`` specs resolved to genotypes.

Specs, comma-separated and combinable:

- ``search:NAME:topK`` — the K best distinct architectures of a stored search (by best
  val mIoU; with the training knobs they were searched with). ``search:NAME`` is top 1.
- ``ref:NAME`` or ``ref:NAME:WIDTH`` — a reference design (``nasfcn spaces refs``).
- a path ending in ``.json`` — a genotype file (``nasfcn spaces refs --out``, examples/).
- a 12-character ``arch_id`` already in the database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from nasfcn.benchmark._config import BenchmarkError
from nasfcn.genotype import ARCH_ID_LENGTH, Genotype, GenotypeError
from nasfcn.references import DEFAULT_WIDTH, REFERENCES
from nasfcn.registry import UnknownChoiceError
from nasfcn.store import Store, architecture_genotype, leaderboard_frame

_ARCH_ID = re.compile(rf"^[0-9a-f]{{{ARCH_ID_LENGTH}}}$")
_TOP = re.compile(r"^top(\d+)$")


@dataclass(frozen=True)
class BenchArch:
    """One architecture of a benchmark and the name its results go by."""

    label: str
    genotype: Genotype
    reference: str | None = None  # the reference design's name, when it is one


def resolve_archs(specs: tuple[str, ...], store: Store, ref_width: int | None = None) -> list[BenchArch]:
    """Genotypes for the specs, in order, each network + knobs once (the first label wins)."""
    found: list[BenchArch] = []
    for spec in (s.strip() for s in specs):
        if not spec:
            continue
        for arch in _resolve(spec, store, ref_width):
            if all(arch.genotype.trial_key != seen.genotype.trial_key for seen in found):
                found.append(arch)
    if not found:
        raise BenchmarkError("--archs resolved to no architecture")
    return found


def _resolve(spec: str, store: Store, ref_width: int | None) -> list[BenchArch]:
    if spec.startswith("search:"):
        return _from_search(spec, store)
    if spec.startswith("ref:"):
        return [_from_reference(spec, ref_width)]
    if spec.endswith(".json"):
        return [_from_file(Path(spec))]
    if _ARCH_ID.match(spec):
        text = architecture_genotype(store, spec)
        if text is None:
            raise BenchmarkError(f"--archs {spec}: no architecture with that id in {store.masked_url}")
        return [BenchArch(spec, Genotype.from_json(text))]
    raise BenchmarkError(
        f"--archs {spec!r} is not an architecture spec: use search:NAME:topK, ref:NAME[:WIDTH], "
        "a genotype .json file or a 12-character arch_id"
    )


def _from_search(spec: str, store: Store) -> list[BenchArch]:
    parts = spec.split(":")
    name, count = parts[1], 1
    if len(parts) == 3:
        match = _TOP.match(parts[2])
        if match is None or int(match.group(1)) < 1:
            raise BenchmarkError(f"--archs {spec}: the last part must be topK with K >= 1, e.g. top5")
        count = int(match.group(1))
    elif len(parts) != 2 or not name:
        raise BenchmarkError(f"--archs {spec}: expected search:NAME or search:NAME:topK")
    board = leaderboard_frame(store, name)
    board = board[board["best_miou"].notna()].drop_duplicates("arch_id").head(count)
    if board.empty:
        raise BenchmarkError(f"--archs {spec}: search {name!r} has no trial with a result yet")
    return [
        BenchArch(str(row.arch_id), Genotype.from_json(row.genotype_json), row.reference or None)
        for row in board.itertuples()
    ]


def _from_reference(spec: str, ref_width: int | None) -> BenchArch:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise BenchmarkError(f"--archs {spec}: expected ref:NAME or ref:NAME:WIDTH")
    try:
        width = int(parts[2]) if len(parts) == 3 else (ref_width or DEFAULT_WIDTH)
        genotype = REFERENCES.get(parts[1]).genotype(width)
    except (UnknownChoiceError, ValueError) as err:
        raise BenchmarkError(f"--archs {spec}: {err}") from None
    label = parts[1] if len(parts) == 2 else f"{parts[1]}@{width}"
    return BenchArch(label, genotype, parts[1])


def _from_file(path: Path) -> BenchArch:
    try:
        genotype = Genotype.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchmarkError(f"--archs {path}: file not found") from None
    except (GenotypeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise BenchmarkError(f"--archs {path}: not a genotype file: {err}") from None
    return BenchArch(path.stem, genotype)
