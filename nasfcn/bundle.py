"""Export bundles: one folder (or ``.zip``) with everything a trained network needs elsewhere.

=======================  ============================================================
``genotype.json``        the architecture (canonical genotype JSON)
``weights.safetensors``  the weights; its header names the architecture they belong to
``model.onnx``           ONNX, dynamic batch, height and width (checked at export)
``model.torchscript.pt`` TorchScript (traced; checked at export)
``preprocess.json``      input size trained at, mean/std, class names, palette, ignore index
``metrics.json``         where the model came from, val metrics, per-class IoU, cost
``finetune.yaml``        the staged fine-tuning recipe (:class:`FinetuneRecipe`)
``README.md``            a short model card
``manifest.json``        size and SHA-256 of every other file, checked on load
=======================  ============================================================

:func:`load_bundle` rebuilds the network from ``genotype.json`` and loads
``weights.safetensors``: no pickle anywhere. Every file it reads is checked first, so a
missing, truncated or mismatched file fails with a :class:`BundleError` naming the file
and the fix instead of loading a broken model. The ONNX and TorchScript files are
written and checked by :mod:`nasfcn.export`.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import math
import re
import struct
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import yaml

from nasfcn.errors import NasfcnError, raise_problems
from nasfcn.genotype import Genotype, GenotypeError
from nasfcn.model import FCN, build_model

GENOTYPE_FILE = "genotype.json"
WEIGHTS_FILE = "weights.safetensors"
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.torchscript.pt"
PREPROCESS_FILE = "preprocess.json"
METRICS_FILE = "metrics.json"
FINETUNE_FILE = "finetune.yaml"
CARD_FILE = "README.md"
MANIFEST_FILE = "manifest.json"
#: Every file of a complete bundle, in the order the model card lists them.
BUNDLE_FILES = (
    GENOTYPE_FILE,
    WEIGHTS_FILE,
    ONNX_FILE,
    TORCHSCRIPT_FILE,
    PREPROCESS_FILE,
    METRICS_FILE,
    FINETUNE_FILE,
    CARD_FILE,
    MANIFEST_FILE,
)
#: What ``load_bundle`` needs; the other files are for other runtimes and for people.
REQUIRED_FILES = (GENOTYPE_FILE, WEIGHTS_FILE, PREPROCESS_FILE)
#: Written into the weights' safetensors header, checked on load.
FORMAT = "nasfcn-bundle/1"
#: Written into manifest.json.
MANIFEST_FORMAT = "nasfcn-manifest/1"
#: Where a broken bundle comes from again.
REEXPORT = "export it again (nasfcn export ... --out PATH)"

#: Limits on what a bundle may hold, far above any real export (a few MB of weights, KBs of
#: JSON), so that a hostile or broken bundle is refused before it costs gigabytes: sizes are
#: checked from zip headers and file sizes first, and reading stops at the limit.
MAX_PARAMS = 250_000_000  # numbers in the network genotype.json describes (1 GB as float32)
MAX_MODEL_BYTES = MAX_PARAMS * 4 + 64 * 2**20  # weights.safetensors, model.onnx, model.torchscript.pt
MAX_JSON_BYTES = 16 * 2**20  # genotype.json, preprocess.json, metrics.json
MAX_TEXT_BYTES = 2**20  # finetune.yaml, README.md
MAX_BUNDLE_BYTES = 3 * MAX_MODEL_BYTES + 4 * MAX_JSON_BYTES  # everything read from one bundle
MAX_JSON_DEPTH = 32  # nesting of objects and lists in a JSON file
MAX_IMAGE_SIDE = 4096  # image_size (height, width) in preprocess.json and finetune.yaml
_MODEL_FILES = (WEIGHTS_FILE, ONNX_FILE, TORCHSCRIPT_FILE)
_TEXT_FILES = (FINETUNE_FILE, CARD_FILE)


class BundleError(NasfcnError, ValueError):
    """A bundle cannot be used as it is; the message names the file and the fix."""


class RecipeError(NasfcnError, ValueError):
    """A fine-tuning recipe is malformed; the message names the file, field and allowed values."""


class BundleWarning(UserWarning):
    """A bundle loads, but something about it is unchecked (e.g. it predates ``manifest.json``)."""


# -- preprocess.json -------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocess:
    """How inputs were prepared in training, and what the outputs mean."""

    image_size: tuple[int, int]  # (height, width) the network was trained at
    mean: tuple[float, ...]  # per channel, for pixel values scaled to [0, 1]
    std: tuple[float, ...]
    class_names: tuple[str, ...]  # class index -> name
    palette: tuple[tuple[int, int, int], ...]  # class index -> RGB, for masks
    ignore_index: int = 255  # label of unlabelled pixels in masks
    dataset: str = ""  # the dataset spec trained on

    @property
    def in_channels(self) -> int:
        return len(self.mean)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """The form ``DatasetBundle.preprocess()`` writes (and checkpoints hold)."""
        return {
            **json_safe({f.name: getattr(self, f.name) for f in fields(self)}),
            "in_channels": self.in_channels,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = PREPROCESS_FILE) -> Preprocess:
        """Parse (and check) what ``DatasetBundle.preprocess()`` and ``to_dict`` write."""
        if not isinstance(data, Mapping):
            raise BundleError(f"{source}: expected a JSON object; {REEXPORT}")
        problems = []
        for key in ("image_size", "mean", "std", "class_names", "palette"):
            if not isinstance(data.get(key), list) or not data.get(key):
                problems.append(f"{key} must be a non-empty list")
        if problems:
            raise BundleError(f"{source}: " + "; ".join(problems) + f"; {REEXPORT}")
        try:
            pre = cls(
                image_size=tuple(int(v) for v in data["image_size"]),  # type: ignore[arg-type]
                mean=tuple(float(v) for v in data["mean"]),
                std=tuple(float(v) for v in data["std"]),
                class_names=tuple(str(v) for v in data["class_names"]),
                palette=tuple(tuple(int(c) for c in colour) for colour in data["palette"]),  # type: ignore[misc]
                ignore_index=int(data.get("ignore_index", 255)),
                dataset=str(data.get("dataset", "")),
            )
        except (TypeError, ValueError) as err:
            raise BundleError(f"{source}: malformed value ({err}); {REEXPORT}") from err
        if len(pre.image_size) != 2 or min(pre.image_size) < 1 or max(pre.image_size) > MAX_IMAGE_SIDE:
            problems.append(
                f"image_size must be [height, width], each 1..{MAX_IMAGE_SIDE}, got {list(pre.image_size)}"
            )
        if len(pre.std) != len(pre.mean) or any(not s > 0 for s in pre.std):
            problems.append("std must have one positive value per mean value")
        if "in_channels" in data and data["in_channels"] != len(pre.mean):
            problems.append(f"in_channels is {data['in_channels']} but mean has {len(pre.mean)} values")
        if len(pre.palette) != len(pre.class_names) or any(
            len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in pre.palette
        ):
            problems.append("palette must hold one [r, g, b] (0..255) per class name")
        if problems:
            raise BundleError(f"{source}: " + "; ".join(problems) + f"; {REEXPORT}")
        return pre


# -- finetune.yaml ---------------------------------------------------------------------------

#: The fine-tuning stages in order: what each unfreezes is defined in ``nasfcn.finetune``.
STAGES = ("head", "decoder", "full")
_INVALID = "invalid fine-tuning recipe: "
STAGE_HELP = {
    "head": "1: only the classifier head (new when the classes change) trains",
    "decoder": "2: + the decoder (upsampling, skip fusion, attention)",
    "full": "3: the whole model, at a lower learning rate",
}


@dataclass(frozen=True)
class StageRecipe:
    epochs: int  # 0 skips the stage
    lr: float  # peak learning rate of the stage


@dataclass(frozen=True)
class FinetuneRecipe:
    """Staged fine-tuning, as the FCN paper prescribes: head, then decoder, then everything."""

    head: StageRecipe = StageRecipe(epochs=4, lr=1e-2)
    decoder: StageRecipe = StageRecipe(epochs=4, lr=3e-3)
    full: StageRecipe = StageRecipe(epochs=4, lr=3e-4)
    batch_size: int = 8
    optimizer: str = "adamw"  # nasfcn.train.OPTIMIZERS key
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # nasfcn.train.SCHEDULES key, restarted in every stage
    warmup_epochs: float = 0.0  # per stage
    image_size: tuple[int, int] | None = None  # (height, width); None = the size trained at
    seed: int = 0  # data split, augmentation, new head initialisation

    def __post_init__(self) -> None:
        raise_problems(_recipe_problems(self), _INVALID, RecipeError)

    def stages(self) -> tuple[tuple[str, StageRecipe], ...]:
        return tuple((name, getattr(self, name)) for name in STAGES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": {name: {"epochs": s.epochs, "lr": s.lr} for name, s in self.stages()},
            **{f.name: getattr(self, f.name) for f in fields(self) if f.name not in STAGES},
            "image_size": list(self.image_size) if self.image_size else None,
        }

    def to_yaml(self) -> str:
        """The recipe as commented YAML (what ``finetune.yaml`` holds)."""
        lines = [
            "# Staged fine-tuning: nasfcn finetune --bundle B --data SPEC --recipe finetune.yaml --out NEW",
            "# Each stage restarts the learning-rate schedule; epochs: 0 skips a stage.",
            "stages:",
        ]
        for name, stage in self.stages():
            lines.append(
                f"  {name}: {{epochs: {stage.epochs}, lr: {_scalar(stage.lr)}}}  # {STAGE_HELP[name]}"
            )
        comments = {
            "optimizer": "  # sgd | adamw",
            "schedule": "  # cosine | poly | constant",
            "image_size": "  # [height, width]; null = the size the model was trained at",
            "seed": "  # data split, augmentation and the new head's initialisation",
        }
        for f in fields(self):
            if f.name in STAGES:
                continue
            value = getattr(self, f.name)
            text = "null" if value is None else _scalar(list(value) if isinstance(value, tuple) else value)
            lines.append(f"{f.name}: {text}{comments.get(f.name, '')}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = FINETUNE_FILE) -> FinetuneRecipe:
        """Parse a recipe; every problem is listed with its field and the allowed values."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise RecipeError(f"{source}: expected a mapping of recipe fields, got {type(data).__name__}")
        scalars = [f.name for f in fields(cls) if f.name not in STAGES]
        problems = [
            f"unknown field {key!r}; known: stages, {', '.join(scalars)}"
            for key in data
            if key != "stages" and key not in scalars
        ]
        values: dict[str, Any] = {k: data[k] for k in scalars if k in data}
        stages = data.get("stages") or {}
        if not isinstance(stages, Mapping):
            problems.append(f"stages must map {', '.join(STAGES)} to {{epochs, lr}}")
            stages = {}
        for name in stages:
            if name not in STAGES:
                problems.append(f"stages.{name}: unknown stage; stages are {', '.join(STAGES)}")
        default = cls()
        for name in STAGES:
            given = stages.get(name, {})
            if not isinstance(given, Mapping) or set(given) - {"epochs", "lr"}:
                problems.append(f"stages.{name} must be {{epochs: N, lr: X}}, got {given!r}")
                continue
            base = getattr(default, name)  # a stage given in part keeps the rest of its default
            values[name] = StageRecipe(given.get("epochs", base.epochs), given.get("lr", base.lr))
        if "image_size" in values and values["image_size"] is not None:
            size = values["image_size"]
            size = [size, size] if _is_int(size) else size
            if not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) and v >= 8 for v in size):
                problems.append(f"image_size must be [height, width] (each >= 8) or null, got {size!r}")
            elif max(size) > MAX_IMAGE_SIDE:
                problems.append(f"image_size must be at most {MAX_IMAGE_SIDE} a side, got {size!r}")
            else:
                values["image_size"] = (int(size[0]), int(size[1]))
        try:
            recipe = cls(**values)
        except RecipeError as err:  # the field checks of __post_init__, listed with the rest
            problems.append(str(err).removeprefix(_INVALID))
        raise_problems(problems, f"{source}: ", RecipeError)
        return recipe

    @classmethod
    def from_yaml(cls, text: str, source: str = FINETUNE_FILE) -> FinetuneRecipe:
        from nasfcn.space import is_refused, load_yaml, yaml_problem  # a "billion laughs" is refused

        try:
            data = load_yaml(text)
        except yaml.YAMLError as err:
            if is_refused(err):
                raise RecipeError(f"{source}: {yaml_problem(err)}") from err
            raise RecipeError(f"{source}: not valid YAML ({err})") from err
        return cls.from_dict(data, source)


