"""Export: a trained network as a bundle, checked in every format it is written in.

``export_trial`` picks a trial from a search's results (the best completed one by val
mIoU unless told otherwise), finds the checkpoint that holds its weights (a ``cached``
trial trained nothing: its weights are those of the trial it reused) and hands the
network to ``export_model``.

``export_model`` writes the weights, ONNX (dynamic batch, height and width) and
TorchScript, and checks each against PyTorch at a resolution training never used: an
export that differs by more than ``PARITY_TOLERANCE`` fails, and so does one the
exporter cannot produce. Files are assembled in a staging folder and moved into place
only when every check passed, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from nasfcn import __version__
from nasfcn.bundle import (
    ONNX_FILE,
    TORCHSCRIPT_FILE,
    FinetuneRecipe,
    Preprocess,
    json_safe,
    load_bundle,
    write_bundle,
    write_zip,
)
from nasfcn.errors import NasfcnError
from nasfcn.model import FCN
from nasfcn.store import RESULT_STATUSES, Store, epochs_frame, leaderboard_frame, trial_record

#: Largest |ONNX or TorchScript - PyTorch| accepted on the check input (float32 logits).
PARITY_TOLERANCE = 1e-4
#: Height and width of the check input: odd, and not a multiple of any model stride.
CHECK_SIZE = (37, 53)
CHECK_BATCH = 3


class ExportError(NasfcnError, RuntimeError):
    """The export cannot be made, or would not be faithful; the message says why and what to do."""


@dataclass(frozen=True)
class Parity:
    """How closely an exported file reproduces PyTorch on the check input."""

    format: str  # "onnx" | "torchscript"
    max_abs_diff: float
    input_shape: tuple[int, int, int, int]
    tolerance: float = PARITY_TOLERANCE

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "input": "x".join(map(str, self.input_shape)),
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class ExportResult:
    path: Path
    arch_id: str
    parity: tuple[Parity, ...]
    metrics: Mapping[str, Any]


# -- model -> bundle ---------------------------------------------------------------------------


def export_model(
    model: FCN,
    preprocess: Preprocess,
    metrics: Mapping[str, Any],
    out: str | Path,
    recipe: FinetuneRecipe | None = None,
    *,
    overwrite: bool = False,
    check_size: tuple[int, int] = CHECK_SIZE,
) -> ExportResult:
    """Write ``model`` as a bundle at ``out`` (a folder, or a zip when it ends in ``.zip``).

    ``metrics`` goes into ``metrics.json`` with the parity figures added under ``export``.

    Raises:
        ExportError: ``out`` exists (without ``overwrite``), an exporter failed, or an
            exported file differs from PyTorch by more than ``PARITY_TOLERANCE``.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; choose another --out or pass --force to replace it")
    model = copy.deepcopy(model).cpu().eval()
    if tuple(check_size) == preprocess.image_size:  # the check must use a size training did not
        check_size = (check_size[1], check_size[0] + 2)
    generator = torch.Generator().manual_seed(0)
    check = torch.randn(CHECK_BATCH, model.in_channels, *check_size, generator=generator)
    example = torch.randn(2, model.in_channels, *preprocess.image_size, generator=generator)
    with torch.no_grad():
        expected = model(check)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        parity = (
            export_onnx(model, staging / ONNX_FILE, example, check, expected),
            export_torchscript(model, staging / TORCHSCRIPT_FILE, example, check, expected),
        )
        metrics = {
            **metrics,
            "export": {
                **{p.format: p.as_dict() for p in parity},
                "versions": {"nasfcn": __version__, "torch": torch.__version__.split("+")[0]},
            },
        }
        recipe = recipe or FinetuneRecipe()
        card = model_card(model, preprocess, metrics, recipe, out)
        write_bundle(staging, model, preprocess, metrics, recipe, card)
        reloaded, _ = load_bundle(staging)
        with torch.no_grad():
            if not torch.equal(reloaded(check), expected):
                raise ExportError(
                    f"the bundle's weights do not reproduce {model.genotype.arch_id}; please report"
                )
        _move_into_place(staging, out, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out, model.genotype.arch_id, parity, json_safe(metrics))


def export_onnx(
    model: FCN, path: Path, example: torch.Tensor, check: torch.Tensor, expected: torch.Tensor
) -> Parity:
    """ONNX with dynamic batch, height and width (the dynamo exporter), checked with onnxruntime."""
    import onnxruntime
    from torch.export import Dim

    dynamic = ({0: Dim("batch"), 2: Dim("height"), 3: Dim("width")},)
    try:
        with _quiet_exporters():
            program = torch.onnx.export(
                model,
                (example,),
                input_names=["image"],
                output_names=["logits"],
                dynamic_shapes=dynamic,
                external_data=False,
                verbose=False,
                dynamo=True,
            )
            program.save(str(path))  # type: ignore[union-attr]  # dynamo=True: never None
    except Exception as err:
        raise ExportError(_exporter_failed("ONNX", model, err)) from err
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return _parity(
        "onnx", lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0]), check, expected
    )


