"""Export: the right trial, the right checkpoint, and every format checked against PyTorch."""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from sqlalchemy import text
from typer.testing import CliRunner

from nasfcn.bundle import (
    BUNDLE_FILES,
    MANIFEST_FILE,
    ONNX_FILE,
    BundleError,
    FinetuneRecipe,
    Preprocess,
    load_bundle,
)
from nasfcn.cli import app
from nasfcn.data import voc_palette
from nasfcn.export import (
    PARITY_TOLERANCE,
    ExportError,
    export_model,
    export_trial,
    select_trial,
)
from nasfcn.genotype import EncoderGene, Genotype
from nasfcn.model import UPSAMPLERS, build_model
from nasfcn.store import (
    create_search,
    finish_trial,
    leaderboard_frame,
    open_store,
    record_cost,
    record_epoch,
    set_checkpoint,
    trial_record,
    upsert_trial,
)
from nasfcn.train import load_checkpoint

runner = CliRunner()
OTHER = Genotype(encoder=EncoderGene(stages=2, width=4), skip="none", upsample="transposed")


def _cost(latency_ms: float, side: int = 64, device: str = "cpu") -> dict:
    return {
        "params": 1234,
        "flops": 56789 * (side // 64) ** 2,
        "latency_ms": latency_ms,
        "peak_memory_mb": 1.5,
        "device": device,
        "input_shape": [1, 3, side, side],
    }


#: What metrics.json says of trial 0 of the search ``s`` below.
EXPECTED_COST = {
    "params": 1234,
    "flops": 56789,
    "latency_ms": 2.0,
    "peak_memory_mb": 1.5,
    "device": "cpu",
    "input": "1x3x64x64",
}


@pytest.fixture
def store(tmp_path: Path, shapes_checkpoint: Path):
    """A search as the recorder leaves it: 0 completed (with the checkpoint), 1 failed, 2 cached
    from 0 (its own checkpoint column empty), 3 completed but its checkpoint folder deleted."""
    store = open_store(f"sqlite:///{tmp_path / 'nasfcn.db'}")
    info = json.loads((shapes_checkpoint / "best.json").read_text())
    trained = Genotype.from_dict(info["genotype"])
    search = create_search(store, "s", "shapes")

    def trial(number: int, genotype: Genotype, epoch: dict | None) -> int:
        row = upsert_trial(store, search, number, genotype, dataset="shapes", recipe={}, status="running")
        if epoch is not None or genotype == OTHER:  # a cached trial takes the cost it reused
            record_cost(store, row, _cost(2.0 if genotype == trained else 9.0))
        if epoch is not None:
            record_epoch(store, row, int(epoch["epoch"]), epoch)
        return row

    first = trial(0, trained, info["epoch"])
    set_checkpoint(store, first, str(shapes_checkpoint))
    finish_trial(store, first, "completed")
    failed = trial(1, OTHER, None)
    finish_trial(store, failed, "failed", error="RuntimeError: boom")
    cached = trial(2, trained, None)
    finish_trial(store, cached, "cached", cached_from=first)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE trials SET checkpoint = NULL WHERE id = :id"), {"id": cached})
    gone = trial(3, OTHER, {**info["epoch"], "epoch": 1, "val_miou": 0.0})
    set_checkpoint(store, gone, str(tmp_path / "deleted"))
    finish_trial(store, gone, "completed")
    return store


# -- which trial ---------------------------------------------------------------------------------


def test_select_defaults_to_the_best_completed_trial(store) -> None:
    board = leaderboard_frame(store, "s")
    assert int(select_trial(board, "s")["number"]) == 0  # ties with cached 2: the earlier wins
    assert int(select_trial(board, "s", trial=3)["number"]) == 3
    assert int(select_trial(board, "s", rank=1)["number"]) in (0, 2)
    assert int(select_trial(board, "s", max_latency_ms=5)["number"]) == 0
    # A time budget's deadline can stop every trial early: the best of them is still a trained network.
    stopped = board.assign(status=board["status"].replace({"completed": "stopped_early", "cached": "failed"}))
    assert int(select_trial(stopped, "s")["number"]) == 0
    running = board.assign(status="running", best_miou=float("nan"))
    with pytest.raises(ExportError, match=r"has no trained trial yet \(running 4\); let it run until"):
        select_trial(running, "s")
    failed = board.assign(status=board["status"].replace({"completed": "failed", "cached": "failed"}))
    with pytest.raises(ExportError, match=r"has no trained trial yet \(failed 4\)"):
        select_trial(failed, "s")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trial": 7}, "search 's' has no trial 7; its trials are numbered 0..3"),
        ({"rank": 9}, "search 's' has no trial at rank 9; ranks go from 1 to 3"),
        ({"max_latency_ms": 1.0}, "no completed trial of 's' runs within 1 ms; the fastest takes 2 ms"),
        ({"trial": 0, "rank": 1}, "give at most one of --trial, --rank and --max-latency-ms"),
    ],
)
def test_select_explains_what_is_there(store, options: dict, message: str) -> None:
    with pytest.raises(ExportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select_trial(leaderboard_frame(store, "s"), "s", **options)


def test_a_trial_without_a_checkpoint_gives_a_clear_error(store, tmp_path: Path) -> None:
    with pytest.raises(ExportError) as caught:
        export_trial(store, tmp_path / "b", search="s", trial=1)
    assert "trial 1 of search 's' has no checkpoint (status failed: RuntimeError: boom)" in str(caught.value)
    assert "pick another with --trial or --rank" in str(caught.value)
    assert not (tmp_path / "b").exists()


def test_a_deleted_checkpoint_folder_gives_a_clear_error(store, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"the checkpoint of trial 3 of search 's' is gone: .*deleted"):
        export_trial(store, tmp_path / "b", search="s", trial=3)


# -- bundles -------------------------------------------------------------------------------------


def _odd_input(channels: int = 3, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, channels, 45, 29, generator=torch.Generator().manual_seed(3))


def _assert_formats_match(bundle: Path, model: torch.nn.Module) -> None:
    """ONNX (onnxruntime) and TorchScript reproduce PyTorch at a size used neither in training nor
    in the export's own check."""
    x = _odd_input()
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    session = onnxruntime.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"image": x.numpy()})[0]
    assert onnx_out.shape == expected.shape
    assert np.abs(onnx_out - expected).max() <= PARITY_TOLERANCE
    with warnings.catch_warnings():  # torch 2.9+ deprecates TorchScript; the file must still load
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(bundle / "model.torchscript.pt"))
    with torch.no_grad():
        assert np.abs(scripted(x).numpy() - expected).max() <= PARITY_TOLERANCE