def load_recipe(path: str | Path) -> FinetuneRecipe:
    """Read a ``finetune.yaml`` (errors name the file, the field and the allowed values)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_TEXT_BYTES + 1)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file; every bundle holds one ({FINETUNE_FILE})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(f"{path}: cannot read the recipe ({err})") from err
    if len(raw) > MAX_TEXT_BYTES:
        raise RecipeError(f"{path}: larger than the {MAX_TEXT_BYTES:,} bytes a recipe may hold")
    return FinetuneRecipe.from_yaml(text, str(path))


def _recipe_problems(recipe: FinetuneRecipe) -> list[str]:
    from nasfcn.train import OPTIMIZERS, SCHEDULES

    problems = []
    for name, stage in recipe.stages():
        if not _is_int(stage.epochs) or stage.epochs < 0:
            problems.append(f"stages.{name}.epochs must be an integer >= 0, got {stage.epochs!r}")
        if not _is_number(stage.lr) or not stage.lr > 0:
            problems.append(f"stages.{name}.lr must be a number > 0, got {stage.lr!r}")
    if not problems and not sum(stage.epochs for _, stage in recipe.stages()):
        problems.append("every stage has 0 epochs; give at least one stage epochs >= 1")
    if not _is_int(recipe.batch_size) or recipe.batch_size < 1:
        problems.append(f"batch_size must be an integer >= 1, got {recipe.batch_size!r}")
    for name, registry in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
        value = getattr(recipe, name)
        if not isinstance(value, str) or value not in registry:
            problems.append(f"{name} must be one of {', '.join(registry.names())}, got {value!r}")
    if not _is_number(recipe.weight_decay) or recipe.weight_decay < 0:
        problems.append(f"weight_decay must be a number >= 0, got {recipe.weight_decay!r}")
    if not _is_number(recipe.warmup_epochs) or recipe.warmup_epochs < 0:
        problems.append(f"warmup_epochs must be a number >= 0, got {recipe.warmup_epochs!r}")
    if not _is_int(recipe.seed) or recipe.seed < 0:
        problems.append(f"seed must be an integer >= 0, got {recipe.seed!r}")
    return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _scalar(value: Any) -> str:
    """YAML for one value in flow style (``1.0e-05``, not ``1e-05``, which YAML 1.1 reads as text)."""
    return yaml.safe_dump(value, default_flow_style=True).splitlines()[0]


# -- writing ---------------------------------------------------------------------------------


def write_bundle(
    folder: str | Path,
    model: FCN,
    preprocess: Preprocess,
    metrics: Mapping[str, Any],
    recipe: FinetuneRecipe,
    card: str,
) -> None:
    """Write the bundle's own files into ``folder`` (the exports come from ``nasfcn.export``)."""
    from safetensors.torch import save

    folder = Path(folder)
    if preprocess.num_classes != model.num_classes or preprocess.in_channels != model.in_channels:
        raise ValueError(
            f"preprocess describes {preprocess.num_classes} classes and {preprocess.in_channels} "
            f"channels but the model has {model.num_classes} and {model.in_channels}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT,
        "arch_id": model.genotype.arch_id,
        "num_classes": str(model.num_classes),
        "in_channels": str(model.in_channels),
    }
    (folder / WEIGHTS_FILE).write_bytes(save(state, metadata=header))
    (folder / GENOTYPE_FILE).write_text(json.dumps(model.genotype.to_dict(), indent=2, sort_keys=True) + "\n")
    (folder / PREPROCESS_FILE).write_text(json.dumps(preprocess.to_dict(), indent=2) + "\n")
    (folder / METRICS_FILE).write_text(json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n")
    (folder / FINETUNE_FILE).write_text(recipe.to_yaml())
    (folder / CARD_FILE).write_text(card)
    write_manifest(folder)


def write_manifest(folder: str | Path) -> None:
    """``manifest.json``: size and SHA-256 of every other bundle file in ``folder`` (the ONNX and
    TorchScript files are written before it), so that a file changed or swapped after export (a
    ``model.onnx`` of another network) is named on load instead of silently used."""
    folder = Path(folder)
    files = {}
    for name in BUNDLE_FILES:
        path = folder / name
        if name != MANIFEST_FILE and path.is_file():
            sha = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(2**20):
                    sha.update(chunk)
            files[name] = {"size": path.stat().st_size, "sha256": sha.hexdigest()}
    manifest = {"format": MANIFEST_FORMAT, "files": files}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def write_zip(folder: str | Path, path: str | Path) -> None:
    """Pack a bundle folder into ``path`` (files at the archive's top level)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in BUNDLE_FILES:
            member = Path(folder) / name
            if member.is_file():
                archive.write(member, name)


def json_safe(value: Any) -> Any:
    """Plain JSON types: numpy scalars become numbers, NaN/inf become None, tuples lists."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if type(value).__name__ == "NAType":  # pandas' missing value
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)  # timestamps, paths


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleInfo:
    """What a bundle says about its model (everything but the weights)."""

    path: Path
    genotype: Genotype
    preprocess: Preprocess
    metrics: Mapping[str, Any] = field(default_factory=dict)
    recipe: FinetuneRecipe = field(default_factory=FinetuneRecipe)  # from finetune.yaml
    files: tuple[str, ...] = ()  # the bundle files present

    @property
    def arch_id(self) -> str:
        return self.genotype.arch_id

    @property
    def num_classes(self) -> int:
        return self.preprocess.num_classes

    @property
    def in_channels(self) -> int:
        return self.preprocess.in_channels


