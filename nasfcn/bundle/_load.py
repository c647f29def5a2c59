"""Loading a bundle: its description files checked, then its weights checked against the
network ``genotype.json`` describes (shapes first, on the meta device), then built."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nasfcn.bundle._files import (
    BUNDLE_FILES,
    FINETUNE_FILE,
    FORMAT,
    GENOTYPE_FILE,
    MAX_JSON_DEPTH,
    MAX_PARAMS,
    METRICS_FILE,
    PREPROCESS_FILE,
    REEXPORT,
    REQUIRED_FILES,
    WEIGHTS_FILE,
    BundleError,
)
from nasfcn.bundle._json import json_depth
from nasfcn.bundle._manifest import verify_manifest
from nasfcn.bundle._preprocess import Preprocess
from nasfcn.bundle._read import Reader
from nasfcn.bundle._recipe import FinetuneRecipe
from nasfcn.genotype import Genotype, GenotypeError
from nasfcn.model import FCN, build_model


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


def read_info(path: str | Path) -> tuple[BundleInfo, Reader]:
    """Check and read a bundle's description files (not the weights)."""
    reader = Reader(Path(path))
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
    verify_manifest(reader, info.files)
    try:
        state = load(data)
    except (SafetensorError, ValueError) as err:
        raise BundleError(f"{weights_path}: not a readable safetensors file ({err}); {REEXPORT}") from err
    model = build_model(info.genotype, info.num_classes, info.in_channels)
    model.load_state_dict(state)
    return model.to(device).eval(), info


def _safetensors_header(data: bytes) -> dict[str, Any]:
    """The tensor entries and ``__metadata__`` of a safetensors header (8-byte little-endian
    length, then JSON), read without loading any tensor."""
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError("header longer than the file (truncated?)")
    text = data[8 : 8 + length]
    if json_depth(text) > MAX_JSON_DEPTH:
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
