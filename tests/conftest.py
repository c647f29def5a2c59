"""Suite-wide: tests marked ``gpu`` run only where torch sees a CUDA device; one real local Ray."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run benchmarks/gpu_check.sh on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shapes_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small U-Net trained briefly on ``shapes`` at 32x32: the folder of fit's best checkpoint
    (best.safetensors + best.json), as a search trial leaves it. Shared by the export,
    bundle, predict and fine-tuning tests."""
    from nasfcn.data import DataConfig, load_dataset
    from nasfcn.genotype import EncoderGene, Genotype
    from nasfcn.train import TrainRecipe, fit

    data = load_dataset("shapes", DataConfig(image_size=32, train_samples=64, val_samples=16, seed=1))
    genotype = Genotype(encoder=EncoderGene(stages=2, width=8), skip="unet_add", upsample="bilinear")
    folder = tmp_path_factory.mktemp("shapes-checkpoint")
    fit(genotype, data, TrainRecipe(epochs=3, batch_size=8, lr=1e-2), device="cpu", out_dir=folder)
    return folder


Run = tuple[int, int]  # (architecture index in plan order, seed)


@dataclass(frozen=True)
class HandTabulation:
    """A tabulation written through the store's public writes with numbers the tests know (no training).

    Every architecture of ``space_yaml`` (in plan order) x ``seeds`` x ``epochs``, numbered seed by
    seed; ``cost(arch, seed)`` is each run's cost row and ``metrics(arch, seed, epoch)`` its epochs'.
    The table, arena and leaderboard tests each give their own numbers; one writer writes them.
    """

    space_name: str
    space_yaml: str
    seeds: int
    epochs: int
    cost: Callable[[int, int], dict[str, Any]]
    metrics: Callable[[int, int, int], dict[str, Any]]
    dataset: str = "shapes"
    classes: tuple[str, ...] = ("background", "circle", "square")
    config: Mapping[str, Any] = field(default_factory=dict)  # stored next to the plan's own entries

    @staticmethod
    def arch_cost(arch: int, seed: int) -> dict[str, Any]:
        """A cost row that grows with the architecture's plan index (seed aside): the arena and
        leaderboard tests' ``cost``."""
        return {
            "params": 1000 * (arch + 1),
            "flops": 5000 * (arch + 1),
            "latency_ms": 1.0 + arch,
            "peak_memory_mb": 3.0,
            "device": "cpu",
            "input_shape": [1, 3, 32, 32],
        }

    def genotypes(self) -> tuple[Any, ...]:
        from nasfcn.space import parse_space

        return tuple(parse_space(self.space_yaml).iter_genotypes(include_train=False))

    def write(
        self,
        store: Any,
        name: str,
        *,
        archs: int | None = None,
        failed: Run | None = None,
        kind: str = "table",
        skipped: frozenset[Run] = frozenset(),
        unfinished: frozenset[Run] = frozenset(),
    ) -> int:
        """The first ``archs`` architectures (default all); the run ``failed`` fails after its first
        epoch, ``skipped`` runs never start, ``unfinished`` ones stay running. Returns the search id."""
        from nasfcn.store import create_search, finish_trial, record_cost, record_epoch, set_search_status

        plan = self.genotypes()[:archs]
        recipe = {"epochs": self.epochs, "lr": 0.003, "batch_size": 16, "seed": 0}
        config = {
            "name": name,
            "epochs": self.epochs,
            "seeds": self.seeds,
            **self.config,
            "plan_archs": [{"label": g.arch_id, "genotype": g.to_json(), "reference": None} for g in plan],
            "class_names": {self.dataset: list(self.classes)},
        }
        sid = create_search(
            store,
            name,
            self.dataset,
            space_name=self.space_name,
            space_yaml=self.space_yaml,
            config=config,
            recipe=recipe,
            kind=kind,
        )
        runs = [(arch, seed) for seed in range(self.seeds) for arch in range(len(plan))]
        for number, (arch, seed) in enumerate(r for r in runs if r not in skipped):
            trial = self._start(store, sid, number, plan[arch], recipe, seed)
            record_cost(store, trial, self.cost(arch, seed))
            for epoch in range(1, (1 if (arch, seed) == failed else self.epochs) + 1):
                record_epoch(store, trial, epoch, self.metrics(arch, seed, epoch))
            if (arch, seed) == failed:
                finish_trial(store, trial, "failed", error="training diverged: loss is NaN")
            elif (arch, seed) not in unfinished:
                finish_trial(store, trial, "completed")
        set_search_status(store, sid, "completed")
        return sid

    def _start(self, store: Any, sid: int, number: int, genotype: Any, recipe: dict, seed: int) -> int:
        from nasfcn.store import upsert_trial

        return upsert_trial(
            store, sid, number, genotype, dataset=self.dataset, recipe=recipe, status="running", seed=seed
        )


