"""The tables: searches (and their driver leases), architectures, trials, their costs and epochs.

Narrow tables with foreign keys and unique constraints; JSON in text columns. Migrations
live in ``migrations/versions``; a change here needs a new revision there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Trial states, in the order a trial can move through them.
TRIAL_STATUSES = (
    "pending",
    "running",
    "completed",
    "stopped_early",
    "failed",
    "rejected_by_constraint",
    "cached",
    "interrupted",
)
#: States that will not change again: a resumed search does not re-run these.
FINISHED_STATUSES = ("completed", "stopped_early", "failed", "rejected_by_constraint", "cached")
#: States whose metrics are a full run's: completed, or cached (a reuse of a completed one).
#: A stopped-early trial's are not comparable.
RESULT_STATUSES = ("completed", "cached")
SEARCH_STATUSES = ("created", "running", "completed", "interrupted", "failed")


class Base(DeclarativeBase):
    pass


class Search(Base):
    __tablename__ = "searches"
    __table_args__ = (UniqueConstraint("name", name="uq_searches_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="search")  # search | benchmark
    space_name: Mapped[str | None] = mapped_column(String(200))
    space_yaml: Mapped[str | None] = mapped_column(Text)  # the space file as written
    dataset: Mapped[str] = mapped_column(String(500))  # dataset spec, e.g. shapes, folder:/data
    config_json: Mapped[str] = mapped_column(Text, default="{}")  # the full search config
    recipe_json: Mapped[str] = mapped_column(Text, default="{}")  # the training recipe
    versions_json: Mapped[str] = mapped_column(Text, default="{}")  # nasfcn, torch, ray, ...
    status: Mapped[str] = mapped_column(String(20), default="created")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    trials: Mapped[list[Trial]] = relationship(back_populates="search", cascade="all, delete-orphan")


class SearchLease(Base):
    """The one live driver of a search: it refreshes ``heartbeat_at``; a stale lease can be taken."""

    __tablename__ = "search_leases"

    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))  # host:pid:random, unique per driver process
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Architecture(Base):
    """One distinct network, shared by every trial (of any search) that built it."""

    __tablename__ = "architectures"

    arch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    genotype_json: Mapped[str] = mapped_column(Text)  # canonical architecture JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


#: The rows of ``ix_trials_cached_from``: only cached trials point at another (migration 0008).
_CACHED = text("cached_from IS NOT NULL")


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("search_id", "number", name="uq_trials_search_number"),
        Index("ix_trials_search_status", "search_id", "status"),
        Index("ix_trials_search_best", "search_id", "best_miou"),
        Index("ix_trials_cache", "trial_key", "dataset", "recipe_key"),
        Index("ix_trials_arch", "arch_id"),
        Index("ix_trials_search_started", "search_id", "started_at"),  # the live board's watermark
        Index("ix_trials_search_finished", "search_id", "finished_at"),
        Index("ix_trials_dataset_best", "dataset", "best_miou"),  # across searches of a dataset
        # deleting a trial looks up the trials cached from it (the foreign key's SET NULL)
        Index("ix_trials_cached_from", "cached_from", sqlite_where=_CACHED, postgresql_where=_CACHED),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 0, 1, 2, ... within the search
    ray_trial_id: Mapped[str | None] = mapped_column(String(100))
    arch_id: Mapped[str] = mapped_column(ForeignKey("architectures.arch_id"))
    trial_key: Mapped[str] = mapped_column(String(32))  # hash of network + training knobs
    genotype_json: Mapped[str] = mapped_column(Text)  # with training knobs
    params_json: Mapped[str | None] = mapped_column(Text)  # the optimizer's parameters (replayable)
    dataset: Mapped[str] = mapped_column(String(500))
    recipe_key: Mapped[str] = mapped_column(String(32))  # hash of the training recipe
    seed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(30), default="pending")
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    best_miou: Mapped[float | None] = mapped_column(Float)
    best_pixel_accuracy: Mapped[float | None] = mapped_column(Float)
    final_miou: Mapped[float | None] = mapped_column(Float)
    epochs_trained: Mapped[int] = mapped_column(Integer, default=0)
    best_metrics_json: Mapped[str | None] = mapped_column(Text)
    final_metrics_json: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)  # an excerpt: the last lines
    checkpoint: Mapped[str | None] = mapped_column(Text)  # folder or URI of the best checkpoint
    train_device: Mapped[str | None] = mapped_column(String(200))  # e.g. "cuda:0 (NVIDIA H100 ...)"
    peak_train_memory_mb: Mapped[float | None] = mapped_column(Float)  # CUDA allocator peak, MiB
    reference: Mapped[str | None] = mapped_column(String(50))  # a named classic design, e.g. fcn8s
    cached_from: Mapped[int | None] = mapped_column(ForeignKey("trials.id", ondelete="SET NULL"))
    confirms: Mapped[int | None] = mapped_column(Integer)  # number of the trial this run re-seeds
    extends: Mapped[int | None] = mapped_column(Integer)  # number of the trial this run trains longer
    test_miou: Mapped[float | None] = mapped_column(Float)  # held-out test split, never selected on
    test_metrics_json: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    search: Mapped[Search] = relationship(back_populates="trials")
    architecture: Mapped[Architecture] = relationship()
    cost: Mapped[TrialCost | None] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    epochs: Mapped[list[Epoch]] = relationship(back_populates="trial", cascade="all, delete-orphan")


class TrialCost(Base):
    """What a trial's network cost at the input size and on the device it was measured on.

    Per trial, not per architecture: the same network costs more at a larger input, runs at
    another speed on another device, and has more parameters for more classes, so one figure per
    network would be overwritten by the next search. A cached trial holds a copy of the reused
    trial's figures when it would have measured at the same input on the same device.
    """

    __tablename__ = "trial_costs"
    __table_args__ = (Index("ix_trial_costs_arch", "arch_id", "input", "device"),)

    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    arch_id: Mapped[str] = mapped_column(ForeignKey("architectures.arch_id"))
    input: Mapped[str | None] = mapped_column(String(50))  # e.g. 1x3x64x64
    device: Mapped[str | None] = mapped_column(String(200))  # e.g. cpu, cuda:0 (NVIDIA H100 ...)
    params: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[int | None] = mapped_column(BigInteger)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    peak_memory_mb: Mapped[float | None] = mapped_column(Float)


class ProxyScore(Base):
    """A zero-cost proxy's score of one network at initialisation, on one dataset's minibatch.

    Per architecture (not per trial): every trial of that network on that data shares it.
    ``value`` is None when the proxy raised; ``error`` then says what it raised.
    """

    __tablename__ = "proxy_scores"
    __table_args__ = (
        UniqueConstraint("arch_id", "dataset", "input", "seed", "proxy", name="uq_proxy_scores_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arch_id: Mapped[str] = mapped_column(ForeignKey("architectures.arch_id"))
    dataset: Mapped[str] = mapped_column(String(500))
    input: Mapped[str] = mapped_column(String(50))  # the minibatch's shape, e.g. 8x3x64x64
    seed: Mapped[int] = mapped_column(Integer)
    proxy: Mapped[str] = mapped_column(String(50))  # a name in nasfcn.proxies.PROXIES
    value: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float | None] = mapped_column(Float)
    device: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Epoch(Base):
    __tablename__ = "epochs"
    __table_args__ = (UniqueConstraint("trial_id", "epoch", name="uq_epochs_trial_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)  # 1-based
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_miou: Mapped[float | None] = mapped_column(Float)
    val_pixel_accuracy: Mapped[float | None] = mapped_column(Float)
    per_class_iou_json: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float | None] = mapped_column(Float)
    images_per_s: Mapped[float | None] = mapped_column(Float)

    trial: Mapped[Trial] = relationship(back_populates="epochs")
