"""What a search is asked to do (``SearchConfig``) and what it did (``SearchSummary``)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasfcn import catalogue
from nasfcn.errors import NasfcnError, raise_problems
from nasfcn.recipe import Fidelity, TrainRecipe, TrainRecipeError
from nasfcn.search._execution import EXECUTION, Execution
from nasfcn.search._resume import ResumeRule, check_explicit
from nasfcn.store import OBJECTIVES

SCHEDULERS = catalogue.SCHEDULERS.names()
#: objective name -> the metric name trials report to Ray Tune
REPORTED = {
    "miou": "val_miou",
    "pixel_accuracy": "val_pixel_accuracy",
    "latency_ms": "latency_ms",
    "params": "params",
    "flops": "flops",
    "peak_memory_mb": "peak_memory_mb",
}


#: The zero-cost proxies ``nasfcn search`` scores every trial's network with unless ``--proxies``
#: says otherwise: none. Measured on the shipped shapes table (``nasfcn proxies evaluate``,
#: benchmarks/RESULTS.md), no proxy earns its place: the parameter count, a column every trial
#: has already, ranks the 280 architectures at Spearman -0.69 (smaller is better at this
#: budget), synflow at -0.56, zen -0.55, the best positive one (jacov) at 0.31. Issue 23's rule
#: is that a proxy is a default only if it beats params by 0.10; none does.
DEFAULT_SEARCH_PROXIES: tuple[str, ...] = ()


#: A search or benchmark name names its folder, runs/<name>: one plain folder name, never a path.
NAME_CHARACTERS = "letters, digits, '.', '_' and '-'"
NAME_MAX_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def name_problem(name: str, option: str = "--name") -> str | None:
    """Why ``name`` cannot name a run folder, or None (``../x`` would write outside runs/)."""
    if _NAME.fullmatch(name) and len(name) <= NAME_MAX_LENGTH:
        return None
    return (
        f"{option} {name!r} cannot name a run folder: use 1 to {NAME_MAX_LENGTH} {NAME_CHARACTERS}, "
        "not starting with '.' or '-'"
    )


#: On --resume: what a search keeps (what its results mean) and what may change (how much
#: more to run, and where). ``space`` is compared by content, in the driver.
SEARCH_RESUME = ResumeRule(
    kept=(
        "data",
        "epochs",
        "strategy",
        "scheduler",
        "grace_period",
        "reduction_factor",
        "objectives",
        "max_params",
        "max_flops",
        "max_latency_ms",
        "seed",
        "image_size",
        "train_samples",
        "val_samples",
        "scale_range",
        "recipe",
        "latency_input",
        "references",
        "fidelity",
        "proxies",
    ),
    adjustable=(
        "trials",
        "time_budget_min",
        "confirm_top",
        "confirm_seeds",
        "final_share",
        "execution.concurrency",
        "execution.cpus_per_trial",
        "execution.gpus_per_trial",
        "execution.ray_address",
        "execution.storage_path",
        "execution.cache",
        "execution.device",
    ),
    options={
        "time_budget_min": "--time-budget",
        "scale_range": "--scale-jitter",
        "confirm_top": "--confirm-top",
        "confirm_seeds": "--confirm-seeds",
        "final_share": "--final-share",
        "execution.cache": "cache",
        "recipe.lr": "--lr",
        "recipe.batch_size": "--batch-size",
        "recipe.amp": "--amp",
        "recipe.channels_last": "--channels-last",
    },
)


#: The share of a time budget a search keeps for its final runs (``nasfcn.search._final``) when
#: --final-share is not given: none below ``LONG_BUDGET_MIN`` minutes, ``LONG_FINAL_SHARE`` from
#: there (``default_final_share``). Measured with benchmarks/equal_budget.py on shapes
#: (benchmarks/RESULTS.md, "Final runs"): at 5 minutes keeping half the budget cut the search
#: proper to 9-11 trials of 3-5 epochs that chose worse networks (test mIoU 0.747 -> 0.685 on the
#: mean of 3 seeds); at 15 minutes training the search proper's best networks again for the
#: other half raised it on each of 4 seeds (0.745 -> 0.801 on the mean, +5.6 points, 95% CI
#: +0.4 to +10.9). Budgets in between were not measured: none there.
FINAL_SHARE = 0.0
LONG_FINAL_SHARE = 0.5
LONG_BUDGET_MIN = 15.0
#: The most of a budget --final-share may keep: the search proper needs time to find anything.
MAX_FINAL_SHARE = 0.9


def default_final_share(time_budget_min: float | None) -> float:
    """--final-share when it is not given: see ``FINAL_SHARE``."""
    if time_budget_min is not None and time_budget_min >= LONG_BUDGET_MIN:
        return LONG_FINAL_SHARE
    return FINAL_SHARE


#: The smallest side a reduced-fidelity epoch may train at (``nasfcn tabulate``'s --image-size minimum).
MIN_REDUCED_SIDE = 8


def proxy_problems(names: tuple[str, ...]) -> list[str]:
    """``--proxies``' unknown or repeated names, each with the names allowed."""
    known = catalogue.PROXIES.names()
    allowed = f"valid: {', '.join(known)} (comma-separated), or none"
    unknown = [name for name in names if name not in known]
    problems = [f"--proxies: unknown zero-cost proxy {name!r}; {allowed}" for name in unknown]
    if len(set(names)) != len(names):
        problems.append(f"--proxies names a proxy twice: {','.join(names)}")
    return problems