@pytest.mark.slow
def test_export_then_load_gives_the_trained_models_outputs(store, shapes_checkpoint: Path, tmp_path) -> None:
    out = tmp_path / "best"
    result = export_trial(store, out, search="s")
    trained, info = load_checkpoint(shapes_checkpoint)
    model, bundle = load_bundle(out)
    x = _odd_input()
    with torch.no_grad():
        assert torch.equal(model(x), trained.eval()(x))
    assert sorted(p.name for p in out.iterdir()) == sorted(BUNDLE_FILES)
    _assert_formats_match(out, trained)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == dict(result.metrics)
    assert metrics["source"]["search"] == "s"
    assert metrics["source"]["trial"] == 0
    assert "trained_by" not in metrics["source"]
    assert metrics["leaderboard"]["status"] == "completed"
    assert metrics["leaderboard"]["rank"] == 1
    assert metrics["val"]["miou"] == pytest.approx(info["epoch"]["val_miou"])
    assert list(metrics["val"]["per_class_iou"]) == ["background", "circle", "square", "triangle"]
    assert metrics["cost"] == EXPECTED_COST
    assert [row["epoch"] for row in metrics["history"]] == [info["epoch"]["epoch"]]
    for name in ("onnx", "torchscript"):
        assert metrics["export"][name]["max_abs_diff"] <= PARITY_TOLERANCE
        assert metrics["export"][name]["input"] == "3x3x37x53"
    assert bundle.preprocess == Preprocess.from_dict(info["preprocess"])
    assert bundle.recipe == FinetuneRecipe()
    card = (out / "README.md").read_text()
    assert bundle.arch_id in card
    assert trained.genotype.describe() in card
    assert f"nasfcn finetune --bundle {out.name}" in card
    assert "| circle |" in card


