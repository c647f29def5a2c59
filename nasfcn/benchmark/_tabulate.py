"""Build a tabular benchmark: every architecture of a space (or a seeded sample) x seeds.

A table is a benchmark whose architectures are those of one space on one dataset, stored
as a search row of kind ``table`` with the space's name and YAML, so it runs, records,
fails and resumes exactly as a benchmark does (``run_benchmark``). This module only says
what a table is of and checks it before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import yaml
from rich.console import Console

from nasfcn.benchmark._archs import SpaceSpec, space_file, space_refusal
from nasfcn.benchmark._config import BenchmarkConfig, BenchmarkError, BenchmarkSummary
from nasfcn.benchmark._runner import run_benchmark
from nasfcn.search import conflict_message, show
from nasfcn.space import load_space
from nasfcn.store import get_search, open_store


@dataclass(frozen=True)
class TableSource:
    """What a table is of. On a resume each field may be None: the stored value is kept."""

    space: str | None  # a space file, or a shipped space's name
    sample: int | None = None  # a seeded uniform sample of N architectures; None: every one
    sample_seed: int | None = None  # None: 0 (and on a resume, the stored seed)


def tabulate(
    source: TableSource, config: BenchmarkConfig, console: Console | None = None
) -> BenchmarkSummary:
    """Build (or with ``config.execution.resume`` continue) the table ``config.name`` of ``source``.

    ``config`` carries how and where to train (data, seeds, epochs, resources, database);
    its ``archs`` are ignored: the space decides them. A space that cannot be listed, or is
    too large, is refused with the fix before anything is written.
    """
    if len(config.datasets) != 1:
        raise BenchmarkError(f"--data: a table is of one dataset, got {len(config.datasets)}")
    if config.execution.resume:
        _check_resume(source, config)
        return run_benchmark(replace(config, archs=(), kind="table"), console)
    if source.space is None:
        raise BenchmarkError("--space: give the space to tabulate (a YAML file or a shipped space's name)")
    if source.sample is None and source.sample_seed is not None:
        raise BenchmarkError("--sample-seed only goes with --sample N (every architecture needs no seed)")
    spec = SpaceSpec(str(space_file(source.space).resolve()), source.sample, source.sample_seed or 0)
    space = load_space(spec.space)
    if refusal := space_refusal(space, source.sample, "--sample N"):
        raise BenchmarkError(f"--space {source.space}: {refusal}")
    return run_benchmark(replace(config, archs=(spec.text,), kind="table"), console)


def _check_resume(source: TableSource, config: BenchmarkConfig) -> None:
    """A resumed table trains its stored plan: a --space, --sample or --sample-seed given again
    must say the same as the stored one (the plan itself is never rebuilt from the file)."""
    store = open_store(config.execution.db, create=False)
    try:
        stored = get_search(store, config.name)
    finally:
        store.dispose()
    if stored is None or stored["kind"] != "table":
        return  # run_benchmark refuses it, naming the database
    saved: dict[str, Any] = stored["config"]
    conflicts = []
    if source.space is not None and stored["space_yaml"] and _other_space(source.space, stored["space_yaml"]):
        conflicts.append(f"--space {source.space} differs from the stored space {stored['space_name']}")
    for option, given, key in (
        ("--sample", source.sample, "sample"),
        ("--sample-seed", source.sample_seed, "sample_seed"),
    ):
        if given is not None and given != saved.get(key):
            conflicts.append(f"{option} {show(given)} differs from the stored {show(saved.get(key))}")
    if conflicts:
        raise BenchmarkError(conflict_message(conflicts, "table"))


def _other_space(path_or_name: str, stored_yaml: str) -> bool:
    """The space file says something else than the stored one (layout and comments aside)."""
    return yaml.safe_load(load_space(space_file(path_or_name)).text) != yaml.safe_load(stored_yaml)
