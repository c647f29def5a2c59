"""What runs inside a Ray Tune trial, on whatever machine Ray chose. It never opens the
database: everything it learns goes back through ``ray.tune.report``.

A trial measures its candidate's cost on its own device first, and scores it with the
zero-cost proxies its config names (those the driver found no stored score of); a candidate over a
constraint is reported as rejected (with the worst mIoU, so the optimizer learns to avoid
it) and never trained. A candidate whose result the driver found in the database is
reported from that result without training, with the reused trial's cost when that was
measured at the same input size on the same device, else with its own. Everyone else is
trained by ``nasfcn.train.fit``, reporting every epoch (ASHA's signal) and attaching the
best checkpoint when it improves.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasfcn.recipe import Fidelity

#: The key trials use to tell the driver what kind of result this is.
STATUS_KEY = "nasfcn_status"


@dataclass(frozen=True)
class TrialSettings:
    """Shared by every trial of a search (sent once through Ray's object store)."""

    data: str
    data_options: dict[str, Any]
    recipe: dict[str, Any]
    latency_input: int
    max_params: float | None
    max_flops: float | None
    max_latency_ms: float | None
    device: str
    threads: int
    fidelity: dict[str, Any] | None = None  # nasfcn.recipe.Fidelity's fields; None: every epoch full


def trial_fidelity(config: dict[str, Any], settings: TrialSettings) -> Fidelity:
    """The search's fidelity with this trial's own reduced epochs (a budget plan's grace period)."""
    fidelity = Fidelity(**(settings.fidelity or {}))
    low = config.get("low_epochs")
    return fidelity.with_low_epochs(int(low)) if low is not None else fidelity


def fidelity_fields(fidelity: Fidelity, epoch: int, side: int) -> dict[str, Any]:
    """What an epoch reports of its fidelity: ASHA's budget, and the side and share it trained at."""
    low = fidelity.is_low(epoch)
    return {
        "budget": fidelity.budget(epoch),
        "train_side": fidelity.side(side) if low else side,
        "train_fraction": fidelity.subset if low else 1.0,
        "reduced_fidelity": low,
    }


#: The entry of a search's recipe (as stored and as cached results are keyed) naming a reduced
#: fidelity: a result trained so is never reused for a full-size search, nor the other way.
FIDELITY_ENTRY = "fidelity"


def trial_recipe(config: dict[str, Any], recipe: dict[str, Any]) -> dict[str, Any]:
    """The search's recipe with this trial's own changes (a benchmark run's seed), as TrainRecipe reads it."""
    merged = {**recipe, **(config.get("recipe_overrides") or {})}
    merged.pop(FIDELITY_ENTRY, None)
    return merged


def keyed_recipe(config: dict[str, Any], recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe a trial's result is stored under for reuse: its own recipe with the search's
    ``FIDELITY_ENTRY`` (its reduced epochs the trial's own), the same one a lookup gives."""
    merged = {**recipe, **(config.get("recipe_overrides") or {})}
    low = config.get("low_epochs")
    if merged.get(FIDELITY_ENTRY) is not None and low is not None:
        merged[FIDELITY_ENTRY] = {**merged[FIDELITY_ENTRY], "low_epochs": int(low)}
    return merged


def data_key(options: dict[str, Any]) -> dict[str, Any]:
    """The data config of ``TrialSettings.data_options`` as a trial's result is keyed by
    (``DataConfig.key``): the lookups and the stored trials use this one function."""
    from nasfcn.data import DataConfig  # torch: only where data are loaded anyway

    return DataConfig(**options).key()


def constraint_violation(cost: dict[str, Any], settings: TrialSettings) -> str | None:
    checks = (
        ("params", settings.max_params, "--max-params"),
        ("flops", settings.max_flops, "--max-flops"),
        ("latency_ms", settings.max_latency_ms, "--max-latency-ms"),
    )
    for key, limit, option in checks:
        if limit is not None and cost.get(key) is not None and cost[key] > limit:
            return f"{key} {cost[key]:.4g} exceeds {option} {limit:.4g}"
    return None


def measured_alike(where: dict[str, Any] | None, side: int, device: str) -> bool:
    """Whether a reused trial measured its cost as this trial would: on a ``side`` x ``side``
    input (batch 1; the channels are the dataset's, the same for a reused result) on ``device``."""
    if not where:
        return False
    shape = list(where.get("input_shape") or ())
    return len(shape) == 4 and shape[0] == 1 and shape[2:] == [side, side] and where.get("device") == device


def train_candidate(
    config: dict[str, Any], settings: TrialSettings, datasets: dict[str, Any] | None = None
) -> None:
    import torch
    from ray import tune

    from nasfcn.cost import device_name, measure
    from nasfcn.genotype import Genotype
    from nasfcn.model import build_model
    from nasfcn.train import TrainRecipe, fit, select_device

    torch.set_num_threads(max(1, settings.threads))
    genotype = Genotype.from_json(config["genotype"])
    cached = config.get("cached")
    device = select_device(settings.device)
    side = settings.latency_input
    # proxies still to score: the network is built below, whatever the cached result
    if cached and not config.get("proxies") and measured_alike(cached.get("cost"), side, device_name(device)):
        metrics = cached["metrics"]
        violation = constraint_violation(metrics, settings)  # a new budget still applies
        if violation is None:
            tune.report({**metrics, STATUS_KEY: "cached", "cached_from": cached["trial_id"]})
            return

    spec = config.get("data") or settings.data
    data = (datasets or {}).get(spec)  # made once by the driver
    if data is None:
        data = _dataset(spec, tuple(sorted(settings.data_options.items())))
    model = build_model(genotype, data.num_classes, data.in_channels)
    report = measure(model, (side, side), device=device)
    cost = report.as_dict()
    base = {
        "params": report.params,
        "flops": report.flops,
        "latency_ms": report.latency_ms,
        "peak_memory_mb": report.peak_memory_mb,
        "cost": cost,
        **proxy_scores(genotype, data, config, settings, device),
    }
    violation = constraint_violation(cost, settings)
    if violation:
        tune.report(rejected(base, violation))
        return
    if cached:  # the result stands; the cost is this trial's own
        tune.report({**cached["metrics"], **base, STATUS_KEY: "cached", "cached_from": cached["trial_id"]})
        return

    recipe = TrainRecipe.from_dict(trial_recipe(config, settings.recipe))
    fidelity = trial_fidelity(config, settings)
    full_side = int(data.config.size[0])
    best = {"miou": -1.0}
    if device.type == "cuda":  # a reused worker's previous trial must not count
        torch.cuda.reset_peak_memory_stats(device)
    trained_on = report.device
    with tempfile.TemporaryDirectory(prefix="nasfcn-trial-") as folder:

        def report_epoch(epoch: int, metrics: dict[str, Any]) -> None:
            result = {
                **base,
                **metrics,
                **(fidelity_fields(fidelity, epoch, full_side) if fidelity.reduced else {}),
                STATUS_KEY: "running",
                "train_device": trained_on,
                "peak_train_memory_mb": _peak_memory(device),
            }
            miou = metrics.get("val_miou")
            if miou is not None and miou > best["miou"]:
                best["miou"] = miou
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))
            else:
                tune.report(result)

        out = Path(folder)
        fit(genotype, data, recipe, device=device, report=report_epoch, out_dir=out, fidelity=fidelity)


def rejected(base: dict[str, Any], violation: str) -> dict[str, Any]:
    """The one report of a network over a cost budget: its cost figures, zero quality and why."""
    return {
        **base,
        "val_miou": 0.0,
        "val_pixel_accuracy": 0.0,
        STATUS_KEY: "rejected_by_constraint",
        "reason": violation,
    }


def proxy_scores(
    genotype: Any, data: Any, config: dict[str, Any], settings: TrialSettings, device: Any
) -> dict[str, Any]:
    """``{"proxies": {...}}``: the zero-cost proxies ``config["proxies"]`` names, scored on the
    search's minibatch of ``data`` with the trial's seed (none named: nothing). A proxy that
    raises is reported with its error and no value; the trial goes on."""
    names = list(config.get("proxies") or ())
    if not names:
        return {}
    from nasfcn.cost import device_name
    from nasfcn.proxies import batch_input, compute, trial_batch

    seed = int(trial_recipe(config, settings.recipe).get("seed", 0))
    batch = trial_batch(data, seed)
    results = compute(genotype, batch, names, seed=seed, device=device)
    scores = {
        name: {"value": None if r.error else r.value, "error": r.error, "seconds": r.seconds}
        for name, r in results.items()
    }
    where = {"input": batch_input(batch), "seed": seed, "device": device_name(device)}
    return {"proxies": {**where, "scores": scores}}


@functools.lru_cache(maxsize=2)
def _dataset(spec: str, options: tuple[tuple[str, Any], ...]) -> Any:
    """A reused worker loads (or generates) the search's dataset once, not once per trial."""
    from nasfcn.data import DataConfig, load_dataset

    return load_dataset(spec, DataConfig(**dict(options)))


def _peak_memory(device: Any) -> float | None:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None