@pytest.mark.slow
def test_an_export_carries_its_own_trials_cost(store, shapes_checkpoint: Path, tmp_path) -> None:
    # The same network, costed later by another search at 128x128 on a GPU.
    info = json.loads((shapes_checkpoint / "best.json").read_text())
    big = create_search(store, "big", "shapes")
    trial = upsert_trial(
        store, big, 0, Genotype.from_dict(info["genotype"]), dataset="shapes", recipe={}, status="running"
    )
    record_cost(store, trial, _cost(7.0, side=128, device="cuda:0 (NVIDIA H100 80GB HBM3)"))
    record_epoch(store, trial, int(info["epoch"]["epoch"]), info["epoch"])
    set_checkpoint(store, trial, str(shapes_checkpoint))
    finish_trial(store, trial, "completed")
    result = export_trial(store, tmp_path / "small", search="s")
    assert result.metrics["cost"] == EXPECTED_COST
    assert (trial_record(store, trial)["latency_ms"], trial_record(store, trial)["cost_input"]) == (
        7.0,
        "1x3x128x128",
    )
    assert "latency 2.00 ms" in (tmp_path / "small" / "README.md").read_text()


@pytest.mark.slow
def test_a_cached_trial_exports_the_checkpoint_it_reused(store, shapes_checkpoint: Path, tmp_path) -> None:
    # The reused trial's checkpoint recorded as a URI (as on remote storage) is fetched too.
    set_checkpoint(
        store,
        int(leaderboard_frame(store, "s").set_index("number").loc[0, "trial_id"]),
        (shapes_checkpoint.as_uri()),
    )
    result = export_trial(store, tmp_path / "cached", search="s", trial=2)
    assert result.metrics["source"]["trial"] == 2
    assert result.metrics["source"]["status"] == "cached"
    assert result.metrics["source"]["trained_by"]["trial"] == 0
    assert result.metrics["source"]["checkpoint"] == shapes_checkpoint.as_uri()
    trained, _ = load_checkpoint(shapes_checkpoint)
    model, _ = load_bundle(tmp_path / "cached")
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    assert "a cached result of trial 0" in (tmp_path / "cached" / "README.md").read_text()


def _untrained(skip: str, upsample: str) -> tuple[torch.nn.Module, Preprocess]:
    torch.manual_seed(0)
    genotype = Genotype(encoder=EncoderGene(stages=3, width=4), skip=skip, upsample=upsample)
    preprocess = Preprocess((32, 32), (0.5,) * 3, (0.25,) * 3, ("a", "b", "c"), voc_palette(3))
    return build_model(genotype, 3).eval(), preprocess


#: One of each upsampling type (max-unpooling included), across both decoder families.
UPSAMPLE_CASES = {
    "bilinear": "fcn8s",
    "transposed": "unet_concat",
    "pixel_shuffle": "fcn16s",
    "max_unpool": "none",
}


@pytest.mark.slow
@pytest.mark.parametrize("upsample", UPSAMPLERS.names())
def test_every_upsampling_type_exports_with_dynamic_sizes(upsample: str, tmp_path: Path) -> None:
    model, preprocess = _untrained(UPSAMPLE_CASES[upsample], upsample)
    result = export_model(model, preprocess, {}, tmp_path / "b")
    assert [p.format for p in result.parity] == ["onnx", "torchscript"]
    assert all(p.max_abs_diff <= PARITY_TOLERANCE for p in result.parity)
    _assert_formats_match(tmp_path / "b", model)


