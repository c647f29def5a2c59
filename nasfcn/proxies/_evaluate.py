"""Proxies over trained architectures, on a minibatch of the data they were trained on.

The architectures and their quality come from a table (``table_candidates``: every
architecture, its mean final val mIoU over seeds) or from a search's completed trials
(``search_candidates``: the mean final val mIoU of each architecture's completed trials).
The data are rebuilt with the options the run stored (a table: its dataset spec, image
size and sample counts, data seed 0, as ``nasfcn tabulate`` built them; a search: the
same fields of its config and its seed); the minibatch is ``batch_size`` training images
drawn by ``seed``, and every network is initialised from ``seed``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from nasfcn import catalogue
from nasfcn.data import DataConfig, DatasetBundle, load_dataset
from nasfcn.genotype import Genotype
from nasfcn.proxies._core import PROXIES, Batch, ProxyError, ProxyResult, batch_input, compute, minibatch

if TYPE_CHECKING:  # the table package loads scipy (its report): a search's trials never need it
    from nasfcn.table import Table

#: Images in the minibatch unless told otherwise: enough for an N x N kernel to tell networks
#: apart, and a few seconds of forwards and backwards for a small FCN on one CPU core.
BATCH_SIZE = 16

Progress = Callable[[int, int, str], None]  # (architectures done, total, the one just done)
#: Scores already held, per architecture and proxy (``nasfcn proxies evaluate --search``: the store's).
Held = Mapping[str, Mapping[str, ProxyResult]]
#: The minibatch's shape (``batch_input``) -> the scores held on a minibatch of that shape.
HeldLookup = Callable[[str], Held]


@dataclass(frozen=True)
class Candidates:
    """Trained architectures, how good each turned out, and the data they were trained on."""

    source: str  # a table file, or "search NAME"
    genotypes: dict[str, Genotype]  # arch_id -> genotype, in a fixed order
    quality: dict[str, float]  # arch_id -> mean final val mIoU (NaN: no finished run)
    dataset: str  # the dataset spec
    data: DataConfig
    class_names: tuple[str, ...] | None  # what the run saw; None when it did not record them


@dataclass(frozen=True)
class Scores:
    """Every proxy's value and seconds for each architecture scored, next to its quality."""

    source: str
    archs: tuple[str, ...]
    quality: np.ndarray  # mean final val mIoU, per architecture
    values: dict[str, np.ndarray]  # proxy -> value per architecture (NaN where it raised)
    seconds: dict[str, np.ndarray]  # proxy -> seconds per architecture
    arch_seconds: np.ndarray  # per architecture: building the network and every proxy
    errors: dict[str, dict[str, str]]  # proxy -> architecture -> error
    batch_size: int
    image_size: tuple[int, int]
    seed: int
    data_seconds: float  # building the dataset and drawing the minibatch, once
    computed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # arch -> proxies computed now


def table_candidates(table: Table) -> Candidates:
    """Every architecture of a table, its mean final val mIoU over seeds, and the table's data."""
    facts = table.facts
    missing = [key for key in ("dataset", "image_size", "train_samples") if facts.get(key) is None]
    if missing:
        raise ProxyError(f"{table.source}: the table metadata lacks {', '.join(missing)}; export it again")
    config = facts.get("config") or {}
    options = {"image_size": facts["image_size"], "train_samples": facts["train_samples"], "seed": 0}
    if config.get("val_samples") is not None:
        options["val_samples"] = config["val_samples"]
    archs = table.archs()
    return Candidates(
        source=table.source,
        genotypes={arch: table.genotype(arch) for arch in archs},
        quality={arch: float(mean) for arch, mean in zip(archs, table.means(), strict=True)},
        dataset=str(facts["dataset"]),
        data=_data_config(options, table.source),
        class_names=tuple(table.class_names),
    )


def search_candidates(details: Mapping[str, Any], trials: pd.DataFrame) -> Candidates:
    """The completed trials of a search (``search_details`` and ``leaderboard_frame`` of the store):
    each architecture once, its quality the mean final val mIoU of its completed trials."""
    source = f"search {details['name']}"
    config = details.get("config") or {}
    done = trials[trials["status"] == "completed"]
    if done.empty:
        raise ProxyError(f"{source} has no completed trials to judge proxies against")
    genotypes = {
        arch: Genotype.from_json(text)
        for arch, text in zip(done["arch_id"], done["genotype_json"], strict=True)
    }
    means = done.groupby("arch_id", sort=False)["final_miou"].mean()
    options = {key: config[key] for key in ("image_size", "train_samples", "val_samples") if config.get(key)}
    return Candidates(
        source=source,
        genotypes=genotypes,
        quality={arch: float(means[arch]) for arch in genotypes},
        dataset=str(config.get("data") or details["dataset"]),
        data=_data_config({**options, "seed": int(config.get("seed") or 0)}, source),
        class_names=details.get("class_names"),
    )


