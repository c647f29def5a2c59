"""Search result -> bundle: pick the trial, fetch its checkpoint, gather its metrics, export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasfcn.bundle import FinetuneRecipe, Preprocess
from nasfcn.confirm import with_pooled
from nasfcn.export._fetch import _load_checkpoint, _local_checkpoint
from nasfcn.export._heldout import heldout_metrics
from nasfcn.export._pick import _latest_name, confirmed_figures, select_trial
from nasfcn.export._write import ExportError, ExportResult, export_model
from nasfcn.model import FCN
from nasfcn.store import Store, epochs_frame, get_search, leaderboard_frame, trial_record


def export_trial(
    store: Store,
    out: str | Path,
    *,
    search: str | None = None,
    trial: int | None = None,
    rank: int | None = None,
    max_latency_ms: float | None = None,
    recipe: FinetuneRecipe | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Export one trial of a search (the latest search when ``search`` is None).

    The network is evaluated once on the dataset's held-out test split (``metrics["test"]``);
    a dataset without one gets ``{"images": 0, "reason": ...}`` there, never val's figures.

    Raises:
        ExportError: no such trial, it has no checkpoint, or the export failed a check.
        StoreError: the database or the search cannot be read.
    """
    from nasfcn.train import CHECKPOINT_INFO

    board = with_pooled(leaderboard_frame(store, search))  # ranks as the leaderboard shows them
    name = search or _latest_name(store)
    _refuse_simulated(store, name)
    row = select_trial(board, name, trial, rank, max_latency_ms)
    record = trial_record(store, int(row["trial_id"]))
    location = record["checkpoint"]
    if not location:
        why = f"status {record['status']}"
        if record["source_trial_id"] != record["trial_id"]:
            why += f", reusing trial {record['source_number']} of search {record['source_search']!r}"
        if isinstance(row.get("error"), str) and row["error"]:
            why += f": {row['error'][:200]}"
        raise ExportError(
            f"trial {record['number']} of search {name!r} has no checkpoint ({why}); only trained "
            f"trials can be exported: pick another with --trial or --rank (see nasfcn trials --search {name})"
        )
    with _local_checkpoint(location, record) as folder:
        model, info = _load_checkpoint(folder, record)
        preprocess = Preprocess.from_dict(info.get("preprocess"), str(folder / CHECKPOINT_INFO))
    history = epochs_frame(store, trial_ids=[record["source_trial_id"]])
    metrics = {
        "arch_id": model.genotype.arch_id,
        "source": _source(record, location),
        "val": val_metrics(info.get("epoch", {}), preprocess.class_names),
        "test": heldout_metrics(model, record["dataset"], preprocess, _data_options(store, name)),
        "cost": _cost(record, model, preprocess),
        "leaderboard": row.drop(labels=["genotype_json"]).to_dict(),
        "confirmed": confirmed_figures(board, int(row["number"])),
        "history": history[["epoch", "train_loss", "val_miou", "val_pixel_accuracy", "seconds"]].to_dict(
            "records"
        ),
    }
    return export_model(model, preprocess, metrics, out, recipe, overwrite=overwrite)


def _refuse_simulated(store: Store, search: str) -> None:
    """An arena's trials were looked up in a table, never trained: there are no weights to export."""
    stored = get_search(store, search)
    if stored is not None and stored["kind"] == "arena":
        table = stored["config"].get("table") or stored["dataset"]
        raise ExportError(
            f"search {search!r} is an arena: its trials were replayed from table {table!r}, not trained, "
            "so they have no weights to export; train the architecture with nasfcn train --genotype "
            "or nasfcn search, then export that trial"
        )


def _data_options(store: Store, search: str) -> dict[str, Any]:
    """The search's stored options (its data seed picks a generated dataset's test scenes)."""
    stored = get_search(store, search)
    return dict(stored["config"]) if stored else {}


def val_metrics(epoch: Mapping[str, Any], class_names: Sequence[str]) -> dict[str, Any]:
    """The val figures of one epoch as ``fit`` reports them, per-class IoU keyed by class name."""
    values = {key.removeprefix("val_"): value for key, value in epoch.items() if key.startswith("val_")}
    per_class = values.pop("per_class_iou", None) or []
    for key in ("per_class_accuracy", "per_class_dice", "num_pixels"):
        values.pop(key, None)
    return {
        **values,
        "per_class_iou": dict(zip(class_names, per_class, strict=False)),
        "epoch": epoch.get("epoch"),
    }


def _source(record: Mapping[str, Any], location: str) -> dict[str, Any]:
    source = {
        "kind": "search",
        "search": record["search"],
        "trial": record["number"],
        "trial_id": record["trial_id"],
        "status": record["status"],
        "dataset": record["dataset"],
        "checkpoint": location,
    }
    if record["source_trial_id"] != record["trial_id"]:
        source["trained_by"] = {
            "search": record["source_search"],
            "trial": record["source_number"],
            "trial_id": record["source_trial_id"],
        }
    return source


def _cost(record: Mapping[str, Any], model: FCN, preprocess: Preprocess) -> dict[str, Any]:
    """The cost the search measured (before training, on the trial's device); measured here on
    the CPU when the database has none."""
    if record.get("params") is None:
        return measured_cost(model, preprocess)
    return {
        "params": record["params"],
        "flops": record["flops"],
        "latency_ms": record["latency_ms"],
        "peak_memory_mb": record["peak_memory_mb"],
        "device": record["cost_device"],
        "input": record["cost_input"],
    }


def measured_cost(model: FCN, preprocess: Preprocess, device: str = "cpu") -> dict[str, Any]:
    from nasfcn.cost import measure

    report = measure(model, preprocess.image_size, device=device, in_channels=preprocess.in_channels)
    return {
        "params": report.params,
        "flops": report.flops,
        "latency_ms": report.latency_ms,
        "peak_memory_mb": report.peak_memory_mb,
        "device": report.device,
        "input": "x".join(map(str, report.input_shape)),
    }