@pytest.mark.slow
def test_an_export_is_sealed_by_its_manifest(tmp_path: Path) -> None:
    """model.onnx swapped for another export's was once accepted silently."""
    model, preprocess = _untrained("fcn8s", "bilinear")
    other, _ = _untrained("none", "bilinear")
    export_model(model, preprocess, {}, tmp_path / "b")
    export_model(other, preprocess, {}, tmp_path / "other.zip")
    manifest = json.loads((tmp_path / "b" / MANIFEST_FILE).read_text())
    assert sorted(manifest["files"]) == sorted(n for n in BUNDLE_FILES if n != MANIFEST_FILE)
    for name, entry in manifest["files"].items():
        data = (tmp_path / "b" / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with zipfile.ZipFile(tmp_path / "other.zip") as archive:
        assert MANIFEST_FILE in archive.namelist()
        (tmp_path / "b" / ONNX_FILE).write_bytes(archive.read(ONNX_FILE))
    load_bundle(tmp_path / "other.zip")
    with pytest.raises(BundleError, match=r"model\.onnx does not match manifest\.json"):
        load_bundle(tmp_path / "b")


@pytest.mark.slow
def test_an_export_that_differs_from_pytorch_fails_loudly_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("nasfcn.export._write.PARITY_TOLERANCE", 0.0)  # where the check reads it
    model, preprocess = _untrained("fcn8s", "bilinear")
    with pytest.raises(ExportError, match=r"the onnx export differs from PyTorch by .* the limit is 0"):
        export_model(model, preprocess, {}, tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_an_exporter_failure_is_reported_not_written(tmp_path, monkeypatch) -> None:
    def unsupported(*args, **kwargs):
        raise RuntimeError("Unsupported operator aten::max_unpool2d\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    model, preprocess = _untrained("none", "max_unpool")
    with pytest.raises(ExportError) as caught:
        export_model(model, preprocess, {}, tmp_path / "b.zip")
    message = str(caught.value)
    assert f"ONNX export of {model.genotype.arch_id} (" in message
    assert "RuntimeError: Unsupported operator aten::max_unpool2d. No bundle was written" in message
    assert list(tmp_path.iterdir()) == []


def test_an_existing_bundle_is_kept_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    model, preprocess = _untrained("none", "bilinear")
    with pytest.raises(ExportError, match="already exists; choose another --out or pass --force"):
        export_model(model, preprocess, {}, tmp_path / "b")


# -- command line --------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_exports_a_zip_and_says_what_to_do_next(store, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    out = tmp_path / "best.zip"
    result = runner.invoke(app, ["export", "--db", db, "--search", "s", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported trial 0 of s" in result.stdout
    assert "max abs diff" in result.stdout
    assert f"nasfcn finetune --bundle {out}" in result.stdout
    _, info = load_bundle(out)
    assert info.num_classes == 4
    again = runner.invoke(app, ["export", "--db", db, "--search", "s", "--out", str(out)])
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    forced = runner.invoke(
        app, ["export", "--db", db, "--search", "s", "--trial", "2", "--out", str(out), "--force"]
    )
    assert forced.exit_code == 0, forced.output
    assert "trained as trial 0 of s" in forced.stdout


def test_cli_refuses_a_trial_without_checkpoint_in_one_line(store, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    result = runner.invoke(
        app, ["export", "--db", db, "--search", "s", "--trial", "1", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 2
    assert "has no checkpoint" in result.stderr
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["export", "--db", db, "--search", "nope", "--out", str(tmp_path / "b")])
    assert missing.exit_code == 2
    assert "no search named 'nope'" in missing.stderr


# -- the held-out test split ---------------------------------------------------------------------


@pytest.mark.slow
def test_export_evaluates_the_network_once_on_the_test_split(store, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    out = tmp_path / "best"
    result = runner.invoke(app, ["export", "--db", db, "--search", "s", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert test["images"] == 256
    assert test["dataset"] == "shapes"
    assert 0 <= test["miou"] <= 1
    assert test["miou"] != metrics["val"]["miou"]
    assert list(test["per_class_iou"]) == ["background", "circle", "square", "triangle"]
    assert f"test mIoU {test['miou']:.3f}" in result.stdout
    assert "on 256 held-out test images" in result.stdout
    card = (out / "README.md").read_text()
    assert f"**Test mIoU {test['miou']:.3f}**" in card
    assert "| class | val IoU | test IoU |" in card


def test_a_dataset_without_a_test_split_says_so_and_reports_no_test_figures(
    tmp_path: Path, shapes_checkpoint: Path
) -> None:
    from PIL import Image

    from nasfcn.export import heldout_metrics, model_card

    root = tmp_path / "mine"
    for split, names in (("train", ["a", "b"]), ("val", ["c"])):
        for name in names:
            (root / "images").mkdir(parents=True, exist_ok=True)
            (root / "masks").mkdir(exist_ok=True)
            Image.new("RGB", (8, 8)).save(root / "images" / f"{name}.png")
            Image.new("L", (8, 8), 1).save(root / "masks" / f"{name}.png")
        (root / "splits").mkdir(exist_ok=True)
        (root / "splits" / f"{split}.txt").write_text("\n".join(names))
    (root / "classes.txt").write_text("background\ncircle\nsquare\ntriangle\n")
    model, info = load_checkpoint(shapes_checkpoint)
    preprocess = Preprocess.from_dict(info["preprocess"])

    test = heldout_metrics(model, f"folder:{root}", preprocess)

    assert test == {
        "images": 0,
        "reason": f"no test split: folder:{root} has none (add splits/train.txt, "
        "splits/val.txt and splits/test.txt; test ids must be in neither)",
    }
    metrics = {"val": {"miou": 0.5, "per_class_iou": {"background": 0.5}}, "test": test}
    card = model_card(model, preprocess, metrics, FinetuneRecipe(), tmp_path / "b")
    assert "**Test: no test split: folder:" in card
    assert "Test mIoU" not in card
    assert "test IoU" not in card
