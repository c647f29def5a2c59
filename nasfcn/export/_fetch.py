"""Fetching a trial's checkpoint: a local folder, or a copy of one on remote storage."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nasfcn.export._write import ExportError
from nasfcn.model import FCN


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