@pytest.fixture(scope="session")
def hand_tabulation() -> type[HandTabulation]:
    """``HandTabulation``: the table and arena tests' shared writer (conftest modules are not importable)."""
    return HandTabulation


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
ScriptLoader = Callable[..., ModuleType]


def _load_script(name: str, *, fresh: bool = False) -> ModuleType:
    """``benchmarks/<name>.py`` (``name`` may hold a folder: ``tables/card``) imported as a module.

    The benchmarks are scripts, not a package. The module is in ``sys.modules`` (as ``name`` with
    ``/`` as ``_``) before it runs: its dataclasses look their module up while they are built. A loaded
    module is reused unless ``fresh``, which runs the file again for new module-level registrations.
    """
    module_name = name.replace("/", "_")
    if not fresh and module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_script() -> ScriptLoader:
    """``load_script(name, fresh=False)``: a benchmarks/ script as a module (conftest modules are not
    importable, so the tests take the loader as a fixture)."""
    return _load_script


LimitedRun = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def cli_under_memory_limit() -> LimitedRun:
    """``run(args, gib)``: ``nasfcn ARGS`` in a fresh process that cannot take more than ``gib``
    GiB of address space, so a test of a hostile input fails fast (MemoryError) on code that
    would expand it, instead of taking the machine's memory."""

    def run(args: Sequence[str], gib: float) -> subprocess.CompletedProcess[str]:
        code = (
            "import resource, sys\n"
            f"limit = int({gib} * 2**30)\n"
            "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
            f"sys.argv = ['nasfcn', *{list(args)!r}]\n"
            "from nasfcn.cli import main\n"
            "main()\n"
        )
        env = {**os.environ, "COLUMNS": "400"}  # one error line stays one line
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )

    return run


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


