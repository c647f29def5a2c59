"""``benchmarks/demo_recipe.py``: settings as text, the recipe they give, and a sweep that resumes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def dr(load_script) -> ModuleType:
    return load_script("demo_recipe")


def test_a_setting_overrides_the_defaults_and_warms_up_for_a_share_of_its_epochs(dr: ModuleType) -> None:
    setting = dr.Setting.parse("hot:size=32,epochs=12,batch=8,lr=1e-2,warmup=0.25,jitter=0")
    recipe = setting.recipe(seed=3)
    assert (recipe.epochs, recipe.batch_size, recipe.lr, recipe.seed) == (12, 8, 0.01, 3)
    assert recipe.warmup_epochs == 3.0
    assert recipe.optimizer == "adamw"  # a default kept
    config = setting.data_config(data_seed=0)
    assert config.image_size == (32, 32)
    assert config.scale_range == (1.0, 1.0)


def test_an_unknown_key_names_itself_and_the_known_ones(dr: ModuleType) -> None:
    with pytest.raises(SystemExit, match="unknown key 'lrate'; known: size, n, epochs"):
        dr.Setting.parse("x:lrate=1")


@pytest.mark.slow  # trains one tiny network (a few seconds with torch's import)
def test_a_rerun_reads_finished_runs_back_instead_of_training_them_again(
    dr: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs.jsonl"
    argv = ["demo_recipe.py", "--archs", "1", "--seeds", "1", "--setting", "s:size=32,n=8,epochs=1,batch=4"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(out)])
    dr.main()
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(first) == 1
    assert len(first[0]["miou"]) == 1
    assert first[0]["cpu_s"] > 0
    capsys.readouterr()
    dr.main()
    assert out.read_text().splitlines() == [json.dumps(first[0])]  # nothing trained twice
    assert "| s | 1 |" in capsys.readouterr().out


def test_a_genotype_file_is_trained_without_its_searched_knobs(dr: ModuleType, tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "benchmarks" / "genotypes" / "unet3_w16_b2.json"
    genotype = dr.from_file(shipped)
    assert genotype.arch_id == "28ef1bb53e11"  # the id RESULTS.md's short-run probes name
    searched = tmp_path / "searched.json"
    searched.write_text(
        json.dumps({**json.loads(shipped.read_text()), "train": {"lr": 0.05}}), encoding="utf-8"
    )
    assert dr.from_file(searched).train.as_dict() == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"--genotype .*broken.json"):
        dr.from_file(broken)
    with pytest.raises(SystemExit, match=r"--genotype .*missing.json"):
        dr.from_file(tmp_path / "missing.json")
