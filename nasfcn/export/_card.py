"""The model card: the bundle's README.md, written from its metrics and recipe."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasfcn.bundle import ONNX_FILE, TORCHSCRIPT_FILE, FinetuneRecipe, Preprocess
from nasfcn.genotype import Genotype
from nasfcn.model import FCN


def model_card(
    model: FCN, preprocess: Preprocess, metrics: Mapping[str, Any], recipe: FinetuneRecipe, out: Path
) -> str:
    """README.md: the architecture in words, metrics, how to load, predict and fine-tune."""
    lines = [
        *_summary(model.genotype, preprocess, metrics),
        *_results(metrics),
        *_input(preprocess),
        *_usage(out.name, recipe),
    ]
    return "\n".join(lines)


def _summary(genotype: Genotype, preprocess: Preprocess, metrics: Mapping[str, Any]) -> list[str]:
    """The title and one line each: the data trained on, val metrics, cost, checked exports."""
    val = metrics.get("val", {})
    cost = metrics.get("cost", {})
    source = metrics.get("source", {})
    height, width = preprocess.image_size
    lines = [
        f"# nasfcn model `{genotype.arch_id}`",
        "",
        f"{genotype.describe()}; {preprocess.num_classes} classes, {preprocess.in_channels} input channels.",
        "",
        f"- **Trained on** `{preprocess.dataset}` at {height}x{width} ({_source_text(source)}).",
    ]
    if val.get("miou") is not None:
        lines.append(
            f"- **Val mIoU {val['miou']:.3f}**, pixel accuracy {_fmt(val.get('pixel_accuracy'))}"
            + (f" (epoch {val['epoch']})" if val.get("epoch") else "")
            + "."
        )
    if "test" in metrics:
        lines.append(_test_line(metrics["test"]))
    if metrics.get("confirmed"):
        lines.append(_confirmed_line(metrics["confirmed"]))
    if cost.get("params") is not None:
        lines.append(
            f"- **Cost**: {cost['params']:,} parameters, {_fmt_count(cost.get('flops'))} FLOPs, "
            f"latency {_fmt(cost.get('latency_ms'), '.2f')} ms, peak memory "
            f"{_fmt(cost.get('peak_memory_mb'), '.1f')} MiB on {cost.get('device') or '?'} "
            f"(input {cost.get('input') or '?'})."
        )
    parity = metrics.get("export", {})
    if parity:
        lines.append(
            "- **Exports checked** against PyTorch at "
            + ", ".join(
                f"{name} {p['input']}: max abs diff {p['max_abs_diff']:.1e}" for name, p in _formats(parity)
            )
            + "."
        )
    return lines


def _results(metrics: Mapping[str, Any]) -> list[str]:
    """Per-class val (and test) IoU, and the val mIoU after each fine-tuning stage (for a fine-tuned
    bundle)."""
    lines: list[str] = []
    per_class = metrics.get("val", {}).get("per_class_iou") or {}
    test = (metrics.get("test") or {}).get("per_class_iou")
    if per_class and test:
        lines += ["", "| class | val IoU | test IoU |", "|---|---|---|"]
        lines += [f"| {name} | {_fmt(iou)} | {_fmt(test.get(name))} |" for name, iou in per_class.items()]
    elif per_class:
        lines += ["", "| class | val IoU |", "|---|---|"]
        lines += [f"| {name} | {_fmt(iou)} |" for name, iou in per_class.items()]
    finetune = metrics.get("finetune", {})
    if finetune.get("stages"):
        lines += ["", "Fine-tuning stages (val after each):", ""]
        lines.append(f"- before: mIoU {_fmt(finetune.get('baseline', {}).get('miou'))}")
        kept = finetune.get("best_stage")
        lines += [
            f"- {s['name']}: {s['epochs']} epochs at lr {s['lr']:g}, mIoU {_fmt(s['val'].get('miou'))}"
            + (" (kept: the best stage by val mIoU)" if s["name"] == kept else "")
            for s in finetune["stages"]
        ]
    return lines


def _confirmed_line(confirmed: Mapping[str, Any]) -> str:
    """The network's val mIoU pooled over its confirmation runs: one run's best is a lucky draw."""
    low, high = confirmed.get("ci95") or (None, None)
    interval = f", 95% CI [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    tested = confirmed.get("test_miou")
    test = f"; test mIoU {tested:.3f} stored by the search" if tested is not None else ""
    return f"- **Val mIoU {confirmed['text']}**{interval} (seeds {confirmed['run_seeds']}){test}."


def _test_line(test: Mapping[str, Any]) -> str:
    """The test figures, or why there are none: val selected the network, so it never stands in."""
    if not test.get("images"):
        reason = test.get("reason") or "no test split"
        return f"- **Test: {reason}.** The val figure above selected this network, so it overstates it."
    return (
        f"- **Test mIoU {_fmt(test.get('miou'))}**, pixel accuracy {_fmt(test.get('pixel_accuracy'))} on "
        f"{test.get('images')} held-out test images, never used to train or select this network."
    )


def _input(preprocess: Preprocess) -> list[str]:
    """What the bundle holds and what the network takes and gives."""
    height, width = preprocess.image_size
    return [
        "",
        "## Files",
        "",
        "`genotype.json` (architecture), `weights.safetensors`, `model.onnx` (dynamic batch, height, "
        "width), `model.torchscript.pt`, `preprocess.json` (input size, mean/std, class names, palette, "
        "ignore index), `metrics.json`, `finetune.yaml` (staged fine-tuning recipe), this card and "
        "`manifest.json` (size and SHA-256 of every other file, checked by `load_bundle`).",
        "",
        "## Input",
        "",
        f"RGB values scaled to [0, 1], then `(x - mean) / std` per channel with mean "
        f"{list(preprocess.mean)} and std {list(preprocess.std)}; N x {preprocess.in_channels} x H x W "
        f"float32, any H and W (trained at {height}x{width}). Output: logits N x "
        f"{preprocess.num_classes} x H x W; the class is the argmax.",
    ]


def _usage(name: str, recipe: FinetuneRecipe) -> list[str]:
    """How to load (PyTorch, ONNX Runtime, TorchScript), predict and fine-tune the bundle ``name``."""
    return [
        "",
        "## Load",
        "",
        "```python",
        "import nasfcn",
        "",
        f'model, info = nasfcn.load_bundle("{name}")  # genotype + safetensors, no pickle',
        "logits = model(images)  # N x C x H x W, normalized as above",
        "```",
        "",
        "```python",
        "import onnxruntime",
        "",
        f'session = onnxruntime.InferenceSession("{name}/{ONNX_FILE}")',
        'logits = session.run(None, {"image": images})[0]  # images: float32 numpy array',
        "```",
        "",
        f'TorchScript: `torch.jit.load("{name}/{TORCHSCRIPT_FILE}")` (PyTorch has deprecated '
        "TorchScript; for new code prefer ONNX or `load_bundle`).",
        "",
        "## Predict",
        "",
        "```bash",
        f"nasfcn predict --bundle {name} photo.jpg --out masks/ --overlay",
        "```",
        "",
        "## Fine-tune",
        "",
        "Stage 1 trains only the classifier head (replaced when the number of classes differs), stage "
        "2 also the decoder (upsampling, skip fusion, attention), stage 3 the whole model at a lower "
        "learning rate; epochs and learning rates are in `finetune.yaml`:",
        "",
        "```bash",
        f"nasfcn finetune --bundle {name} --data folder:my_data --out my_model",
        "```",
        "",
        "| stage | epochs | lr |",
        "|---|---|---|",
        *(f"| {stage} | {s.epochs} | {s.lr:g} |" for stage, s in recipe.stages()),
        "",
    ]


def _formats(export: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(name, value) for name, value in export.items() if name in ("onnx", "torchscript")]


def _source_text(source: Mapping[str, Any]) -> str:
    if source.get("kind") == "search":
        text = f"search `{source.get('search')}`, trial {source.get('trial')}"
        trained_by = source.get("trained_by")
        if trained_by:
            text += f", a cached result of trial {trained_by['trial']} of search `{trained_by['search']}`"
        return text
    if source.get("kind") == "finetune":
        return f"fine-tuned from `{source.get('bundle')}` ({source.get('arch_id')})"
    return "trained with nasfcn"


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _fmt_count(value: Any) -> str:
    from nasfcn.cost import format_count

    return "-" if value is None else format_count(float(value))