@pytest.fixture(scope="session")
def write_png_bomb() -> Callable[[Path, int, int], None]:
    """``write(path, width, height)``: a black 1-bit PNG of that size, a few KB on disk however
    large (20000 x 20000 is 1.2 GB once decoded as RGB), written without ever holding it."""

    def write(path: Path, width: int, height: int) -> None:
        row = bytes(1 + -(-width // 8))  # filter byte 0, then 1 bit per pixel, all black
        packer = zlib.compressobj(9)
        idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
        header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b"")
        )

    return write


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A real local Ray (2 CPUs, no dashboard), started once for every test that needs one."""
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="nasfcn-ray-"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def store_tracker(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """Dispose of every Store a test opened (pooled SQLite connections warn when collected)."""
    from nasfcn.store import _engine

    opened: list[_engine.Store] = []
    original = _engine.Store.__init__

    def tracking_init(self: _engine.Store, url: str | None = None) -> None:
        original(self, url)
        opened.append(self)

    monkeypatch.setattr(_engine.Store, "__init__", tracking_init)
    yield opened
    for store in opened:
        store.dispose()


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresCluster:
    """A throwaway PostgreSQL server of one test's own, which the test may stop and start
    (the shared server of the storage tests must never be stopped)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nasfcn-pg-"))  # short: socket paths are limited
        self.data, self.sockets = self.root / "data", self.root / "sock"
        self.data.mkdir()
        self.sockets.mkdir()
        self.runner: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            for path in (self.root, self.data, self.sockets):
                shutil.chown(path, "postgres")
            self.runner = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._pg([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"])

    def _pg(self, command: list[str]) -> None:
        subprocess.run([*self.runner, *command], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "log")
        self._pg([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l", log, "start"])

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, as when a server restarts."""
        self._pg([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def remove(self) -> None:
        subprocess.run(
            [*self.runner, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A running PostgreSQL cluster of this test's own (Debian's postgresql 15 binaries)."""
    if not (PG_BIN / "initdb").exists():
        message = f"needs PostgreSQL server binaries in {PG_BIN} (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail("CI must test database faults for real: " + message)
        pytest.skip(message)
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


HOW_TO = (
    "PostgreSQL tests need a server: `apt-get install postgresql` (a throwaway cluster is "
    "then started automatically), or set NASFCN_TEST_POSTGRES_URL=postgresql+psycopg://..."
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database, shared by the session's tests.

    From ``NASFCN_TEST_POSTGRES_URL`` (``.ci/run`` starts a throwaway cluster and sets it) or,
    when Debian's ``postgresql`` is installed, a throwaway cluster started here. In CI a
    missing PostgreSQL fails; elsewhere those tests skip.
    """
    url = os.environ.get("NASFCN_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if (PG_BIN / "initdb").exists():
        cluster = PostgresCluster()
        try:
            cluster.start()
            yield cluster.url
        finally:
            cluster.remove()
        return
    if os.environ.get("CI"):
        pytest.fail("CI must test PostgreSQL for real, but no server is available. " + HOW_TO)
    pytest.skip(HOW_TO)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the server, dropped after the test."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"nasfcn_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nasfcn.db'}"
    return request.getfixturevalue("postgres_url")


#: A search with confirmation runs, built by hand (``confirmed_search``): (number, network,
#: seed, val mIoU, the trial it confirms). A's single run 0.80 is the best single run, yet B
#: (0.75, 0.74, 0.76) has the best mean; D (0.68 +- 0.01) is confirmed but its interval lies
#: below B's; C is not confirmed.
CONFIRMED_RUNS = (
    (0, "A", 0, 0.80, None),
    (1, "B", 0, 0.75, None),
    (2, "D", 0, 0.68, None),
    (3, "C", 0, 0.40, None),
    (4, "A", 1, 0.60, 0),
    (5, "A", 2, 0.62, 0),
    (6, "B", 1, 0.74, 1),
    (7, "B", 2, 0.76, 1),
    (8, "D", 1, 0.67, 2),
    (9, "D", 2, 0.69, 2),
)


@pytest.fixture
def confirmed_search(tmp_path: Path) -> Callable[..., Any]:
    """``build(store=None, checkpoint=None)``: the search ``conf`` of ``CONFIRMED_RUNS`` in ``store``
    (default: a new SQLite file); ``checkpoint`` is set on every run of B, whose genotype is the
    ``shapes_checkpoint`` network. Returns the store."""
    from nasfcn.genotype import EncoderGene, Genotype
    from nasfcn.store import (
        create_search,
        finish_trial,
        open_store,
        record_cost,
        record_epoch,
        set_checkpoint,
        upsert_trial,
    )

    networks = {
        "A": Genotype(encoder=EncoderGene(stages=2, width=4), skip="none", upsample="transposed"),
        "B": Genotype(encoder=EncoderGene(stages=2, width=8), skip="unet_add", upsample="bilinear"),
        "C": Genotype(encoder=EncoderGene(stages=3, width=4), skip="none", upsample="bilinear"),
        "D": Genotype(encoder=EncoderGene(stages=2, width=6), skip="none", upsample="bilinear"),
    }

    def build(store: Any = None, checkpoint: Path | None = None) -> Any:
        store = store or open_store(f"sqlite:///{tmp_path / 'confirmed.db'}")
        search = create_search(store, "conf", "shapes", config={"seed": 1, "image_size": 32})
        for number, name, seed, miou, confirms in CONFIRMED_RUNS:
            row = upsert_trial(
                store,
                search,
                number,
                networks[name],
                dataset="shapes",
                recipe={"seed": seed},
                seed=seed,
                status="running",
                confirms=confirms,
            )
            cost = {"params": 1000, "flops": 2000, "latency_ms": 1.0, "peak_memory_mb": 1.0}
            record_cost(store, row, {**cost, "device": "cpu", "input_shape": [1, 3, 32, 32]})
            epoch = {"val_miou": miou, "val_pixel_accuracy": 0.9, "train_loss": 0.1, "val_per_class_iou": []}
            record_epoch(store, row, 1, epoch)
            if checkpoint is not None and name == "B":
                set_checkpoint(store, row, str(checkpoint))
            finish_trial(store, row, "completed")
        return store

    return build