def export_torchscript(
    model: FCN, path: Path, example: torch.Tensor, check: torch.Tensor, expected: torch.Tensor
) -> Parity:
    """TorchScript by tracing; the saved file is loaded back and checked at another size.

    Tracing records the model's size arithmetic (padding to the stride, cropping back) as
    graph operations, so the traced file runs at any height and width; the check proves it.
    """
    try:
        with _quiet_exporters(), torch.no_grad():
            traced = torch.jit.trace(model, (example,))
            torch.jit.save(traced, str(path))
            loaded = torch.jit.load(str(path))
    except Exception as err:
        raise ExportError(_exporter_failed("TorchScript", model, err)) from err
    loaded.eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return loaded(x)

    return _parity("torchscript", run, check, expected)


def _parity(
    name: str, run: Callable[[torch.Tensor], torch.Tensor], check: torch.Tensor, expected: torch.Tensor
) -> Parity:
    shape = tuple(check.shape)
    try:
        got = run(check)
    except Exception as err:
        raise ExportError(
            f"the {name} export does not run at {shape[2]}x{shape[3]} ({type(err).__name__}: {err}); "
            f"it would only work at the size it was exported at, so no bundle was written"
        ) from err
    if tuple(got.shape) != tuple(expected.shape):
        raise ExportError(
            f"the {name} export gives logits of shape {tuple(got.shape)} for input {shape}, PyTorch "
            f"gives {tuple(expected.shape)}; no bundle was written"
        )
    diff = float((got.float() - expected).abs().max())
    if not diff <= PARITY_TOLERANCE:  # NaN fails too
        raise ExportError(
            f"the {name} export differs from PyTorch by {diff:.3g} (max abs, input "
            f"{'x'.join(map(str, shape))}); the limit is {PARITY_TOLERANCE:g}, so no bundle was written"
        )
    return Parity(name, diff, shape)  # type: ignore[arg-type]


