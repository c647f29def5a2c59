"""``manifest.json``: size and SHA-256 of every other bundle file, written last and checked on load."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from nasfcn.bundle._files import (
    BUNDLE_FILES,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    REEXPORT,
    BundleError,
    BundleWarning,
)
from nasfcn.bundle._read import Reader


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


def verify_manifest(reader: Reader, present: tuple[str, ...]) -> None:
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


def _manifest_entries(reader: Reader) -> dict[str, tuple[int, str]]:
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
