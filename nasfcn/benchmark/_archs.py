"""Which architectures a benchmark runs: ``--archs`` specs resolved to genotypes.

Specs, comma-separated and combinable:

- ``search:NAME:topK`` — the K best distinct architectures of a stored search (by best
  val mIoU; with the training knobs they were searched with). ``search:NAME`` is top 1.
- ``ref:NAME`` or ``ref:NAME:WIDTH`` — a reference design (``nasfcn spaces refs``).
- a path ending in ``.json`` — a genotype file (``nasfcn spaces refs --out``, examples/).
- a 12-character ``arch_id`` already in the database.
- ``space:PATH_OR_NAME`` — every architecture of a space (a YAML file, or the name of a
  shipped space): every distinct genotype it can produce, network and training knobs.
  ``space:PATH:sample=N[:seed=S]`` — a seeded uniform sample of N distinct ones. This is
  what ``nasfcn tabulate`` trains.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from nasfcn.benchmark._config import BenchmarkError
from nasfcn.genotype import ARCH_ID_LENGTH, Genotype, GenotypeError
from nasfcn.references import DEFAULT_WIDTH, REFERENCES
from nasfcn.registry import UnknownChoiceError
from nasfcn.space import SearchSpace, load_space, shipped_spaces
from nasfcn.store import Store, architecture_genotype, leaderboard_frame

_ARCH_ID = re.compile(rf"^[0-9a-f]{{{ARCH_ID_LENGTH}}}$")
_TOP = re.compile(r"^top(\d+)$")
_SPACE_OPTION = re.compile(r"^(sample|seed)=(\d+)$")

#: The most architectures one table trains (all of a space, or ``sample=N``): about a day of
#: one GPU at a few seconds per run and three seeds; a larger space is sampled.
TABLE_LIMIT = 5_000
#: Spaces up to this size are listed to draw an exact uniform sample (a few seconds);
#: larger or continuous ones are sampled by distinct draws of their own random sampler.
SAMPLE_BY_LISTING = 50_000


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
    if spec.startswith("space:"):
        return space_archs(parse_space_spec(spec))
    if _ARCH_ID.match(spec):
        text = architecture_genotype(store, spec)
        if text is None:
            raise BenchmarkError(f"--archs {spec}: no architecture with that id in {store.masked_url}")
        return [BenchArch(spec, Genotype.from_json(text))]
    raise BenchmarkError(
        f"--archs {spec!r} is not an architecture spec: use search:NAME:topK, ref:NAME[:WIDTH], "
        "a genotype .json file, space:PATH[:sample=N[:seed=S]] or a 12-character arch_id"
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


@dataclass(frozen=True)
class SpaceSpec:
    """Every architecture of a space, or a seeded sample of ``sample`` of them (``space:`` specs)."""

    space: str  # a space file, or the name of a shipped space
    sample: int | None = None
    seed: int = 0

    @property
    def text(self) -> str:
        """The spec as ``--archs`` takes it."""
        sample = "" if self.sample is None else f":sample={self.sample}:seed={self.seed}"
        return f"space:{self.space}{sample}"


def parse_space_spec(spec: str) -> SpaceSpec:
    """``space:PATH[:sample=N[:seed=S]]``; options are read from the right, so a path may hold ``:``."""
    parts = spec.split(":")[1:]
    options: dict[str, int] = {}
    while parts and (match := _SPACE_OPTION.match(parts[-1])):
        if match.group(1) in options:
            raise BenchmarkError(f"--archs {spec}: {match.group(1)}= is given twice")
        options[match.group(1)] = int(match.group(2))
        parts.pop()
    path = ":".join(parts)
    if not path:
        raise BenchmarkError(f"--archs {spec}: expected space:PATH_OR_NAME[:sample=N[:seed=S]]")
    if "seed" in options and "sample" not in options:
        raise BenchmarkError(f"--archs {spec}: seed= only goes with sample=N")
    return SpaceSpec(path, options.get("sample"), options.get("seed", 0))


def space_file(path_or_name: str) -> Path:
    """The space file a ``space:`` spec or ``--space`` names: a path, or a shipped space's name."""
    path = Path(path_or_name)
    if path.is_file() or path.suffix in (".yaml", ".yml") or "/" in path_or_name:
        return path  # load_space names a missing file
    shipped = {found.stem: found for found in shipped_spaces()}
    if path_or_name in shipped:
        return shipped[path_or_name]
    names = ", ".join(sorted(shipped)) or "none found"
    raise BenchmarkError(f"space {path_or_name!r}: no such file and no shipped space of that name ({names})")


