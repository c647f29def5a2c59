"""The table file: export from the database, load it back, refuse what does not match."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from nasfcn.errors import NasfcnError
from nasfcn.space import parse_space, space_hash
from nasfcn.store import Store, epochs_frame
from nasfcn.table import FORMAT_VERSION, METADATA_KEY, TableError, TableLookupError, export_table, load
from nasfcn.table._format import checksum, encode_metadata, schema

ROOT = Path(__file__).resolve().parents[2]


def test_import_leaves_torch_and_ray_out() -> None:
    code = (
        "import sys, nasfcn.table\nprint(' '.join(m for m in ('torch', 'ray', 'optuna') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout.split() == []


def test_round_trip_equals_the_database(known, tabulation, table_file: Path, arch_index) -> None:
    table = load(table_file)
    stored = epochs_frame(tabulation.store, tabulation.name)
    assert table.archs() == sorted(g.arch_id for g in tabulation.genotypes)
    assert (table.seeds, table.epochs, table.class_names) == (
        tuple(range(known.SEEDS)),
        known.EPOCHS,
        tuple(known.CLASSES),
    )
    assert (
        len(stored) == len(table.archs()) * known.SEEDS * known.EPOCHS - 1
    )  # the failed run lacks its last epoch
    for row in stored.itertuples():
        seed = int(
            table.frame.loc[table.frame["arch_id"] == row.arch_id, "seed"].iloc[0]
        )  # any; checked below
        del seed
    for i in range(len(tabulation.genotypes)):
        arch = arch_index(i)
        for seed in range(known.SEEDS):
            for epoch in range(1, known.EPOCHS + 1):
                value = table.query(arch, seed, epoch, "val_miou")
                if (i, seed) == known.FAILED and epoch > 1:
                    assert math.isnan(value)
                else:
                    assert value == pytest.approx(known.miou(i, seed, epoch))
                    assert table.query(arch, seed, epoch, "iou_2") == pytest.approx(
                        known.miou(i, seed, epoch) - 0.05
                    )
            assert table.seconds(arch, seed) == pytest.approx(
                (2.0 + i) * (1 if (i, seed) == known.FAILED else known.EPOCHS)
            )
        assert table.genotype(arch) == tabulation.genotypes[i]
        cost = table.cost(arch)
        assert cost.params == 1000 * (i + 1)
        assert cost.latency_ms == pytest.approx(np.median([known.latency(i, s) for s in range(known.SEEDS)]))
        assert (cost.device, cost.input) == ("cpu", "1x3x64x64")
    failed = arch_index(known.FAILED[0])
    assert table.status(failed, known.FAILED[1]) == "failed"
    assert table.error(failed, known.FAILED[1]) == "training diverged: loss is NaN"
    assert table.status(arch_index(0), 0) == "completed"
    # the frame holds the database's epochs, value for value
    merged = stored.merge(table.frame, on=["arch_id", "epoch", "val_miou"], how="left", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_mean_and_curve(known, table_file: Path, arch_index) -> None:
    table = load(table_file)
    arch = arch_index(2)
    assert table.mean(arch) == pytest.approx(
        np.mean([known.miou(2, s, known.EPOCHS) for s in range(known.SEEDS)])
    )
    assert table.mean(arch, epoch=1) == pytest.approx(
        np.mean([known.miou(2, s, 1) for s in range(known.SEEDS)])
    )
    assert table.mean(arch_index(known.FAILED[0])) == pytest.approx(
        known.miou(known.FAILED[0], 0, known.EPOCHS)
    )  # failed run left out
    assert list(table.curve(arch, 1)) == pytest.approx(
        [known.miou(2, 1, e) for e in range(1, known.EPOCHS + 1)]
    )


def test_metadata_describes_the_build(known, table_file: Path) -> None:
    facts = json.loads(pq.read_schema(table_file).metadata[METADATA_KEY])
    assert facts["format_version"] == FORMAT_VERSION
    assert facts["space_hash"] == space_hash(parse_space(known.SPACE_YAML))
    assert facts["space_yaml"] == known.SPACE_YAML
    assert (facts["dataset"], facts["class_names"], facts["seeds"], facts["epochs"]) == (
        "shapes",
        known.CLASSES,
        [0, 1],
        known.EPOCHS,
    )
    assert facts["recipe"]["lr"] == 0.003
    assert "sqlalchemy" in facts["versions"]
    assert facts["built_at"]
    assert len(facts["checksum"]) == 64


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda t, a: t.query("nope", 0, 1, "val_miou"), "no architecture 'nope'; the table holds 8"),
        (lambda t, a: t.query(a, 7, 1, "val_miou"), "no seed 7; seeds: 0, 1"),
        (lambda t, a: t.query(a, 0, 3, "val_miou"), "no epoch 3; epochs: 1 to 2"),
        (lambda t, a: t.query(a, 0, 0, "val_miou"), "no epoch 0"),
        (lambda t, a: t.mean(a, "miou"), "no metric 'miou'; metrics: val_miou, val_pixel_accuracy"),
        (lambda t, a: t.curve(a, 5), "no seed 5"),
        (lambda t, a: t.cost("nope"), "no architecture 'nope'"),
    ],
)
def test_unknown_names_are_refused_by_name(table_file: Path, arch_index, call: Callable, named: str) -> None:
    table = load(table_file)
    with pytest.raises(TableLookupError) as caught:
        call(table, arch_index(0))
    assert named in str(caught.value)
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, NasfcnError)


def _rewrite(path: Path, data: pa.Table) -> None:
    pq.write_table(data, path)


def test_a_tampered_value_is_refused(table_file: Path) -> None:
    data = pq.read_table(table_file)
    column = data.column("val_miou").to_numpy().copy()
    column[3] += 0.01
    tampered = data.set_column(data.schema.get_field_index("val_miou"), "val_miou", pa.array(column))
    _rewrite(table_file, tampered.replace_schema_metadata(data.schema.metadata))
    with pytest.raises(TableError, match=r"checksum .* the data were changed after export"):
        load(table_file)


def test_a_changed_status_is_refused(table_file: Path) -> None:
    data = pq.read_table(table_file)
    status = pc.replace_substring(data.column("status"), "failed", "completed")
    tampered = data.set_column(data.schema.get_field_index("status"), "status", status)
    _rewrite(table_file, tampered.replace_schema_metadata(data.schema.metadata))
    with pytest.raises(TableError, match="checksum"):
        load(table_file)


def test_a_file_from_another_space_is_refused(known, table_file: Path) -> None:
    other = parse_space(known.SPACE_YAML.replace("[none, se]", "[none, cbam]"), source="other.yaml")
    with pytest.raises(TableError, match=r"built from space 'bench8' \(hash [0-9a-f]{16}\), not from"):
        load(table_file, space=other)
    # the same space written differently is the same space
    reformatted = "# reformatted\n" + known.SPACE_YAML.replace("name: bench8", "name: renamed").replace(
        ", ", " ,  "
    )
    assert load(table_file, space=parse_space(reformatted)).archs()


def test_another_format_version_or_schema_is_refused(table_file: Path) -> None:
    data = pq.read_table(table_file)
    facts = json.loads(data.schema.metadata[METADATA_KEY])
    _rewrite(table_file, data.replace_schema_metadata(encode_metadata({**facts, "format_version": 99})))
    with pytest.raises(TableError, match="table format version 99; this nasfcn reads version 1"):
        load(table_file)
    dropped = data.drop_columns(["train_loss"]).replace_schema_metadata(data.schema.metadata)
    _rewrite(table_file, dropped)
    with pytest.raises(TableError, match="missing train_loss"):
        load(table_file)
    _rewrite(table_file, data.replace_schema_metadata({}))
    with pytest.raises(TableError, match="not a nasfcn table"):
        load(table_file)


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text("hello")
    with pytest.raises(TableError, match="not a readable Parquet file"):
        load(path)
    with pytest.raises(TableError, match="no such file"):
        load(tmp_path / "missing.parquet")


def test_unfinished_runs_are_refused_with_the_fix(known, store: Store, tmp_path: Path) -> None:
    known.write_tabulation(store, "half", finish=False)
    with pytest.raises(TableError) as caught:
        export_table(store, "half", tmp_path / "half.parquet")
    assert str(caught.value) == (
        "table 'half' has 2 unfinished runs of 16 (1 not finished, 1 not started): "
        "finish them with `nasfcn tabulate --resume --name half`, then export"
    )
    assert not (tmp_path / "half.parquet").exists()


def test_a_run_interrupted_then_run_again_is_held_once(known, store: Store, tmp_path: Path) -> None:
    from nasfcn.store import finish_trial, get_search, record_epoch, upsert_trial

    tabulation = known.write_tabulation(store, "resumed")
    clean = load(export_table(store, "resumed", tmp_path / "clean.parquet"))
    # a stopped build left (arch 3, seed 0) interrupted after one epoch; --resume ran it again
    # as a new run, which the tabulation above holds
    search = get_search(store, "resumed")
    assert search is not None
    genotype = tabulation.genotypes[3]
    stale = upsert_trial(
        store, search["id"], 99, genotype, dataset="shapes", recipe={}, status="running", seed=0
    )
    record_epoch(store, stale, 1, {"val_miou": 0.999, "seconds": 1.0})
    finish_trial(store, stale, "interrupted", error="stopped by the user")
    table = load(export_table(store, "resumed", tmp_path / "resumed.parquet"))
    arch = tabulation.genotypes[3].arch_id
    assert table.query(arch, 0, 1, "val_miou") == clean.query(arch, 0, 1, "val_miou") != 0.999
    assert len(table.frame) == len(clean.frame)


def test_a_search_is_not_a_table(known, store: Store, tmp_path: Path) -> None:
    known.write_tabulation(store, "bench", kind="benchmark")
    with pytest.raises(TableError, match=r"'bench' in (sqlite|postgresql)\S* is a benchmark, not a table"):
        export_table(store, "bench", tmp_path / "b.parquet")
    with pytest.raises(NasfcnError, match="no table named 'nope'"):
        export_table(store, "nope", tmp_path / "b.parquet")


def _generated(path: Path, archs: int, seeds: int, epochs: int, classes: int = 4) -> None:
    """A table file of the given size with random numbers, written in the table format."""
    rng = np.random.default_rng(0)
    rows = archs * seeds * epochs
    ids = [f"{i:012x}" for i in range(archs)]
    columns: dict[str, object] = {
        "arch_id": np.repeat(ids, seeds * epochs),
        "seed": np.tile(np.repeat(np.arange(seeds), epochs), archs),
        "epoch": np.tile(np.arange(1, epochs + 1), archs * seeds),
    }
    for name in ("val_miou", "val_pixel_accuracy", "train_loss", "seconds"):
        columns[name] = rng.random(rows)
    for c in range(classes):
        columns[f"iou_{c}"] = rng.random(rows)
    genotype = json.dumps({"encoder": {"stages": 3, "width": 8}, "skip": "none"})
    columns.update(
        status=["completed"] * rows,
        error=[None] * rows,
        reference=[None] * rows,
        genotype_json=[genotype] * rows,
        params=np.repeat(np.arange(archs), seeds * epochs),
        flops=np.repeat(np.arange(archs), seeds * epochs),
        latency_ms=rng.random(rows),
        peak_memory_mb=rng.random(rows),
        device=["cpu"] * rows,
        input=["1x3x64x64"] * rows,
    )
    data = pa.Table.from_pydict(columns, schema=schema(classes))
    facts = {
        "format_version": FORMAT_VERSION,
        "seeds": list(range(seeds)),
        "epochs": epochs,
        "class_names": [f"c{c}" for c in range(classes)],
        "checksum": checksum(data),
    }
    pq.write_table(data.replace_schema_metadata(encode_metadata(facts)), path, compression="zstd")


def test_a_table_of_400_archs_loads_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.parquet"
    _generated(path, 400, 3, 12)
    started = time.perf_counter()
    table = load(path)
    seconds = time.perf_counter() - started
    assert len(table.archs()) == 400
    assert table.query(f"{399:012x}", 2, 12, "val_miou") == pytest.approx(
        float(pq.read_table(path).column("val_miou")[-1].as_py())
    )
    with capsys.disabled():
        print(
            f"\nload of 400 archs x 3 seeds x 12 epochs "
            f"({path.stat().st_size / 1024:.0f} KiB): {seconds:.3f} s"
        )