def _exporter_failed(kind: str, model: FCN, err: Exception) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (
        f"{kind} export of {model.genotype.arch_id} ({model.genotype.describe()}) failed: "
        f"{type(err).__name__}: {first[:500]}. No bundle was written (a file that does not work is "
        f"worse than none); please report it with this architecture"
    )


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """The exporters' own deprecation notices and log chatter (e.g. "torchvision is not
    installed") say nothing about this model; the parity checks do."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnx_ir", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _move_into_place(staging: Path, out: Path, overwrite: bool) -> None:
    if out.suffix.lower() == ".zip":
        packed = staging / "bundle.zip"  # next to the files, so a failure leaves nothing behind
        write_zip(staging, packed)
        packed.replace(out)  # atomic on one filesystem; replaces an existing file
        return
    staging.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shared
    if out.exists() and overwrite:
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    staging.rename(out)


# -- the model card ----------------------------------------------------------------------------


def model_card(
    model: FCN, preprocess: Preprocess, metrics: Mapping[str, Any], recipe: FinetuneRecipe, out: Path
) -> str:
    """README.md: the architecture in words, metrics, how to load, predict and fine-tune."""
    genotype = model.genotype
    val = metrics.get("val", {})
    cost = metrics.get("cost", {})
    source = metrics.get("source", {})
    height, width = preprocess.image_size
    lines = [
        f"# nasfcn model `{genotype.arch_id}`",
        "",
        f"{genotype.describe()}; {preprocess.num_classes} classes, {preprocess.in_channels} input channels.",
        "",
        f"- **Trained on** `{preprocess.dataset}` at {height}x{width} ({_source_text(source)}).",
    ]
    if val.get("miou") is not None:
        lines.append(
            f"- **Val mIoU {val['miou']:.3f}**, pixel accuracy {_fmt(val.get('pixel_accuracy'))}"
            + (f" (epoch {val['epoch']})" if val.get("epoch") else "")
            + "."
        )
    if cost.get("params") is not None:
        lines.append(
            f"- **Cost**: {cost['params']:,} parameters, {_fmt_count(cost.get('flops'))} FLOPs, "
            f"latency {_fmt(cost.get('latency_ms'), '.2f')} ms, peak memory "
            f"{_fmt(cost.get('peak_memory_mb'), '.1f')} MiB on {cost.get('device') or '?'} "
            f"(input {cost.get('input') or '?'})."
        )
    parity = metrics.get("export", {})
    if parity:
        lines.append(
            "- **Exports checked** against PyTorch at "
            + ", ".join(
                f"{name} {p['input']}: max abs diff {p['max_abs_diff']:.1e}" for name, p in _formats(parity)
            )
            + "."
        )
    per_class = val.get("per_class_iou") or {}
    if per_class:
        lines += ["", "| class | val IoU |", "|---|---|"]
        lines += [f"| {name} | {_fmt(iou)} |" for name, iou in per_class.items()]
    finetune = metrics.get("finetune", {})
    if finetune.get("stages"):
        lines += ["", "Fine-tuning stages (val after each):", ""]
        lines.append(f"- before: mIoU {_fmt(finetune.get('baseline', {}).get('miou'))}")
        lines += [
            f"- {s['name']}: {s['epochs']} epochs at lr {s['lr']:g}, mIoU {_fmt(s['val'].get('miou'))}"
            for s in finetune["stages"]
        ]
    name = out.name
    lines += [
        "",
        "## Files",
        "",
        "`genotype.json` (architecture), `weights.safetensors`, `model.onnx` (dynamic batch, height, "
        "width), `model.torchscript.pt`, `preprocess.json` (input size, mean/std, class names, palette, "
        "ignore index), `metrics.json`, `finetune.yaml` (staged fine-tuning recipe), this card and "
        "`manifest.json` (size and SHA-256 of every other file, checked by `load_bundle`).",
        "",
        "## Input",
        "",
        f"RGB values scaled to [0, 1], then `(x - mean) / std` per channel with mean "
        f"{list(preprocess.mean)} and std {list(preprocess.std)}; N x {preprocess.in_channels} x H x W "
        f"float32, any H and W (trained at {height}x{width}). Output: logits N x "
        f"{preprocess.num_classes} x H x W; the class is the argmax.",
        "",
        "## Load",
        "",
        "```python",
        "import nasfcn",
        "",
        f'model, info = nasfcn.load_bundle("{name}")  # genotype + safetensors, no pickle',
        "logits = model(images)  # N x C x H x W, normalized as above",
        "```",
        "",
        "```python",
        "import onnxruntime",
        "",
        f'session = onnxruntime.InferenceSession("{name}/{ONNX_FILE}")',
        'logits = session.run(None, {"image": images})[0]  # images: float32 numpy array',
        "```",
        "",
        f'TorchScript: `torch.jit.load("{name}/{TORCHSCRIPT_FILE}")` (PyTorch has deprecated '
        "TorchScript; for new code prefer ONNX or `load_bundle`).",
        "",
        "## Predict",
        "",
        "```bash",
        f"nasfcn predict --bundle {name} photo.jpg --out masks/ --overlay",
        "```",
        "",
        "## Fine-tune",
        "",
        "Stage 1 trains only the classifier head (replaced when the number of classes differs), stage "
        "2 also the decoder (upsampling, skip fusion, attention), stage 3 the whole model at a lower "
        "learning rate; epochs and learning rates are in `finetune.yaml`:",
        "",
        "```bash",
        f"nasfcn finetune --bundle {name} --data folder:my_data --out my_model",
        "```",
        "",
        "| stage | epochs | lr |",
        "|---|---|---|",
        *(f"| {stage} | {s.epochs} | {s.lr:g} |" for stage, s in recipe.stages()),
        "",
    ]
    return "\n".join(lines)


def _formats(export: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(name, value) for name, value in export.items() if name in ("onnx", "torchscript")]


def _source_text(source: Mapping[str, Any]) -> str:
    if source.get("kind") == "search":
        text = f"search `{source.get('search')}`, trial {source.get('trial')}"
        trained_by = source.get("trained_by")
        if trained_by:
            text += f", a cached result of trial {trained_by['trial']} of search `{trained_by['search']}`"
        return text
    if source.get("kind") == "finetune":
        return f"fine-tuned from `{source.get('bundle')}` ({source.get('arch_id')})"
    return "trained with nasfcn"


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _fmt_count(value: Any) -> str:
    from nasfcn.cost import format_count

    return "-" if value is None else format_count(float(value))


# -- search result -> bundle -------------------------------------------------------------------


def select_trial(
    board: pd.DataFrame,
    search: str,
    trial: int | None = None,
    rank: int | None = None,
    max_latency_ms: float | None = None,
) -> pd.Series:
    """The leaderboard row to export: by trial number, by rank, or the best completed trial
    (within ``max_latency_ms`` when given)."""
    chosen = [
        name
        for name, v in (("--trial", trial), ("--rank", rank), ("--max-latency-ms", max_latency_ms))
        if v is not None
    ]
    if len(chosen) > 1:
        raise ExportError(
            f"give at most one of --trial, --rank and --max-latency-ms, got {' and '.join(chosen)}"
        )
    if board.empty:
        raise ExportError(f"search {search!r} has no trials yet")
    if trial is not None:
        rows = board[board["number"] == trial]
        if rows.empty:
            raise ExportError(
                f"search {search!r} has no trial {trial}; its trials are numbered "
                f"{int(board['number'].min())}..{int(board['number'].max())} "
                f"(see nasfcn trials --search {search})"
            )
        return rows.iloc[0]
    if rank is not None:
        rows = board[board["rank"] == rank]
        if rows.empty:
            ranked = int(board["rank"].max()) if board["rank"].notna().any() else 0
            raise ExportError(f"search {search!r} has no trial at rank {rank}; ranks go from 1 to {ranked}")
        return rows.iloc[0]
    trained = board[board["status"].isin(RESULT_STATUSES) & board["best_miou"].notna()]
    if trained.empty:
        statuses = ", ".join(f"{k} {v}" for k, v in board["status"].value_counts().items())
        raise ExportError(
            f"search {search!r} has no completed trial yet ({statuses}); let it finish, or export "
            f"a stopped-early one with --trial N"
        )
    if max_latency_ms is not None:
        fast = trained[trained["latency_ms"] <= max_latency_ms]
        if fast.empty:
            raise ExportError(
                f"no completed trial of {search!r} runs within {max_latency_ms:g} ms; the fastest "
                f"takes {trained['latency_ms'].min():.3g} ms"
            )
        trained = fast
    return trained.sort_values(["best_miou", "latency_ms", "number"], ascending=[False, True, True]).iloc[0]


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

    Raises:
        ExportError: no such trial, it has no checkpoint, or the export failed a check.
        StoreError: the database or the search cannot be read.
    """
    from nasfcn.train import CHECKPOINT_INFO

    board = leaderboard_frame(store, search)
    name = search or _latest_name(store)
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
        "cost": _cost(record, model, preprocess),
        "leaderboard": row.drop(labels=["genotype_json"]).to_dict(),
        "history": history[["epoch", "train_loss", "val_miou", "val_pixel_accuracy", "seconds"]].to_dict(
            "records"
        ),
    }
    return export_model(model, preprocess, metrics, out, recipe, overwrite=overwrite)


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