class _Reader:
    """The members of a bundle folder or zip, read by name, each within its size limit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: dict[str, zipfile.ZipInfo] | None = None  # bundle file name -> zip member
        self._read = 0  # bytes read so far, against MAX_BUNDLE_BYTES
        self._digests: dict[str, tuple[int, str]] = {}  # name -> (size, sha256) of what was read
        if path.is_file():
            try:
                with zipfile.ZipFile(path) as archive:
                    members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
                    # Bundles zipped by hand often keep their folder: accept one top-level folder.
                    prefix = min(
                        (n[: -len(GENOTYPE_FILE)] for n in members if n.endswith(GENOTYPE_FILE)),
                        key=len,
                        default="",
                    )
                    self._zip = {
                        name[len(prefix) :]: info
                        for name, info in members.items()
                        if name.startswith(prefix) and name[len(prefix) :] in BUNDLE_FILES
                    }
            except (zipfile.BadZipFile, OSError) as err:
                raise BundleError(
                    f"{path}: not a bundle folder or a readable zip ({err}); {REEXPORT}"
                ) from err
            _check_declared_sizes(path, {name: info.file_size for name, info in self._zip.items()})
        elif not path.is_dir():
            raise BundleError(
                f"{path}: no such bundle; make one with `nasfcn export --search NAME --out {path}`"
            )
        else:
            _refuse_links_out(path)

    def names(self) -> tuple[str, ...]:
        if self._zip is not None:
            return tuple(n for n in BUNDLE_FILES if n in self._zip)
        return tuple(n for n in BUNDLE_FILES if (self.path / n).is_file())

    def bytes(self, name: str) -> bytes:
        data = b"".join(self._chunks(name))
        self._digests[name] = (len(data), hashlib.sha256(data).hexdigest())
        return data

    def digest(self, name: str) -> tuple[int, str]:
        """Size and SHA-256 of a file, streamed (and read only once: ``bytes`` remembers it)."""
        if name not in self._digests:
            sha, size = hashlib.sha256(), 0
            for chunk in self._chunks(name):
                sha.update(chunk)
                size += len(chunk)
            self._digests[name] = (size, sha.hexdigest())
        return self._digests[name]

    def _chunks(self, name: str) -> Iterator[builtins.bytes]:
        """The file in chunks, stopped past its size limit or the bundle's, whatever headers say."""
        limit = min(size_limit(name), MAX_BUNDLE_BYTES - self._read)
        where = self.path / name
        size = 0
        with contextlib.ExitStack() as stack:
            handle = self._open(name, limit, stack)
            while True:
                try:
                    chunk = handle.read(2**20)
                except _ZIP_ERRORS as err:
                    raise BundleError(f"{where}: cannot be read from the zip ({err}); {REEXPORT}") from err
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise _too_large(where, size_limit(name), self._read)
                yield chunk
        self._read += size

    def _open(self, name: str, limit: int, stack: contextlib.ExitStack) -> IO[builtins.bytes]:
        if self._zip is None:
            if (self.path / name).stat().st_size > limit:
                raise _too_large(self.path / name, size_limit(name), self._read)
            return stack.enter_context((self.path / name).open("rb"))
        try:
            archive = stack.enter_context(zipfile.ZipFile(self.path))
            return stack.enter_context(archive.open(self._zip[name]))
        except _ZIP_ERRORS as err:
            raise BundleError(f"{self.path / name}: cannot be read from the zip ({err}); {REEXPORT}") from err

    def json(self, name: str) -> Any:
        data = self.bytes(name)
        if _json_depth(data) > MAX_JSON_DEPTH:
            raise BundleError(
                f"{self.path / name}: nested deeper than {MAX_JSON_DEPTH} levels, which no nasfcn "
                f"export writes; {REEXPORT}"
            )
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BundleError(f"{self.path / name}: not valid JSON ({err}); {REEXPORT}") from err