def space_refusal(
    space: SearchSpace, sample: int | None, sample_option: str = "space:PATH:sample=N"
) -> str | None:
    """Why a table cannot train this space (or this sample of it); None: it can.

    Counted, not listed, so a huge space is refused at once. ``sample_option`` is how the
    caller's user asks for a sample (``--sample N`` on ``nasfcn tabulate``).
    """
    size = space.size(include_train=True)
    if sample is not None:
        if not 1 <= sample <= TABLE_LIMIT:
            return f"{sample_option}: N must be between 1 and {TABLE_LIMIT:,}, got {sample}"
        if not math.isinf(size) and sample > size:
            return (
                f"space {space.name} has {int(size):,} architectures, fewer than the {sample:,} asked for: "
                "train every one of them, without a sample"
            )
        return None
    if math.isinf(size):
        knobs = continuous_knobs(space)
        return (
            f"space {space.name} cannot be listed: {', '.join(knobs)} "
            f"{'is a continuous range' if len(knobs) == 1 else 'are continuous ranges'}; give "
            f"{'it' if len(knobs) == 1 else 'each'} a value or a list of choices, or train a seeded "
            f"sample with {sample_option}"
        )
    if size > TABLE_LIMIT:
        return (
            f"space {space.name} has {int(size):,} architectures, more than the {TABLE_LIMIT:,} a table "
            f"trains; train a seeded sample with {sample_option}, or fix some knobs "
            "(nasfcn spaces show counts them)"
        )
    return None


def continuous_knobs(space: SearchSpace) -> list[str]:
    """The knobs of ``space`` that take any value of a float range (they cannot be listed)."""
    return [path for path in space.order if space.knobs[path].values() is None]


def space_archs(spec: SpaceSpec) -> list[BenchArch]:
    """Every architecture of the space, or a seeded uniform sample of distinct ones, in a fixed order."""
    space = load_space(space_file(spec.space))
    if refusal := space_refusal(space, spec.sample):
        raise BenchmarkError(f"--archs {spec.text}: {refusal}")
    if spec.sample is None:
        genotypes = list(space.iter_genotypes(include_train=True))
    else:
        genotypes = sample_genotypes(space, spec.sample, spec.seed)
    return [BenchArch(_table_label(genotype), genotype) for genotype in genotypes]


def sample_genotypes(space: SearchSpace, count: int, seed: int) -> list[Genotype]:
    """``count`` distinct genotypes of ``space``, the same for the same seed.

    A space of up to ``SAMPLE_BY_LISTING`` architectures is listed and sampled uniformly
    (kept in listing order); a larger or continuous one by distinct draws of its random
    sampler (uniform over each knob's choices), in draw order.
    """
    size = space.size(include_train=True)
    rng = random.Random(seed)
    if size <= SAMPLE_BY_LISTING:
        listed = list(space.iter_genotypes(include_train=True))
        return [listed[i] for i in sorted(rng.sample(range(len(listed)), count))]
    found: dict[str, Genotype] = {}
    for _ in range(max(1_000, 50 * count)):
        genotype = space.sample(rng.getrandbits(63))
        found.setdefault(genotype.trial_key, genotype)
        if len(found) == count:
            return list(found.values())
    raise BenchmarkError(
        f"space {space.name}: only {len(found):,} distinct architectures in {max(1_000, 50 * count):,} "
        f"random draws, fewer than the {count:,} asked for; ask for fewer"
    )


def _table_label(genotype: Genotype) -> str:
    """A table's name for a run's architecture: its arch_id, or its trial_key when it carries
    training knobs (then one network appears with several knob settings)."""
    return genotype.trial_key if genotype.train.as_dict() else genotype.arch_id


def space_source(specs: tuple[str, ...]) -> SpaceSpec | None:
    """The space a benchmark of exactly one ``space:`` spec trains (a table); None otherwise."""
    return parse_space_spec(specs[0]) if len(specs) == 1 and specs[0].startswith("space:") else None