def _latest_name(store: Store) -> str:
    from nasfcn.store import searches_frame

    return str(searches_frame(store)["name"].iloc[0])


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


@contextlib.contextmanager
def _local_checkpoint(location: str, record: Mapping[str, Any]) -> Iterator[Path]:
    """The checkpoint as a local folder; one on remote storage (``s3://...``) is copied first."""
    from nasfcn.train import CHECKPOINT_INFO, CHECKPOINT_WEIGHTS

    where = f"trial {record['source_number']} of search {record['source_search']!r}"
    if "://" not in location:
        folder = Path(location)
        if not (folder / CHECKPOINT_WEIGHTS).is_file() or not (folder / CHECKPOINT_INFO).is_file():
            raise ExportError(
                f"the checkpoint of {where} is gone: {folder} holds no {CHECKPOINT_WEIGHTS} + "
                f"{CHECKPOINT_INFO} (were the search's runs/ deleted, or did it run on another "
                f"machine?); copy the folder back, or train the architecture again with nasfcn train"
            )
        yield folder
        return
    import pyarrow.fs

    with tempfile.TemporaryDirectory(prefix="nasfcn-checkpoint-") as scratch:
        try:
            filesystem, root = pyarrow.fs.FileSystem.from_uri(location)
            for name in (CHECKPOINT_WEIGHTS, CHECKPOINT_INFO):
                with filesystem.open_input_stream(f"{root.rstrip('/')}/{name}") as stream:
                    (Path(scratch) / name).write_bytes(stream.read())
        except (OSError, ValueError) as err:  # pyarrow raises these for missing files and bad URIs
            raise ExportError(
                f"cannot read the checkpoint of {where} at {location} ({err}); check the storage "
                f"credentials and that the files are still there"
            ) from err
        yield Path(scratch)


def _load_checkpoint(folder: Path, record: Mapping[str, Any]) -> tuple[FCN, dict[str, Any]]:
    from nasfcn.genotype import GenotypeError
    from nasfcn.train import load_checkpoint

    try:
        model, info = load_checkpoint(folder)
    except (OSError, ValueError, KeyError, GenotypeError, RuntimeError) as err:
        raise ExportError(f"cannot load the checkpoint in {folder} ({type(err).__name__}: {err})") from err
    if model.genotype.arch_id != record["arch_id"]:  # type: ignore[union-attr]
        raise ExportError(
            f"the checkpoint in {folder} holds architecture {model.genotype.arch_id} but trial "  # type: ignore[union-attr]
            f"{record['number']} of {record['search']!r} is {record['arch_id']}; the database points at "
            f"the wrong folder"
        )
    return model, info  # type: ignore[return-value]
