"""Writing a bundle's own files (the ONNX and TorchScript exports come from ``nasfcn.export``)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasfcn.bundle._files import (
    BUNDLE_FILES,
    CARD_FILE,
    FINETUNE_FILE,
    FORMAT,
    GENOTYPE_FILE,
    METRICS_FILE,
    PREPROCESS_FILE,
    WEIGHTS_FILE,
)
from nasfcn.bundle._json import json_safe
from nasfcn.bundle._manifest import write_manifest
from nasfcn.bundle._preprocess import Preprocess
from nasfcn.bundle._recipe import FinetuneRecipe
from nasfcn.model import FCN


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


def write_zip(folder: str | Path, path: str | Path) -> None:
    """Pack a bundle folder into ``path`` (files at the archive's top level)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in BUNDLE_FILES:
            member = Path(folder) / name
            if member.is_file():
                archive.write(member, name)
