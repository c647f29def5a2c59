"""Zero-cost proxy scores: one row per architecture, dataset, minibatch shape, seed and proxy.

A score measures a network at initialisation, not a trial, so every trial (of any search) of
that network on that data shares it: a search looks up what is held before it scores a
network (``stored_proxies``), and a second writer of the same score (two trials of one network
at once, or ``nasfcn proxies evaluate --search``) leaves the first row as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import select

from nasfcn import catalogue
from nasfcn.store._engine import Store
from nasfcn.store._queries import _frame, search_id
from nasfcn.store._schema import ProxyScore, Search, Trial
from nasfcn.store._writes import _upsert, now

#: The columns of ``proxy_scores_frame``, in order.
PROXY_SCORE_COLUMNS = ("arch_id", "dataset", "input", "seed", "proxy", "value", "error", "seconds", "device")
_KEY = ("arch_id", "dataset", "input", "seed", "proxy")


def record_proxy_scores(
    store: Store,
    arch_id: str,
    dataset: str,
    shape: str,
    seed: int,
    scores: Mapping[str, Mapping[str, Any]],
    device: str | None = None,
) -> None:
    """Store each proxy's ``{"value", "error", "seconds"}`` on a minibatch of ``shape`` (e.g.
    ``16x3x64x64``) unless that score is already held.

    Idempotent on the unique key (INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL),
    so trials of one network scoring it at the same time store it once. A proxy that raised is
    stored with its ``error`` and no value. The architecture's row must exist (a trial's does).
    """
    with store.session_scope() as session:
        for proxy, score in scores.items():
            error = score.get("error")
            values = {
                "arch_id": arch_id,
                "dataset": dataset,
                "input": shape,
                "seed": int(seed),
                "proxy": str(proxy),
                "value": None if error else _finite(score.get("value")),
                "error": str(error) if error else None,
                "seconds": _finite(score.get("seconds")),
                "device": device,
                "created_at": now(),
            }
            _upsert(session, ProxyScore, values, _KEY, overwrite=False)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def stored_proxies(store: Store, arch_id: str, dataset: str, shape: str, seed: int) -> set[str]:
    """The proxies whose score of this network on a minibatch of ``shape`` is held (value or error)."""
    statement = select(ProxyScore.proxy).where(
        ProxyScore.arch_id == arch_id,
        ProxyScore.dataset == dataset,
        ProxyScore.input == shape,
        ProxyScore.seed == int(seed),
    )
    with store.session_scope() as session:
        return set(session.execute(statement).scalars())


def proxy_scores_frame(
    store: Store,
    search: str | None = None,
    *,
    arch_ids: Iterable[str] | None = None,
    dataset: str | None = None,
    seed: int | None = None,
    shape: str | None = None,
) -> pd.DataFrame:
    """The held scores (``PROXY_SCORE_COLUMNS``) of a search's networks, or of ``arch_ids``, in one query.

    With ``search`` (a name; None with no ``arch_ids``: the latest search) the networks are its
    trials' and ``dataset`` defaults to the search's; ``seed`` and ``shape`` (the minibatch's,
    the ``input`` column) narrow further.
    """
    statement = select(*(getattr(ProxyScore, name) for name in PROXY_SCORE_COLUMNS))
    if arch_ids is not None:
        statement = statement.where(ProxyScore.arch_id.in_(sorted(set(arch_ids))))
    else:
        sid = search_id(store, search)
        # per held score, one probe of the trials' arch_id index: not a pass over every trial of
        # the search first (10^5 of an arena, whose dataset has no scores)
        trained = select(Trial.id).where(Trial.arch_id == ProxyScore.arch_id, Trial.search_id == sid)
        statement = statement.where(trained.exists())
        if dataset is None:
            own = select(Search.dataset).where(Search.id == sid).scalar_subquery()
            statement = statement.where(ProxyScore.dataset == own)
    if dataset is not None:
        statement = statement.where(ProxyScore.dataset == dataset)
    if seed is not None:
        statement = statement.where(ProxyScore.seed == int(seed))
    if shape is not None:
        statement = statement.where(ProxyScore.input == shape)
    order = (ProxyScore.arch_id, ProxyScore.proxy, ProxyScore.created_at.desc(), ProxyScore.id.desc())
    return _frame(store, statement.order_by(*order)).astype({"value": float, "seconds": float})


def proxy_values(scores: pd.DataFrame) -> pd.DataFrame:
    """``proxy_scores_frame`` as one row per ``arch_id`` and one value column per proxy held (in
    the catalogue's order); NaN where the proxy raised. Where several inputs or seeds are held,
    the latest score counts."""
    latest = scores.drop_duplicates(["arch_id", "proxy"], keep="first")  # newest first per pair
    held = set(latest["proxy"])
    names = [n for n in catalogue.PROXIES.names() if n in held] + sorted(held - set(catalogue.PROXIES))
    wide = latest.pivot(index="arch_id", columns="proxy", values="value")
    return wide.reindex(columns=names).rename_axis(columns=None)