def scale_range_problems(config: Any) -> list[str]:
    """``--scale-jitter`` of a search's or a benchmark's config, normalized to floats in place."""
    low, high = (float(v) for v in config.scale_range)
    object.__setattr__(config, "scale_range", (low, high))
    if not (0 < low <= high and math.isfinite(high)):
        return [f"--scale-jitter must be LOW,HIGH with 0 < LOW <= HIGH (1,1: off), got {low:g},{high:g}"]
    return []


class SearchConfigError(NasfcnError, ValueError):
    """A search option is invalid; the message names it and what is allowed."""


class SearchStoppedError(NasfcnError, RuntimeError):
    """The machine stopped the search (database unreachable, disk full), not the input:
    finished trials are saved and ``--resume`` continues; the CLI exits with code 1."""


@dataclass(frozen=True)
class SearchConfig:
    """Everything ``run_search`` needs; the CLI's options map one to one onto these fields."""

    space: str  # path of the space YAML
    data: str = "shapes"  # dataset spec
    name: str | None = None  # unique per database; default: <space name>-<timestamp>
    trials: int = 12
    epochs: int = 3
    strategy: str = "tpe"  # nasfcn.catalogue.STRATEGIES key
    scheduler: str = "asha"  # nasfcn.catalogue.SCHEDULERS key
    objectives: tuple[str, ...] = ("miou",)  # first maximized mIoU; nsga2 needs two or more
    max_params: float | None = None
    max_flops: float | None = None
    max_latency_ms: float | None = None
    time_budget_min: float | None = None
    seed: int = 0
    execution: Execution = field(default_factory=Execution)  # db, Ray, resources, storage, cache
    image_size: int = 64
    train_samples: int = 512  # synthetic datasets only
    val_samples: int = 128
    scale_range: tuple[float, float] = (1.0, 1.0)  # train-time scale jitter (nasfcn.data.DataConfig)
    recipe: TrainRecipe = field(default_factory=lambda: TrainRecipe(epochs=3))
    grace_period: int | None = None  # ASHA: epochs every trial gets; None: asha_grace_period
    reduction_factor: int = 2  # ASHA: keep 1/reduction_factor at each rung
    latency_input: int | None = None  # side of the input latency is measured at (default image_size)
    references: tuple[str, ...] = ()  # classic designs (nasfcn.references) to train first
    # --fidelity: "epochs" (every epoch at full size) or "resolution=R,subset=F" for the
    # grace period's epochs (nasfcn.recipe.Fidelity); ASHA then counts full-epoch equivalents.
    fidelity: str = "epochs"
    # Noise-aware winners (nasfcn.confirm): the top ``confirm_top`` networks re-trained with
    # ``confirm_seeds`` extra seeds each once the search proper ends. None: off with --trials,
    # on with --time-budget when its plan leaves the time (nasfcn.confirm's defaults).
    confirm_top: int | None = None
    confirm_seeds: int | None = None
    # Final runs (nasfcn.search._final): the share of a --time-budget kept for training the
    # search's best networks again for longer once it ends; 0: none. Without a budget: unused.
    final_share: float = FINAL_SHARE
    proxies: tuple[str, ...] = DEFAULT_SEARCH_PROXIES  # zero-cost proxies scored at the cost step
    # On --resume: the fields the caller set (``recipe.lr`` for a recipe field); None: those
    # that differ from these defaults. Not stored. See nasfcn.search._resume.
    explicit: frozenset[str] | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.trials < 1:
            problems.append(f"--trials must be >= 1, got {self.trials}")
        if self.epochs < 1:
            problems.append(f"--epochs must be >= 1, got {self.epochs}")
        strategies = catalogue.STRATEGIES.names()  # read now: strategies may be registered later
        if self.strategy not in strategies:
            problems.append(f"--strategy must be one of {', '.join(strategies)}, got {self.strategy!r}")
        if self.scheduler not in SCHEDULERS:
            problems.append(f"--scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        objectives = tuple(self.objectives)
        object.__setattr__(self, "objectives", objectives)
        for name in objectives:
            if name not in OBJECTIVES:
                problems.append(f"unknown objective {name!r}; valid: {', '.join(OBJECTIVES)}")
        if len(set(objectives)) != len(objectives) or not objectives:
            problems.append("--objectives must name one or more distinct objectives")
        multi_objective = (
            self.strategy in strategies and catalogue.STRATEGIES.get(self.strategy).multi_objective
        )
        if multi_objective and len(objectives) < 2:
            problems.append(
                f"--strategy {self.strategy} is multi-objective: "
                "give --objectives miou,latency_ms (or similar)"
            )
        for option in ("max_params", "max_flops", "max_latency_ms"):
            value = getattr(self, option)
            if value is not None and not (value > 0 and math.isfinite(value)):
                problems.append(f"--{option.replace('_', '-')} must be positive, got {value}")
        problems.extend(scale_range_problems(self))
        budget = self.time_budget_min
        if budget is not None and not (budget > 0 and math.isfinite(budget)):
            problems.append(f"--time-budget must be a positive number of minutes, got {budget}")
        gpus = self.execution.gpus_per_trial
        problems.extend(self.execution.problems())
        if gpus > 1 and gpus != int(gpus):
            problems.append("--gpus-per-trial above 1 must be a whole number")
        if self.grace_period is not None and self.grace_period < 1:
            problems.append(f"--grace-period must be >= 1 epoch, got {self.grace_period}")
        if self.reduction_factor < 2:
            problems.append(f"--reduction-factor must be >= 2, got {self.reduction_factor}")
        for option, count in (("--confirm-top", self.confirm_top), ("--confirm-seeds", self.confirm_seeds)):
            if count is not None and count < 0:
                problems.append(f"{option} must be >= 0 (0: no confirmation), got {count}")
        if not 0 <= self.final_share <= MAX_FINAL_SHARE:
            problems.append(
                f"--final-share must be between 0 (no final runs) and {MAX_FINAL_SHARE:g}, "
                f"got {self.final_share:g}"
            )
        object.__setattr__(self, "references", tuple(self.references))
        from nasfcn.references import REFERENCES

        unknown = [name for name in self.references if name not in REFERENCES]
        if unknown:
            problems.append(
                f"unknown reference {', '.join(map(repr, unknown))}; valid: {', '.join(REFERENCES.names())}"
            )
        problems.extend(self._fidelity_problems())
        object.__setattr__(self, "proxies", tuple(self.proxies))
        problems.extend(proxy_problems(self.proxies))
        if self.name is not None and (problem := name_problem(self.name)):
            problems.append(problem)
        if self.explicit is not None:
            object.__setattr__(self, "explicit", frozenset(self.explicit))
        problems.extend(check_explicit(self))
        raise_problems(problems, "invalid search options:\n  ", SearchConfigError, separator="\n  ")

    def _fidelity_problems(self) -> list[str]:
        """Check ``fidelity`` and store it in its one written form (a resume compares the text)."""
        try:
            fidelity = Fidelity.parse(str(self.fidelity))
        except TrainRecipeError as err:
            return [str(err)]
        object.__setattr__(self, "fidelity", fidelity.to_text())
        side = fidelity.side(self.image_size)
        if fidelity.resolution < 1 and side < MIN_REDUCED_SIDE:
            return [
                f"--fidelity resolution={fidelity.resolution:g} trains at {side} px from --image-size "
                f"{self.image_size}: a reduced side must be at least {MIN_REDUCED_SIDE} px"
            ]
        return []

    @property
    def fidelity_schedule(self) -> Fidelity:
        """The fidelity every trial trains with: the grace period's epochs reduced (when asked)."""
        return Fidelity.parse(self.fidelity).with_low_epochs(self.asha_grace_period)

    @property
    def asha_grace_period(self) -> int:
        """Epochs before ASHA may stop a trial: ``grace_period``, else a quarter of the epochs.

        Not 1 by default: in the first epochs of a search most candidates still predict
        little beyond the background, so a 1-epoch rung ranks by noise and stops later
        winners. ``benchmarks/search_efficiency.py`` (12-epoch TPE searches, 6 seeds): a
        3-epoch grace period came within a point of random search's best in 5 seeds, 1 epoch
        in 3; its best was 3.3 points higher on average (``benchmarks/RESULTS.md``).
        """
        return min(self.epochs, self.grace_period or max(1, self.epochs // 4))

    @property
    def metrics(self) -> list[str]:
        return [REPORTED[name] for name in self.objectives]

    @property
    def modes(self) -> list[str]:
        return [OBJECTIVES[name][1] for name in self.objectives]

    def as_dict(self) -> dict[str, Any]:
        """The config as stored with the search (URLs masked; ``execution`` nested)."""
        data = asdict(self)
        del data["explicit"]
        data["objectives"] = list(self.objectives)
        data["references"] = list(self.references)
        data["proxies"] = list(self.proxies)
        data[EXECUTION] = self.execution.as_dict()
        return data


@dataclass(frozen=True)
class SearchSummary:
    """How a search ended: counts by status and the best trial."""

    name: str
    search_id: int
    database: str  # masked URL
    run_folder: Path
    counts: dict[str, int]
    best_trial: int | None  # trial number
    best_arch_id: str | None
    best_miou: float | None
    seconds: float
    interrupted: bool = False
    budget: str | None = None  # --time-budget: how much was used, and the last plan

    @property
    def finished(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in ("running", "pending", "interrupted"))
