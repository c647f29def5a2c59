"""Reading a bundle folder or zip by file name, each file within its size limit and the
whole bundle within ``MAX_BUNDLE_BYTES``: zip headers are checked before anything is
decompressed, and reading stops at the limit whatever the headers say."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from nasfcn.bundle._files import (
    BUNDLE_FILES,
    GENOTYPE_FILE,
    MAX_BUNDLE_BYTES,
    MAX_JSON_DEPTH,
    REEXPORT,
    BundleError,
    size_limit,
)
from nasfcn.bundle._json import json_depth

#: What reading a damaged or unsupported zip member raises.
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error)


class Reader:
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
        if json_depth(data) > MAX_JSON_DEPTH:
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
