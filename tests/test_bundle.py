"""Bundles: written, read back without pickle, zipped, and refused when tampered with."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import nasfcn
from nasfcn.bundle import (
    BUNDLE_FILES,
    GENOTYPE_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    ONNX_FILE,
    PREPROCESS_FILE,
    STAGES,
    TORCHSCRIPT_FILE,
    WEIGHTS_FILE,
    BundleError,
    BundleWarning,
    FinetuneRecipe,
    Preprocess,
    RecipeError,
    StageRecipe,
    load_bundle,
    load_recipe,
    write_bundle,
    write_zip,
)
from nasfcn.data import voc_palette
from nasfcn.genotype import EncoderGene, Genotype
from nasfcn.model import build_model

CLASSES = ("background", "circle", "square", "triangle")


def _preprocess(classes=CLASSES) -> Preprocess:
    return Preprocess(
        image_size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.2, 0.2, 0.2),
        class_names=tuple(classes),
        palette=voc_palette(len(classes)),
        dataset="shapes",
    )


def _model(width: int = 4, classes: int = len(CLASSES)):
    torch.manual_seed(0)
    genotype = Genotype(encoder=EncoderGene(stages=2, width=width), skip="fcn16s", upsample="transposed")
    return build_model(genotype, classes).eval()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    folder = tmp_path / "bundle"
    write_bundle(folder, _model(), _preprocess(), {"val": {"miou": 0.5}}, FinetuneRecipe(), "# card\n")
    return folder


def test_round_trip_gives_identical_outputs(bundle: Path) -> None:
    model, info = load_bundle(bundle)
    x = torch.randn(2, 3, 37, 53)
    with torch.no_grad():
        assert torch.equal(model(x), _model()(x))
    assert not model.training
    assert info.genotype == _model().genotype
    assert info.preprocess == _preprocess()
    assert info.metrics == {"val": {"miou": 0.5}}
    assert info.recipe == FinetuneRecipe()
    assert info.num_classes == 4
    assert info.in_channels == 3
    assert nasfcn.load_bundle is load_bundle


def test_loading_never_unpickles(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("load_bundle must not unpickle anything")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model, _ = load_bundle(bundle)
    assert isinstance(model, torch.nn.Module)


def test_zip_bundles_load_with_or_without_a_top_folder(bundle: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat.zip"
    write_zip(bundle, flat)
    assert sorted(zipfile.ZipFile(flat).namelist()) == sorted(
        n for n in BUNDLE_FILES if (bundle / n).exists()
    )
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as archive:  # as a user zips a folder by hand
        for path in bundle.iterdir():
            archive.write(path, f"my_model/{path.name}")
    x = torch.randn(1, 3, 40, 24)
    reference, _ = load_bundle(bundle)
    for archive in (flat, nested):
        model, info = load_bundle(archive)
        assert info.path == archive
        with torch.no_grad():
            assert torch.equal(model(x), reference(x))


def _rewrite_weights(bundle: Path, change) -> None:
    from safetensors import safe_open

    path = bundle / WEIGHTS_FILE
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    state = load_file(str(path))
    change(state)
    save_file(state, str(path), metadata=metadata)


def _edit_json(bundle: Path, name: str, change) -> None:
    data = json.loads((bundle / name).read_text())
    change(data)
    (bundle / name).write_text(json.dumps(data))


TAMPERING = {
    "missing weights": (
        lambda b: (b / WEIGHTS_FILE).unlink(),
        "incomplete bundle, missing weights.safetensors",
    ),
    "missing genotype": (lambda b: (b / GENOTYPE_FILE).unlink(), "missing genotype.json"),
    "weights of the wrong shape": (
        lambda b: _rewrite_weights(
            b, lambda s: s.update({"head.classifier.weight": s["head.classifier.weight"][:, :2].clone()})
        ),
        "head.classifier.weight has shape (4, 2, 1, 1), the network needs (4, 16, 1, 1)",
    ),
    "a weight missing": (
        lambda b: _rewrite_weights(b, lambda s: s.pop("head.classifier.bias")),
        "head.classifier.bias is missing",
    ),
    "a foreign weight": (
        lambda b: _rewrite_weights(b, lambda s: s.update({"extra.weight": torch.zeros(2)})),
        "extra.weight is not part of this network",
    ),
    "genotype of another network": (
        lambda b: _edit_json(b, GENOTYPE_FILE, lambda g: g["encoder"].update(width=6)),
        "the two files come from different models",
    ),
    "genotype that is not JSON": (
        lambda b: (b / GENOTYPE_FILE).write_text("{encoder: "),
        "genotype.json: not valid JSON",
    ),
    "genotype with a bad field": (
        lambda b: _edit_json(b, GENOTYPE_FILE, lambda g: g.pop("encoder")),
        "genotype is missing the field 'encoder'",
    ),
    "truncated weights": (
        lambda b: (b / WEIGHTS_FILE).write_bytes((b / WEIGHTS_FILE).read_bytes()[:100]),
        "not a readable safetensors file",
    ),
    "weights without the nasfcn header": (
        lambda b: save_file(load_file(str(b / WEIGHTS_FILE)), str(b / WEIGHTS_FILE)),
        "not written by a nasfcn export",
    ),
    "a class dropped from preprocess.json": (
        lambda b: _edit_json(b, PREPROCESS_FILE, lambda p: (p["class_names"].pop(), p["palette"].pop())),
        "preprocess.json gives 3 classes but weights.safetensors was saved with 4",
    ),
    "palette and classes disagree": (
        lambda b: _edit_json(b, PREPROCESS_FILE, lambda p: p["palette"].pop()),
        "palette must hold one [r, g, b] (0..255) per class name",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING), ids=list(TAMPERING))
def test_tampered_bundles_are_refused_with_the_file_and_the_fix(bundle: Path, case: str) -> None:
    tamper, message = TAMPERING[case]
    tamper(bundle)
    with pytest.raises(BundleError) as caught:
        load_bundle(bundle)
    text = str(caught.value)
    assert message in text
    assert str(bundle) in text
    assert "nasfcn export" in text  # how to get a good bundle back


def test_a_missing_or_unreadable_path_is_explained(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle; make one with `nasfcn export"):
        load_bundle(tmp_path / "nothing")
    (tmp_path / "notes.zip").write_text("not a zip")
    with pytest.raises(BundleError, match="not a bundle folder or a readable zip"):
        load_bundle(tmp_path / "notes.zip")


def test_write_refuses_a_preprocess_for_another_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="preprocess describes 3 classes"):
        write_bundle(tmp_path, _model(), _preprocess(CLASSES[:3]), {}, FinetuneRecipe(), "")


# -- finetune.yaml ---------------------------------------------------------------------------


def test_recipe_yaml_round_trips_and_is_commented() -> None:
    recipe = FinetuneRecipe(
        head=StageRecipe(2, 1e-5), decoder=StageRecipe(0, 3e-3), image_size=(48, 64), optimizer="sgd"
    )
    text = recipe.to_yaml()
    assert "# 1: only the classifier head" in text
    assert "lr: 1.0e-05" in text  # YAML 1.1 would read 1e-05 as a string
    assert FinetuneRecipe.from_yaml(text) == recipe
    assert FinetuneRecipe.from_yaml(FinetuneRecipe().to_yaml()) == FinetuneRecipe()
    assert tuple(name for name, _ in recipe.stages()) == STAGES


def test_partial_recipes_fill_in_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("stages:\n  full: {epochs: 1}\nimage_size: 48\n")
    recipe = load_recipe(path)
    assert recipe.full == StageRecipe(1, FinetuneRecipe().full.lr)
    assert recipe.head == FinetuneRecipe().head
    assert recipe.image_size == (48, 48)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stages: {body: {epochs: 1}}", "stages.body: unknown stage; stages are head, decoder, full"),
        ("stages: {head: {epochs: -1}}", "stages.head.epochs must be an integer >= 0, got -1"),
        ("stages: {head: {lr: fast}}", "stages.head.lr must be a number > 0, got 'fast'"),
        ("stages: {head: 3}", "stages.head must be {epochs: N, lr: X}"),
        ("optimizer: adam", "optimizer must be one of sgd, adamw, got 'adam'"),
        ("schedule: step", "schedule must be one of"),
        ("batch_size: 0", "batch_size must be an integer >= 1, got 0"),
        ("learning_rate: 0.1", "unknown field 'learning_rate'; known: stages, batch_size"),
        ("image_size: [4, 3, 2]", "image_size must be [height, width] (each >= 8) or null"),
        (
            "stages: {head: {epochs: 0}, decoder: {epochs: 0}, full: {epochs: 0}}",
            "every stage has 0 epochs",
        ),
        ("- 1\n- 2", "expected a mapping of recipe fields"),
        ("stages: [", "not valid YAML"),
    ],
)
def test_bad_recipes_name_the_file_field_and_allowed_values(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "finetune.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_every_problem_of_a_recipe_is_listed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "finetune.yaml"
    path.write_text("optimizer: adam\nbatch_size: 0\nfoo: 1\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    for part in ("optimizer must be", "batch_size must be", "unknown field 'foo'"):
        assert part in str(caught.value)


def test_a_bundle_with_a_broken_recipe_names_it(bundle: Path) -> None:
    (bundle / "finetune.yaml").write_text("optimizer: adam\n")
    with pytest.raises(RecipeError, match=r"finetune\.yaml: optimizer must be one of sgd, adamw"):
        load_bundle(bundle)
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(bundle / "missing.yaml")


def test_a_bundle_copy_is_still_a_bundle(bundle: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(bundle, tmp_path / "copy")
    assert load_bundle(copy)[1].arch_id == load_bundle(bundle)[1].arch_id


@pytest.mark.parametrize("name", [GENOTYPE_FILE, WEIGHTS_FILE, "metrics.json"])
def test_a_bundle_file_linked_out_of_the_folder_is_refused(bundle: Path, tmp_path: Path, name: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (bundle / name).rename(elsewhere / name)
    (bundle / name).symlink_to(elsewhere / name)
    with pytest.raises(BundleError) as info:
        load_bundle(bundle)
    assert f"{bundle / name}: a link to {elsewhere / name}, outside the bundle folder" in str(info.value)


def test_links_that_stay_inside_the_bundle_are_followed(bundle: Path, tmp_path: Path) -> None:
    (bundle / "originals").mkdir()
    (bundle / WEIGHTS_FILE).rename(bundle / "originals" / WEIGHTS_FILE)
    (bundle / WEIGHTS_FILE).symlink_to(Path("originals") / WEIGHTS_FILE)
    (tmp_path / "linked_bundle").symlink_to(bundle)  # the bundle folder itself may be a link
    assert load_bundle(tmp_path / "linked_bundle")[1].files == load_bundle(bundle)[1].files


# -- bombs: refused from sizes and shapes, before anything large is read or allocated ---------


def _reseal_weights(bundle: Path, genotype: Genotype) -> None:
    """Weights that claim to belong to ``genotype`` (the header a check would trust)."""
    from safetensors import safe_open

    path = bundle / WEIGHTS_FILE
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    save_file(load_file(str(path)), str(path), metadata={**metadata, "arch_id": genotype.arch_id})


def _giant_genotype(bundle: Path) -> None:
    """A genotype of width 4096 (1.5 billion parameters, 6 GB) with weights that claim to match it."""
    giant = Genotype(encoder=EncoderGene(stages=2, width=4096), skip="fcn16s", upsample="transposed")
    (bundle / GENOTYPE_FILE).write_text(json.dumps(giant.to_dict()))
    _reseal_weights(bundle, giant)


def _wider_genotype(bundle: Path) -> None:
    wider = Genotype(encoder=EncoderGene(stages=2, width=6), skip="fcn16s", upsample="transposed")
    (bundle / GENOTYPE_FILE).write_text(json.dumps(wider.to_dict()))
    _reseal_weights(bundle, wider)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


BOMBS = {
    "image_size 60000x60000": (
        lambda b: _edit_json(b, PREPROCESS_FILE, lambda p: p.update(image_size=[60000, 60000])),
        "preprocess.json: image_size must be [height, width], each 1..4096, got [60000, 60000]",
    ),
    "genotype nested 100k deep": (
        lambda b: (b / GENOTYPE_FILE).write_text(_nested(100_000)),
        "genotype.json: nested deeper than 32 levels",
    ),
    "metrics nested 100k deep": (
        lambda b: (b / METRICS_FILE).write_text('{"val": ' + _nested(100_000) + "}"),
        "metrics.json: nested deeper than 32 levels",
    ),
    "a 20 MB metrics.json": (
        lambda b: os.truncate(b / METRICS_FILE, 20 * 2**20),  # sparse: costs no disk
        "metrics.json: larger than the 16,777,216 bytes this file may hold",
    ),
    "a genotype of 1.5 billion parameters": (
        _giant_genotype,
        "genotype.json: describes a network of 1,510,273,",
    ),
    "a genotype wider than its weights": (
        _wider_genotype,
        "the weights do not fit the network genotype.json describes",
    ),
}


def _meta_only(*args):
    """build_model, refusing to build a real network: only shapes (the meta device) may be."""
    if torch.get_default_device().type != "meta":
        raise AssertionError("a real network was built before the bundle was checked")
    return build_model(*args)


@pytest.mark.parametrize("case", list(BOMBS), ids=list(BOMBS))
def test_bombs_are_refused_before_anything_is_built(bundle: Path, case: str, monkeypatch) -> None:
    import nasfcn.bundle._load

    tamper, message = BOMBS[case]
    tamper(bundle)
    monkeypatch.setattr(nasfcn.bundle._load, "build_model", _meta_only)  # the giant one would need 100 GB
    with pytest.raises(BundleError) as caught:
        load_bundle(bundle)
    assert message in str(caught.value)
    assert str(bundle) in str(caught.value)
    assert "nasfcn export" in str(caught.value)


def _zip_with(bundle: Path, path: Path, name: str, data: bytes) -> Path:
    """The bundle as a zip in which ``name`` holds ``data`` (deflated)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in bundle.iterdir():
            if member.name != name:
                archive.write(member, member.name)
        archive.writestr(name, data)
    return path