def _refuse_links_out(folder: Path) -> None:
    """A bundle file that is a symlink out of its folder is refused: a bundle is its folder."""
    inside = folder.resolve()
    for name in BUNDLE_FILES:
        target = (folder / name).resolve()
        if (folder / name).exists() and not target.is_relative_to(inside):
            raise BundleError(
                f"{folder / name}: a link to {target}, outside the bundle folder; copy the file "
                f"into the bundle (links that stay inside it are fine) or {REEXPORT}"
            )


def size_limit(name: str) -> int:
    """The most bytes a bundle file may hold."""
    if name in _MODEL_FILES:
        return MAX_MODEL_BYTES
    return MAX_TEXT_BYTES if name in _TEXT_FILES else MAX_JSON_BYTES


def _check_declared_sizes(path: Path, sizes: Mapping[str, int]) -> None:
    """Refuse a zip whose headers already announce too much, before decompressing anything."""
    for name, size in sizes.items():
        if size > size_limit(name):
            raise _too_large(path / name, size_limit(name), 0, declared=size)
    if sum(sizes.values()) > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"{path}: the zip's bundle files expand to {sum(sizes.values()):,} bytes, more than the "
            f"{MAX_BUNDLE_BYTES:,} a bundle may hold; {REEXPORT}"
        )


