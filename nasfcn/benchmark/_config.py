"""What a benchmark is asked to run (``BenchmarkConfig``) and how it ended (``BenchmarkSummary``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nasfcn.errors import NasfcnError, raise_problems
from nasfcn.search import (
    EXECUTION,
    Execution,
    ResumeRule,
    check_explicit,
    name_problem,
    scale_range_problems,
)
from nasfcn.train import TrainRecipe


class BenchmarkError(NasfcnError, ValueError):
    """A benchmark option or architecture spec is invalid; the message says how to fix it."""


#: The search-row kinds a benchmark runs as, and the command that runs (and resumes) each.
COMMANDS = {"benchmark": "nasfcn benchmark", "table": "nasfcn tabulate"}
KINDS = tuple(COMMANDS)

#: On --resume: what a benchmark keeps (its plan and how each run trains) and what may change.
BENCHMARK_RESUME = ResumeRule(
    kept=(
        "archs",
        "datasets",
        "seeds",
        "epochs",
        "image_size",
        "train_samples",
        "val_samples",
        "scale_range",
        "ref_width",
        "recipe",
    ),
    adjustable=(
        "execution.ray_address",
        "execution.cpus_per_trial",
        "execution.gpus_per_trial",
        "execution.concurrency",
        "execution.storage_path",
        "execution.cache",
        "execution.device",
    ),
    options={
        "datasets": "--data",
        "scale_range": "--scale-jitter",
        "execution.cache": "cache",
        "recipe.lr": "--lr",
        "recipe.batch_size": "--batch-size",
    },
    noun="benchmark",
)


@dataclass(frozen=True)
class BenchmarkConfig:
    """Every architecture x dataset x seed, trained the same way (the CLI maps onto these)."""

    name: str
    archs: tuple[str, ...]  # specs: search:NAME:topK, ref:NAME[:WIDTH], genotype .json files, arch_ids
    datasets: tuple[str, ...] = ("shapes",)
    seeds: int = 3  # seeds 0 .. seeds-1
    epochs: int = 5
    execution: Execution = field(default_factory=Execution)  # db, Ray, resources, storage, cache
    image_size: int = 64
    train_samples: int = 512  # synthetic datasets only
    val_samples: int = 128
    scale_range: tuple[float, float] = (1.0, 1.0)  # train-time scale jitter (nasfcn.data.DataConfig)
    recipe: TrainRecipe = field(default_factory=lambda: TrainRecipe(epochs=5))
    ref_width: int | None = None  # width of ref: specs without one (default 16)
    kind: str = "benchmark"  # the search row's kind: "table" for nasfcn tabulate (every arch of a space)
    # On --resume: the fields the caller set; None: those that differ from these defaults
    # (archs: when not empty). Not stored. See nasfcn.search._resume.
    explicit: frozenset[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "archs", tuple(self.archs))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if self.explicit is not None:
            object.__setattr__(self, "explicit", frozenset(self.explicit))
        problems = check_explicit(self)
        if problem := name_problem(self.name):
            problems.append(problem)
        # A resume runs the stored architectures; a table's come from its space (tabulate).
        if not self.archs and not self.execution.resume and self.kind == "benchmark":
            problems.append("--archs names no architecture (e.g. ref:fcn8s,search:demo:top3)")
        if not self.datasets:
            problems.append("--data names no dataset")
        if len(set(self.datasets)) != len(self.datasets):
            problems.append(f"--data names a dataset twice: {', '.join(self.datasets)}")
        if self.seeds < 1:
            problems.append(f"--seeds must be >= 1, got {self.seeds}")
        if self.epochs < 1:
            problems.append(f"--epochs must be >= 1, got {self.epochs}")
        problems.extend(self.execution.problems())
        problems.extend(scale_range_problems(self))
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        raise_problems(problems, "invalid benchmark options:\n  ", BenchmarkError, separator="\n  ")

    def run_folder(self) -> Path:
        return self.execution.run_folder(self.name)

    def as_dict(self) -> dict[str, Any]:
        """The config as stored with the benchmark (URLs masked; ``execution`` nested)."""
        data = asdict(self)
        del data["explicit"]
        data["archs"], data["datasets"] = list(self.archs), list(self.datasets)
        data[EXECUTION] = self.execution.as_dict()
        return data


@dataclass(frozen=True)
class BenchmarkSummary:
    name: str
    search_id: int
    database: str  # masked URL
    run_folder: Path
    counts: dict[str, int]  # runs by status
    results: pd.DataFrame  # nasfcn.benchmark.benchmark_results of the stored runs
    seconds: float
    interrupted: bool
