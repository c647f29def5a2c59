"""Model -> bundle: the weights, ONNX and TorchScript, each checked against PyTorch before
anything is moved into place."""

from __future__ import annotations

import contextlib
import copy
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from nasfcn.export._card import model_card
from nasfcn.model import FCN

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
