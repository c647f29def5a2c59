"""Writes. Every one is idempotent: writing the same epoch or result twice (as a resumed
search does) updates the row instead of adding another (unique constraints + upserts)."""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nasfcn.genotype import Genotype, canonical_json
from nasfcn.store._engine import Store, StoreError
from nasfcn.store._schema import (
    FINISHED_STATUSES,
    SEARCH_STATUSES,
    TRIAL_STATUSES,
    Architecture,
    Epoch,
    Search,
    Trial,
    TrialCost,
)

TRACEBACK_LINES = 40  # the excerpt of a failed trial's traceback that is kept

# The dialects with INSERT ... ON CONFLICT; their inserts share on_conflict_* but no common type
# declares it, hence Callable[..., Any].
_INSERTS: dict[str, Callable[..., Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class SearchExistsError(StoreError):
    """A search of that name is already in the database."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def recipe_key(recipe: Mapping[str, Any], data: Mapping[str, Any] | None = None) -> str:
    """Hash of what a result means beyond its network and dataset: the training recipe and the
    data config it trained on (``DataConfig.key()``). Results are only reused under the same key.

    Without ``data``: the recipe alone, the formula of the versions before the data config
    counted (what their stored trials hold); no lookup with a data config matches it.
    """
    content: Any = dict(recipe) if data is None else {"recipe": dict(recipe), "data": dict(data)}
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()[:16]


def software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("nasfcn", "torch", "ray", "optuna", "sqlalchemy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _json(value: Any) -> str:
    return json.dumps(_finite(value), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    """NaN/inf become None so every JSON column is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _upsert(
    session: Session, model: type, values: dict[str, Any], keys: Sequence[str], overwrite: bool = True
) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE, on SQLite and PostgreSQL; returns the row id.

    ``created_at`` keeps its first value; with ``overwrite=False`` an existing row is left as is.
    """
    dialect = session.get_bind().dialect.name
    insert = _INSERTS.get(dialect)
    table = model.__table__  # type: ignore[attr-defined]
    primary = next(iter(table.primary_key.columns))
    if insert is None:  # another backend: a read-then-write under the session's transaction
        row = session.execute(select(model).filter_by(**{k: values[k] for k in keys})).scalar_one_or_none()
        if row is None:
            row = model(**values)
            session.add(row)
        elif overwrite:
            for name, value in values.items():
                if name != "created_at":
                    setattr(row, name, value)
        session.flush()
        return getattr(row, primary.name)
    statement = insert(table).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in keys and k != "created_at"}
    changes = changes if overwrite else {}
    if changes:
        statement = statement.on_conflict_do_update(index_elements=list(keys), set_=changes)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    result = session.execute(statement.returning(primary))
    found = result.scalar_one_or_none()
    if found is None:  # DO NOTHING returns no row: look it up
        found = session.execute(select(primary).where(*(table.c[k] == values[k] for k in keys))).scalar_one()
    return found


def create_search(
    store: Store,
    name: str,
    dataset: str,
    *,
    space_name: str | None = None,
    space_yaml: str | None = None,
    config: Mapping[str, Any] | None = None,
    recipe: Mapping[str, Any] | None = None,
    kind: str = "search",
    resume: bool = False,
) -> int:
    """Register a search; with ``resume`` continue the existing one of that name.

    A resume records ``config`` (as the resume merged it: new trials, resources, ...), so
    the next resume continues with it.
    """
    with store.session_scope() as session:
        existing = session.execute(select(Search).where(Search.name == name)).scalar_one_or_none()
        if existing is not None:
            if not resume:
                raise SearchExistsError(
                    f"a search named {name!r} already exists in {store.masked_url}: "
                    "continue it with --resume, or choose another --name"
                )
            existing.status = "running"
            existing.finished_at = None
            if config is not None:
                existing.config_json = _json(dict(config))
            return existing.id
        search = Search(
            name=name,
            kind=kind,
            space_name=space_name,
            space_yaml=space_yaml,
            dataset=dataset,
            config_json=_json(dict(config or {})),
            recipe_json=_json(dict(recipe or {})),
            versions_json=_json(software_versions()),
            status="running",
            created_at=now(),
            started_at=now(),
        )
        session.add(search)
        session.flush()
        return search.id


def set_search_status(store: Store, search_id: int, status: str) -> None:
    if status not in SEARCH_STATUSES:
        raise ValueError(f"unknown search status {status!r}; valid: {', '.join(SEARCH_STATUSES)}")
    finished = now() if status in ("completed", "interrupted", "failed") else None
    with store.session_scope() as session:
        session.execute(
            update(Search).where(Search.id == search_id).values(status=status, finished_at=finished)
        )


def upsert_architecture(store: Store, genotype: Genotype) -> str:
    """Make sure the network has its one row (shared by every trial that built it)."""
    values = {"arch_id": genotype.arch_id, "genotype_json": genotype.arch_json(), "created_at": now()}
    with store.session_scope() as session:
        _upsert(session, Architecture, values, ["arch_id"], overwrite=False)
    return genotype.arch_id


def record_cost(store: Store, trial_id: int, cost: Mapping[str, Any]) -> None:
    """Store what a trial measured (``CostReport.as_dict()``), with the input and device it ran at.

    The figures belong to this trial alone: another search's measurement of the same network
    at another size or on another device never replaces them. Writing them again updates them.
    """
    shape = cost.get("input_shape")
    values = {
        "trial_id": trial_id,
        "params": cost.get("params"),
        "flops": cost.get("flops"),
        "latency_ms": _number(cost.get("latency_ms")),
        "peak_memory_mb": _number(cost.get("peak_memory_mb")),
        "device": cost.get("device"),
        "input": "x".join(str(s) for s in shape) if shape else None,
    }
    with store.session_scope() as session:
        values["arch_id"] = _trial(session, trial_id).arch_id
        _upsert(session, TrialCost, values, ["trial_id"])


def upsert_trial(
    store: Store,
    search_id: int,
    number: int,
    genotype: Genotype,
    *,
    dataset: str,
    recipe: Mapping[str, Any],
    status: str = "pending",
    seed: int = 0,
    ray_trial_id: str | None = None,
    checkpoint: str | None = None,
    params: Mapping[str, Any] | None = None,
    reference: str | None = None,
    confirms: int | None = None,
    extends: int | None = None,
    data: Mapping[str, Any] | None = None,
) -> int:
    """Create the trial row (or update its status/ids when it exists); returns its id.

    ``confirms``: the number of the trial this run re-seeds (a confirmation run), else None;
    ``extends``: the number of the trial whose network this run trains for longer (a final run).
    ``data`` is the data config the trial trains on (``DataConfig.key()``), part of its reuse
    key with ``recipe`` (see ``recipe_key``). An ``interrupted`` row started again is its
    configuration re-run by a resume: it starts from scratch (the partial epochs and metrics of
    the interrupted run are dropped) and takes this version's key.
    """
    _check_status(status)
    upsert_architecture(store, genotype)
    values: dict[str, Any] = {
        "search_id": search_id,
        "number": number,
        "arch_id": genotype.arch_id,
        "trial_key": genotype.trial_key,
        "genotype_json": genotype.to_json(),
        "params_json": _json(dict(params)) if params is not None else None,
        "dataset": dataset,
        "recipe_key": recipe_key(recipe, data),
        "seed": seed,
        "status": status,
        "epochs_trained": 0,
        "reference": reference,
        "confirms": confirms,
        "extends": extends,
    }
    if status == "running":
        values["started_at"] = now()
    with store.session_scope() as session:
        existing = session.execute(
            select(Trial).where(Trial.search_id == search_id, Trial.number == number)
        ).scalar_one_or_none()
        if existing is not None:
            if existing.status in FINISHED_STATUSES and status not in FINISHED_STATUSES:
                return existing.id  # a finished trial is never reopened (resume safety)
            if existing.status == "interrupted" and status == "running":
                _restart(session, existing, genotype)
                existing.recipe_key = values["recipe_key"]
            existing.status = status
            existing.ray_trial_id = ray_trial_id or existing.ray_trial_id
            existing.checkpoint = checkpoint or existing.checkpoint
            if status == "running" and existing.started_at is None:
                existing.started_at = now()
            return existing.id
        values["ray_trial_id"] = ray_trial_id
        values["checkpoint"] = checkpoint
        return int(_upsert(session, Trial, values, ["search_id", "number"]))


def record_epoch(store: Store, trial_id: int, epoch: int, metrics: Mapping[str, Any]) -> None:
    """Store one epoch's results (metrics as ``fit`` reports them); rewriting it updates it."""
    per_class = metrics.get("val_per_class_iou")
    values: dict[str, Any] = {
        "trial_id": trial_id,
        "epoch": int(epoch),
        "train_loss": _number(metrics.get("train_loss")),
        "val_miou": _number(metrics.get("val_miou")),
        "val_pixel_accuracy": _number(metrics.get("val_pixel_accuracy")),
        "per_class_iou_json": _json(list(per_class)) if per_class is not None else None,
        "seconds": _number(metrics.get("seconds")),
        "lr": _number(metrics.get("lr")),
        "images_per_s": _number(metrics.get("images_per_s")),
    }
    with store.session_scope() as session:
        _upsert(session, Epoch, values, ["trial_id", "epoch"])
        trial = _trial(session, trial_id)
        trial.epochs_trained = max(trial.epochs_trained or 0, int(epoch))
        miou = values["val_miou"]
        if miou is not None and (trial.best_miou is None or miou > trial.best_miou):
            trial.best_miou = miou
            trial.best_epoch = int(epoch)
            trial.best_pixel_accuracy = values["val_pixel_accuracy"]
            trial.best_metrics_json = _json(dict(metrics))
        trial.final_miou = miou
        trial.final_metrics_json = _json(dict(metrics))
        if metrics.get("train_device"):
            trial.train_device = str(metrics["train_device"])
        peak = _number(metrics.get("peak_train_memory_mb"))
        if peak is not None:
            trial.peak_train_memory_mb = max(peak, trial.peak_train_memory_mb or 0.0)
        if trial.status == "pending":
            trial.status = "running"


def finish_trial(
    store: Store,
    trial_id: int,
    status: str,
    *,
    error: str | None = None,
    traceback: str | None = None,
    checkpoint: str | None = None,
    cached_from: int | None = None,
) -> None:
    """Mark a trial finished (or interrupted); its best/final metrics come from its epochs."""
    _check_status(status)
    if cached_from is not None and cached_from == trial_id:
        # Only two drivers sharing one search's trial numbers could ask for this (see leases).
        raise StoreError(f"trial {trial_id} cannot be cached from itself: cached_from must be another trial")
    with store.session_scope() as session:
        trial = _trial(session, trial_id)
        trial.status = status
        trial.finished_at = now()
        if error is not None:
            trial.error = error
        if traceback is not None:
            trial.traceback = "\n".join(traceback.rstrip().splitlines()[-TRACEBACK_LINES:])
        if checkpoint is not None:
            trial.checkpoint = checkpoint
        if cached_from is not None:
            source = session.get(Trial, cached_from)
            if source is None:
                raise StoreError(f"no trial with id {cached_from} to reuse")
            trial.cached_from = cached_from
            for name in (
                "best_epoch",
                "best_miou",
                "best_pixel_accuracy",
                "final_miou",
                "epochs_trained",
                "best_metrics_json",
                "final_metrics_json",
                "checkpoint",
                "train_device",
                "peak_train_memory_mb",
            ):
                setattr(trial, name, getattr(source, name))
            if trial.cost is None and source.cost is not None:  # it measured nothing of its own
                trial.cost = _copied_cost(source.cost)


def _copied_cost(cost: TrialCost) -> TrialCost:
    names = ("arch_id", "input", "device", "params", "flops", "latency_ms", "peak_memory_mb")
    return TrialCost(**{name: getattr(cost, name) for name in names})


def find_reusable(
    store: Store,
    genotype: Genotype,
    dataset: str,
    recipe: Mapping[str, Any],
    data: Mapping[str, Any],
    search_id: int | None = None,
) -> int | None:
    """The best finished trial of the same network, training knobs, dataset, recipe and data config.

    A trial of the search ``search_id`` itself stored under the older recipe-only key counts
    too: a resumed search trained it on the data it still uses (its data settings are kept).
    """
    same = Trial.recipe_key == recipe_key(recipe, data)
    if search_id is not None:
        same = or_(same, and_(Trial.search_id == search_id, Trial.recipe_key == recipe_key(recipe)))
    with store.session_scope() as session:
        row = session.execute(
            select(Trial.id)
            .where(
                Trial.trial_key == genotype.trial_key,
                Trial.dataset == dataset,
                same,
                Trial.status.in_(("completed",)),
                Trial.cached_from.is_(None),
            )
            .order_by(Trial.best_miou.desc().nulls_last(), Trial.id)
            .limit(1)
        ).scalar_one_or_none()
    return row


def _trial(session: Session, trial_id: int) -> Trial:
    trial = session.get(Trial, trial_id)
    if trial is None:
        raise StoreError(f"no trial with id {trial_id}")
    return trial


def _check_status(status: str) -> None:
    if status not in TRIAL_STATUSES:
        raise ValueError(f"unknown trial status {status!r}; valid: {', '.join(TRIAL_STATUSES)}")


def interrupt_unfinished(store: Store, search_id: int) -> int:
    """Mark the search's pending/running trials as interrupted (after Ctrl-C or a crash)."""
    with store.session_scope() as session:
        result = session.execute(
            update(Trial)
            .where(Trial.search_id == search_id, Trial.status.in_(("pending", "running")))
            .values(status="interrupted", finished_at=now())
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _restart(session: Session, trial: Trial, genotype: Genotype) -> None:
    """Clear what an interrupted run of ``trial`` left, before the same configuration runs again."""
    if trial.trial_key != genotype.trial_key:
        raise StoreError(
            f"trial {trial.number} of search {trial.search_id} was {trial.arch_id}; "
            f"it cannot be re-run as {genotype.arch_id}"
        )
    session.execute(delete(Epoch).where(Epoch.trial_id == trial.id))
    for name in (
        "best_epoch",
        "best_miou",
        "best_pixel_accuracy",
        "final_miou",
        "best_metrics_json",
        "final_metrics_json",
        "error",
        "traceback",
        "checkpoint",
        "train_device",
        "peak_train_memory_mb",
        "cached_from",
        "finished_at",
        "ray_trial_id",
    ):
        setattr(trial, name, None)
    trial.epochs_trained = 0
    trial.started_at = now()


def finished_trials(store: Store, search_id: int) -> list[dict[str, Any]]:
    """The finished trials of a search, oldest first, as the resume logic needs them."""
    return _trial_rows(store, search_id, FINISHED_STATUSES)


def interrupted_trials(store: Store, search_id: int) -> list[dict[str, Any]]:
    """The interrupted trials of a search, oldest first: what a resume runs again."""
    return _trial_rows(store, search_id, ("interrupted",))


def _trial_rows(store: Store, search_id: int, statuses: Sequence[str]) -> list[dict[str, Any]]:
    with store.session_scope() as session:
        rows = session.execute(
            select(Trial, TrialCost)
            .outerjoin(TrialCost, TrialCost.trial_id == Trial.id)
            .where(Trial.search_id == search_id, Trial.status.in_(statuses))
            .order_by(Trial.number)
        ).all()
        return [
            {
                "number": trial.number,
                "status": trial.status,
                "genotype_json": trial.genotype_json,
                "params": json.loads(trial.params_json) if trial.params_json else None,
                "best_miou": trial.best_miou,
                "latency_ms": cost.latency_ms if cost else None,
                "params_count": cost.params if cost else None,
                "flops": cost.flops if cost else None,
                "reference": trial.reference,
                "trial_key": trial.trial_key,
                "dataset": trial.dataset,
                "seed": trial.seed,
                "confirms": trial.confirms,
                "extends": trial.extends,
                "epochs_trained": trial.epochs_trained,
            }
            for trial, cost in rows
        ]


def set_test_metrics(store: Store, trial_id: int, metrics: Mapping[str, Any]) -> None:
    """Record a trial's figures on the held-out test split (``miou`` among them; the split the
    search never selected on)."""
    with store.session_scope() as session:
        trial = _trial(session, trial_id)
        trial.test_miou = _number(metrics.get("miou"))
        trial.test_metrics_json = _json(dict(metrics))


def next_trial_number(store: Store, search_id: int) -> int:
    with store.session_scope() as session:
        highest = session.execute(select(func.max(Trial.number)).where(Trial.search_id == search_id)).scalar()
    return 0 if highest is None else int(highest) + 1


def set_checkpoint(store: Store, trial_id: int, location: str) -> None:
    """Record where a trial's best checkpoint lives (a folder, or a URI on a cluster)."""
    with store.session_scope() as session:
        trial = _trial(session, trial_id)
        trial.checkpoint = location


def reusable_result(
    store: Store,
    genotype: Genotype,
    dataset: str,
    recipe: Mapping[str, Any],
    data: Mapping[str, Any],
    search_id: int | None = None,
) -> dict[str, Any] | None:
    """A finished result to reuse instead of training again: its trial id, metrics and cost.

    Matched as ``find_reusable`` does. ``cost`` says where the reused trial measured its figures
    (``input_shape``, ``device``; None when it has none): a trial that would measure elsewhere
    measures its own.
    """
    trial_id = find_reusable(store, genotype, dataset, recipe, data, search_id)
    if trial_id is None:
        return None
    with store.session_scope() as session:
        trial = session.get(Trial, trial_id)
        if trial is None or trial.best_metrics_json is None:
            return None
        metrics = {k: v for k, v in json.loads(trial.best_metrics_json).items() if k != "cost"}
        cost = trial.cost
        metrics.update(
            params=cost.params if cost else None,
            flops=cost.flops if cost else None,
            latency_ms=cost.latency_ms if cost else None,
            peak_memory_mb=cost.peak_memory_mb if cost else None,
            epoch=trial.best_epoch,
        )
        where = None
        if cost is not None and cost.input:
            where = {"input_shape": [int(side) for side in cost.input.split("x")], "device": cost.device}
        return {"trial_id": trial_id, "metrics": metrics, "cost": where}


def get_search(store: Store, name: str) -> dict[str, Any] | None:
    """The stored facts of a search (what a resume must reuse), or None if there is none."""
    with store.session_scope() as session:
        search = session.execute(select(Search).where(Search.name == name)).scalar_one_or_none()
        if search is None:
            return None
        return {
            "id": search.id,
            "name": search.name,
            "kind": search.kind,
            "space_name": search.space_name,
            "space_yaml": search.space_yaml,
            "dataset": search.dataset,
            "status": search.status,
            "config": json.loads(search.config_json),
            "recipe": json.loads(search.recipe_json),
            "versions": json.loads(search.versions_json or "{}"),
            "created_at": search.created_at,
            "finished_at": search.finished_at,
        }
