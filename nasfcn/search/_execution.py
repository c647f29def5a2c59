"""Where and how a run executes (``Execution``): shared by searches, benchmarks and tables.

What a run's results mean lives in its own config (``SearchConfig``, ``BenchmarkConfig``);
this holds only the settings a resume may change (resources, Ray, storage, cache, device)
and the database the run is recorded in. Configs compose it as ``config.execution`` and
store it as the ``execution`` entry of their config JSON; runs recorded before that
stored these fields at the top level, and ``flat_config`` reads both shapes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

#: The entry of a stored config that holds its ``Execution``.
EXECUTION = "execution"


@dataclass(frozen=True)
class Execution:
    """Resources, cluster, storage and database of a run; the CLI options map one to one."""

    db: str | None = None  # SQLAlchemy URL; None: $NASFCN_DB or sqlite:///nasfcn.db
    ray_address: str | None = None  # an existing Ray cluster; None starts a local Ray
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    concurrency: int | None = None  # trials at once; default: what the resources allow
    storage_path: str | None = None  # checkpoints and logs; default runs/<name>
    cache: bool = True  # reuse results of identical (architecture, knobs, data, recipe, seed)
    device: str = "auto"  # training device inside a trial: auto | cpu | cuda
    quiet: bool = False  # no live view (tests, scripts)
    resume: bool = False  # continue the stored run of this name

    def problems(self) -> list[str]:
        """What is wrong with these settings, one line each in the CLI's option names."""
        problems = []
        if self.cpus_per_trial <= 0:
            problems.append(f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            problems.append(f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}")
        if self.concurrency is not None and self.concurrency < 1:
            problems.append(f"--concurrency must be >= 1, got {self.concurrency}")
        return problems

    @property
    def remote_storage(self) -> bool:
        """``storage_path`` is a URI (s3://, gs://, ...) that every node of a cluster can reach."""
        return self.storage_path is not None and is_uri(self.storage_path)

    @property
    def resources(self) -> dict[str, float]:
        """What Ray reserves for one trial."""
        return {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}

    @property
    def threads(self) -> int:
        """Torch threads in a trial: its whole CPUs."""
        return max(1, int(self.cpus_per_trial))

    def trial_device(self) -> str:
        """What a trial trains on: the GPU Ray assigns when it is given one, else ``device``."""
        return "cuda" if self.gpus_per_trial > 0 else ("cpu" if self.device == "auto" else self.device)

    def default_concurrency(self) -> int:
        return default_concurrency(self.concurrency, self.cpus_per_trial)

    def run_folder(self, name: str) -> Path:
        return run_folder(self.storage_path, name)

    def checkpoint_storage(self, name: str) -> str:
        return checkpoint_storage(self.storage_path, name)

    def as_dict(self) -> dict[str, Any]:
        """The settings as stored with a run: URLs masked."""
        return masked_locations(asdict(self))


EXECUTION_FIELDS = tuple(spec.name for spec in fields(Execution))


def flat_config(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored config with its execution settings at the top level, whichever shape it was stored in."""
    flat = {key: value for key, value in stored.items() if key != EXECUTION}
    nested = stored.get(EXECUTION)
    if isinstance(nested, Mapping):
        flat.update(nested)
    return flat


def execution_options(options: Mapping[str, Any]) -> tuple[Execution, dict[str, Any]]:
    """Split flat keyword options into an ``Execution`` and the rest (scripts written flat)."""
    given = {key: value for key, value in options.items() if key in EXECUTION_FIELDS}
    rest = {key: value for key, value in options.items() if key not in EXECUTION_FIELDS}
    return Execution(**given), rest


C = TypeVar("C")


def with_execution(config: C, **changes: Any) -> C:
    """``config`` (a SearchConfig, BenchmarkConfig, ...) with these execution settings changed."""
    execution = replace(config.execution, **changes)  # type: ignore[attr-defined]
    return replace(config, execution=execution)  # type: ignore[type-var]


def default_concurrency(concurrency: int | None, cpus_per_trial: float) -> int:
    """Trials at once: as asked, else as many as this machine's CPUs hold."""
    if concurrency is not None:
        return concurrency
    return max(1, int((os.cpu_count() or 1) // cpus_per_trial))


def run_folder(storage_path: str | None, name: str) -> Path:
    """The local folder for a run's log and space file (and its checkpoints unless remote)."""
    if storage_path and not is_uri(storage_path):
        return Path(storage_path.removeprefix("file://")).expanduser().resolve()
    return (Path("runs") / name).resolve()


def checkpoint_storage(storage_path: str | None, name: str) -> str:
    """Ray Tune's storage path: the run folder, or ``<URI>/<name>`` on remote storage."""
    if storage_path and is_uri(storage_path):
        return f"{storage_path.rstrip('/')}/{name}"
    return str(run_folder(storage_path, name))


def is_uri(location: str) -> bool:
    """A remote location such as s3://bucket/path (file:// and Windows drives are local)."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme != "file"


def masked_locations(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with credentials masked in its URLs: it is stored in the database and shown."""
    from nasfcn.store import mask_text, mask_url

    masked = dict(config)
    if masked.get("db"):
        masked["db"] = mask_url(masked["db"])
    for key in ("storage_path", "ray_address"):  # s3://key:secret@bucket works in pyarrow
        if masked.get(key):
            masked[key] = mask_text(masked[key])
    return masked