def _data_config(options: dict[str, Any], source: str) -> DataConfig:
    try:
        return DataConfig(**options)
    except (TypeError, ValueError) as err:
        raise ProxyError(f"{source}: its stored data options do not make a dataset ({err})") from err


def candidate_data(candidates: Candidates) -> DatasetBundle:
    """The candidates' dataset, rebuilt; refused when its classes are not those the run saw."""
    bundle = load_dataset(candidates.dataset, candidates.data)
    if candidates.class_names is not None and tuple(bundle.class_names) != candidates.class_names:
        raise ProxyError(
            f"{candidates.source}: trained on classes {', '.join(candidates.class_names)}, "
            f"but {candidates.dataset} now gives {', '.join(bundle.class_names)}"
        )
    return bundle


def trial_batch(bundle: DatasetBundle, seed: int) -> Batch:
    """The minibatch a search scores its networks on: ``BATCH_SIZE`` training images drawn by
    ``seed`` (every one when there are fewer)."""
    return minibatch(bundle, min(BATCH_SIZE, len(bundle.train)), seed)


def sample_archs(archs: Sequence[str], sample: int | None, seed: int) -> list[str]:
    """Every architecture, or a seeded uniform sample of ``sample`` of them (in the given order)."""
    if sample is None:
        return list(archs)
    if not 1 <= sample <= len(archs):
        raise ProxyError(f"--sample {sample}: there are {len(archs)} architectures; give 1 to {len(archs)}")
    chosen = np.random.default_rng(seed).choice(len(archs), size=sample, replace=False)
    return [archs[i] for i in sorted(chosen)]


def score(
    candidates: Candidates,
    names: Sequence[str] | None = None,
    sample: int | None = None,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
    held: HeldLookup | None = None,
) -> Scores:
    """``compute`` every proxy of ``names`` (all by default) for each candidate architecture.

    ``held`` is asked once, with the minibatch's shape, for the scores already held (arch ->
    proxy -> result, with this seed); those are taken as they are instead of computed, and
    ``Scores.computed`` names what was computed now (to be stored).
    """
    chosen = tuple(catalogue.PROXIES.names() if names is None else names)
    for name in chosen:
        PROXIES.get(name)  # an unknown name is refused before the data are built
    archs = sample_archs(list(candidates.genotypes), sample, seed)
    start = time.perf_counter()
    batch = minibatch(candidate_data(candidates), batch_size, seed)
    data_seconds = time.perf_counter() - start
    known_scores = held(batch_input(batch)) if held is not None else {}
    values = {name: np.full(len(archs), np.nan) for name in chosen}
    seconds = {name: np.full(len(archs), np.nan) for name in chosen}
    arch_seconds = np.zeros(len(archs))
    errors: dict[str, dict[str, str]] = {name: {} for name in chosen}
    computed: dict[str, tuple[str, ...]] = {}
    for i, arch in enumerate(archs):
        known = known_scores.get(arch, {})
        missing = tuple(name for name in chosen if name not in known)
        start = time.perf_counter()
        results = dict(compute(candidates.genotypes[arch], batch, missing, seed, device)) if missing else {}
        arch_seconds[i] = time.perf_counter() - start if missing else 0.0
        took = [known[n].seconds for n in chosen if n in known]
        arch_seconds[i] += sum(t for t in took if math.isfinite(t))
        if missing:
            computed[arch] = missing
        for name in chosen:
            result = results.get(name) or known[name]
            values[name][i], seconds[name][i] = result.value, result.seconds
            if result.error is not None:
                errors[name][arch] = result.error
        if progress is not None:
            progress(i + 1, len(archs), arch)
    return Scores(
        source=candidates.source,
        archs=tuple(archs),
        quality=np.asarray([candidates.quality.get(a, math.nan) for a in archs], dtype=np.float64),
        values=values,
        seconds=seconds,
        arch_seconds=arch_seconds,
        errors=errors,
        batch_size=batch_size,
        image_size=batch.image_size,
        seed=seed,
        data_seconds=data_seconds,
        computed=computed,
    )