def _too_large(path: Path, limit: int, read: int, declared: int | None = None) -> BundleError:
    said = f" (its zip header says {declared:,})" if declared is not None else ""
    if limit > MAX_BUNDLE_BYTES - read:
        return BundleError(
            f"{path}: reading it would take the bundle past the {MAX_BUNDLE_BYTES:,} bytes it may "
            f"hold{said}; {REEXPORT}"
        )
    return BundleError(f"{path}: larger than the {limit:,} bytes this file may hold{said}; {REEXPORT}")


#: What reading a damaged or unsupported zip member raises.
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error)


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def _json_depth(data: bytes) -> int:
    """How deeply objects and lists nest in a JSON text (strings skipped), without parsing it:
    the parser would recurse once per level."""
    codes = np.frombuffer(_JSON_STRING.sub(b"", data), dtype=np.uint8)
    steps = np.isin(codes, _OPENING).astype(np.int64) - np.isin(codes, _CLOSING)
    return int(np.cumsum(steps).max(initial=0))


_OPENING = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSING = np.frombuffer(b"]}", dtype=np.uint8)


def read_info(path: str | Path) -> tuple[BundleInfo, _Reader]:
    """Check and read a bundle's description files (not the weights)."""
    reader = _Reader(Path(path))
    present = reader.names()
    missing = [name for name in REQUIRED_FILES if name not in present]
    if missing:
        raise BundleError(
            f"{reader.path}: incomplete bundle, missing {', '.join(missing)}; "
            f"a bundle holds {', '.join(BUNDLE_FILES)}; {REEXPORT}"
        )
    try:
        genotype = Genotype.from_dict(reader.json(GENOTYPE_FILE))
    except (GenotypeError, AttributeError) as err:
        raise BundleError(f"{reader.path / GENOTYPE_FILE}: {err}; {REEXPORT}") from err
    preprocess = Preprocess.from_dict(reader.json(PREPROCESS_FILE), str(reader.path / PREPROCESS_FILE))
    metrics = reader.json(METRICS_FILE) if METRICS_FILE in present else {}
    recipe = FinetuneRecipe()
    if FINETUNE_FILE in present:
        recipe = FinetuneRecipe.from_yaml(
            reader.bytes(FINETUNE_FILE).decode("utf-8", errors="replace"), str(reader.path / FINETUNE_FILE)
        )
    info = BundleInfo(reader.path, genotype, preprocess, metrics, recipe, present)
    return info, reader


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> tuple[FCN, BundleInfo]:
    """The bundle's network (eval mode, on ``device``) and what the bundle says about it.

    The network is rebuilt from ``genotype.json`` and its weights are read from
    ``weights.safetensors``; nothing is unpickled.

    Raises:
        BundleError: a file is missing, malformed, or does not belong with the others.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    info, reader = read_info(path)
    weights_path = reader.path / WEIGHTS_FILE
    data = reader.bytes(WEIGHTS_FILE)
    try:
        tensors = _safetensors_header(data)
        header = _metadata(tensors)
        found = {
            key: tuple(int(n) for n in entry["shape"])
            for key, entry in tensors.items()
            if key != "__metadata__"
        }
    except (ValueError, TypeError, KeyError, struct.error) as err:
        raise BundleError(f"{weights_path}: not a readable safetensors file ({err}); {REEXPORT}") from err
    if header.get("format") != FORMAT:
        raise BundleError(f"{weights_path}: not written by a nasfcn export (no {FORMAT} header); {REEXPORT}")
    if header.get("arch_id") != info.arch_id:
        raise BundleError(
            f"{reader.path}: {GENOTYPE_FILE} describes architecture {info.arch_id} but {WEIGHTS_FILE} "
            f"holds the weights of {header.get('arch_id')}; the two files come from different "
            f"models: restore the original {GENOTYPE_FILE} or {REEXPORT}"
        )
    for key, noun, expected in (
        ("num_classes", "classes", info.num_classes),
        ("in_channels", "input channels", info.in_channels),
    ):
        if header.get(key) != str(expected):
            raise BundleError(
                f"{reader.path}: {PREPROCESS_FILE} gives {expected} {noun} but "
                f"{WEIGHTS_FILE} was saved with {header.get(key)}; restore the original "
                f"{PREPROCESS_FILE} or {REEXPORT}"
            )
    # Shapes first, from the header and a network without memory: a genotype that does not fit
    # its weights (or describes a giant network) is refused before anything is allocated.
    problems = _state_problems(_expected_shapes(info), found)
    if problems:
        listed = "; ".join(problems[:5]) + (f"; ... {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BundleError(
            f"{weights_path}: the weights do not fit the network {GENOTYPE_FILE} describes: "
            f"{listed}; {REEXPORT}"
        )
    _verify_manifest(reader, info.files)
    try:
        state = load(data)
    except (SafetensorError, ValueError) as err:
        raise BundleError(f"{weights_path}: not a readable safetensors file ({err}); {REEXPORT}") from err
    model = build_model(info.genotype, info.num_classes, info.in_channels)
    model.load_state_dict(state)
    return model.to(device).eval(), info


def _verify_manifest(reader: _Reader, present: tuple[str, ...]) -> None:
    """Every file matches ``manifest.json`` and every file is in it; a bundle made before
    manifests loads with a ``BundleWarning`` (nothing ties its files together)."""
    if MANIFEST_FILE not in present:
        warnings.warn(
            f"{reader.path}: no {MANIFEST_FILE} (exported before nasfcn wrote one), so model.onnx, "
            f"model.torchscript.pt and the other files are not checked against the weights; "
            f"{REEXPORT} to add one",
            BundleWarning,
            stacklevel=3,
        )
        return
    listed = _manifest_entries(reader)
    problems = [
        f"{name} is not listed in {MANIFEST_FILE}"
        for name in present
        if name not in listed and name != MANIFEST_FILE
    ]
    problems += [f"{name} is listed in {MANIFEST_FILE} but missing" for name in listed if name not in present]
    problems += [
        f"{name} does not match {MANIFEST_FILE} (changed or replaced after export)"
        for name, entry in listed.items()
        if name in present and reader.digest(name) != entry
    ]
    if problems:
        raise BundleError(
            f"{reader.path}: " + "; ".join(problems) + f"; restore the bundle's original files or {REEXPORT}"
        )


def _manifest_entries(reader: _Reader) -> dict[str, tuple[int, str]]:
    """``manifest.json`` as name -> (size, sha256), itself excluded."""
    data = reader.json(MANIFEST_FILE)
    files = data.get("files") if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None
    if not isinstance(files, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("size"), int) and isinstance(e.get("sha256"), str)
        for e in files.values()
    ):
        raise BundleError(
            f"{reader.path / MANIFEST_FILE}: not a {MANIFEST_FORMAT} manifest "
            f'({{"format": ..., "files": {{name: {{"size", "sha256"}}}}}}); {REEXPORT}'
        )
    return {str(name): (e["size"], e["sha256"]) for name, e in files.items() if name != MANIFEST_FILE}


def _safetensors_header(data: bytes) -> dict[str, Any]:
    """The tensor entries and ``__metadata__`` of a safetensors header (8-byte little-endian
    length, then JSON), read without loading any tensor."""
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError("header longer than the file (truncated?)")
    text = data[8 : 8 + length]
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"header nested deeper than {MAX_JSON_DEPTH} levels")
    header = json.loads(text.decode("utf-8"))
    if not isinstance(header, dict) or not all(isinstance(v, dict) for v in header.values()):
        raise ValueError("header is not a JSON object of tensor entries")
    return header


def _metadata(header: Mapping[str, Any]) -> dict[str, str]:
    """The string metadata of a safetensors header (and nothing else in it)."""
    metadata = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in metadata.items()}


def _expected_shapes(info: BundleInfo) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of the network ``genotype.json`` describes, built on the ``meta`` device
    (shapes only, no memory); refused past ``MAX_PARAMS``."""
    with torch.device("meta"):
        network = build_model(info.genotype, info.num_classes, info.in_channels)
    shapes = {key: tuple(tensor.shape) for key, tensor in network.state_dict().items()}
    count = sum(math.prod(shape) for shape in shapes.values())
    if count > MAX_PARAMS:
        raise BundleError(
            f"{info.path / GENOTYPE_FILE}: describes a network of {count:,} parameters, more than the "
            f"{MAX_PARAMS:,} a bundle may hold (encoder.width {info.genotype.encoder.width}); {REEXPORT}"
        )
    return shapes


def _state_problems(
    expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]]
) -> list[str]:
    problems = [f"{key} is missing" for key in expected if key not in found]
    problems += [f"{key} is not part of this network" for key in found if key not in expected]
    problems += [
        f"{key} has shape {found[key]}, the network needs {shape}"
        for key, shape in expected.items()
        if key in found and found[key] != shape
    ]
    return problems