def test_a_zip_bomb_is_refused_from_its_headers(bundle: Path, tmp_path: Path) -> None:
    """20 MB of metrics.json zip to 20 KB: the header's size is refused before decompressing."""
    bomb = _zip_with(bundle, tmp_path / "bomb.zip", METRICS_FILE, b" " * (20 * 2**20))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(BundleError) as caught:
        load_bundle(bomb)
    assert f"{bomb / METRICS_FILE}: larger than the 16,777,216 bytes this file may hold" in str(caught.value)
    assert "its zip header says 20,971,520" in str(caught.value)


def test_a_zip_whose_header_understates_a_member_is_not_read_past_it(bundle: Path, tmp_path: Path) -> None:
    bomb = _zip_with(bundle, tmp_path / "liar.zip", METRICS_FILE, b" " * (20 * 2**20))
    raw = bytearray(bomb.read_bytes())
    declared = (20 * 2**20).to_bytes(4, "little")
    for offset in (i for i in range(len(raw)) if raw[i : i + 4] == declared):  # local + central header
        raw[offset : offset + 4] = (1000).to_bytes(4, "little")
    bomb.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"liar\.zip/metrics\.json: cannot be read from the zip"):
        load_bundle(bomb)


def test_a_bundle_is_read_within_a_total_limit(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    import nasfcn.bundle._read

    packed = tmp_path / "packed.zip"
    write_zip(bundle, packed)
    total = sum(info.file_size for info in zipfile.ZipFile(packed).infolist())
    monkeypatch.setattr(nasfcn.bundle._read, "MAX_BUNDLE_BYTES", total - 1)
    with pytest.raises(BundleError, match=f"expand to {total:,} bytes, more than the {total - 1:,}"):
        load_bundle(packed)
    monkeypatch.setattr(nasfcn.bundle._read, "MAX_BUNDLE_BYTES", (bundle / WEIGHTS_FILE).stat().st_size)
    with pytest.raises(BundleError, match="would take the bundle past the"):
        load_bundle(bundle)


def test_a_recipe_image_size_past_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "finetune.yaml"
    path.write_text("image_size: [60000, 60000]\n")
    with pytest.raises(RecipeError, match=r"image_size must be at most 4096 a side, got \[60000, 60000\]"):
        load_recipe(path)


# -- manifest.json: every file tied to the others --------------------------------------------


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    """A bundle with stand-ins for the ONNX and TorchScript files, written before the manifest
    as ``nasfcn.export`` writes them."""
    folder = tmp_path / "sealed"
    folder.mkdir()
    (folder / ONNX_FILE).write_bytes(b"onnx of this network")
    (folder / TORCHSCRIPT_FILE).write_bytes(b"torchscript of this network")
    write_bundle(folder, _model(), _preprocess(), {"val": {"miou": 0.5}}, FinetuneRecipe(), "# card\n")
    return folder


def test_the_manifest_lists_size_and_sha256_of_every_other_file(sealed: Path) -> None:
    manifest = json.loads((sealed / MANIFEST_FILE).read_text())
    assert manifest["format"] == "nasfcn-manifest/1"
    assert sorted(manifest["files"]) == sorted(n for n in BUNDLE_FILES if n != MANIFEST_FILE)
    for name, entry in manifest["files"].items():
        data = (sealed / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert load_bundle(sealed)[1].files == BUNDLE_FILES


def _swap_onnx(bundle: Path) -> None:
    (bundle / ONNX_FILE).write_bytes(b"onnx of another network")


UNSEALED = {
    "a swapped model.onnx": (_swap_onnx, "model.onnx does not match manifest.json"),
    "edited metrics": (
        lambda b: _edit_json(b, METRICS_FILE, lambda m: m["val"].update(miou=0.9)),
        "metrics.json does not match manifest.json (changed or replaced after export)",
    ),
    "other weights of the same network": (
        lambda b: _rewrite_weights(b, lambda s: s["head.classifier.bias"].add_(1)),
        "weights.safetensors does not match manifest.json",
    ),
    "a file the manifest does not list": (
        lambda b: _edit_json(b, MANIFEST_FILE, lambda m: m["files"].pop(TORCHSCRIPT_FILE)),
        "model.torchscript.pt is not listed in manifest.json",
    ),
    "a listed file missing": (
        lambda b: (b / ONNX_FILE).unlink(),
        "model.onnx is listed in manifest.json but missing",
    ),
    "a manifest that is not one": (
        lambda b: (b / MANIFEST_FILE).write_text('{"files": []}'),
        "manifest.json: not a nasfcn-manifest/1 manifest",
    ),
}


@pytest.mark.parametrize("case", list(UNSEALED), ids=list(UNSEALED))
def test_a_file_that_does_not_match_the_manifest_is_named(sealed: Path, tmp_path: Path, case: str) -> None:
    tamper, message = UNSEALED[case]
    tamper(sealed)
    packed = tmp_path / "packed.zip"
    write_zip(sealed, packed)
    for bundle in (sealed, packed):
        with pytest.raises(BundleError) as caught:
            load_bundle(bundle)
        assert message in str(caught.value)
        assert str(bundle) in str(caught.value)
        assert "nasfcn export" in str(caught.value)


def test_a_bundle_from_before_manifests_loads_with_a_warning(sealed: Path) -> None:
    (sealed / MANIFEST_FILE).unlink()
    _swap_onnx(sealed)  # nothing can tell
    with pytest.warns(BundleWarning, match=r"sealed: no manifest\.json .* not checked against the weights"):
        model, info = load_bundle(sealed)
    assert MANIFEST_FILE not in info.files
    assert isinstance(model, torch.nn.Module)


def test_a_recipe_bomb_is_refused_before_it_expands(bundle: Path, tmp_path: Path) -> None:
    """Nested aliases (9**6 values here) once reached the error message whole."""
    lines = ["defs:", "  - &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 6)]
    (bundle / "finetune.yaml").write_text("\n".join([*lines, "stages: {head: *a5}", ""]))
    for load in (load_recipe, load_bundle):
        with pytest.raises(RecipeError) as caught:
            load(bundle / "finetune.yaml" if load is load_recipe else bundle)
        assert str(caught.value).startswith(f"{bundle / 'finetune.yaml'}: refused at line")
        assert "more than 10,000 values once its aliases (*name) are resolved" in str(caught.value)
    (tmp_path / "big.yaml").write_text("# padding\n" * 200_000)
    with pytest.raises(RecipeError, match=r"big\.yaml: larger than the 1,048,576 bytes a recipe may hold"):
        load_recipe(tmp_path / "big.yaml")
