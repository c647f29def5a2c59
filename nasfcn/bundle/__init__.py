"""Export bundles: one folder (or ``.zip``) with everything a trained network needs elsewhere.

=======================  ============================================================
``genotype.json``        the architecture (canonical genotype JSON)
``weights.safetensors``  the weights; its header names the architecture they belong to
``model.onnx``           ONNX, dynamic batch, height and width (checked at export)
``model.torchscript.pt`` TorchScript (traced; checked at export)
``preprocess.json``      input size trained at, mean/std, class names, palette, ignore index
``metrics.json``         where the model came from, val metrics, per-class IoU, cost
``finetune.yaml``        the staged fine-tuning recipe (:class:`FinetuneRecipe`)
``README.md``            a short model card
``manifest.json``        size and SHA-256 of every other file, checked on load
=======================  ============================================================

:func:`load_bundle` rebuilds the network from ``genotype.json`` and loads
``weights.safetensors``: no pickle anywhere. Every file it reads is checked first, so a
missing, truncated or mismatched file fails with a :class:`BundleError` naming the file
and the fix instead of loading a broken model. The ONNX and TorchScript files are
written and checked by :mod:`nasfcn.export`.

Modules, one job each: ``_files`` (file names, formats, limits, errors), ``_preprocess``
and ``_recipe`` (two of the files), ``_write``, ``_read`` (every read within its limit),
``_manifest`` and ``_load``.
"""

from nasfcn.bundle._files import (
    BUNDLE_FILES,
    CARD_FILE,
    FINETUNE_FILE,
    FORMAT,
    GENOTYPE_FILE,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    MAX_BUNDLE_BYTES,
    MAX_IMAGE_SIDE,
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_MODEL_BYTES,
    MAX_PARAMS,
    MAX_TEXT_BYTES,
    METRICS_FILE,
    ONNX_FILE,
    PREPROCESS_FILE,
    REEXPORT,
    REQUIRED_FILES,
    TORCHSCRIPT_FILE,
    WEIGHTS_FILE,
    BundleError,
    BundleWarning,
    size_limit,
)
from nasfcn.bundle._json import (
    json_safe,
)
from nasfcn.bundle._load import (
    BundleInfo,
    load_bundle,
    read_info,
)
from nasfcn.bundle._manifest import (
    write_manifest,
)
from nasfcn.bundle._preprocess import (
    Preprocess,
)
from nasfcn.bundle._recipe import (
    STAGE_HELP,
    STAGES,
    FinetuneRecipe,
    RecipeError,
    StageRecipe,
    load_recipe,
)
from nasfcn.bundle._write import (
    write_bundle,
    write_zip,
)

__all__ = [
    "BUNDLE_FILES",
    "CARD_FILE",
    "FINETUNE_FILE",
    "FORMAT",
    "GENOTYPE_FILE",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "MAX_BUNDLE_BYTES",
    "MAX_IMAGE_SIDE",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_MODEL_BYTES",
    "MAX_PARAMS",
    "MAX_TEXT_BYTES",
    "METRICS_FILE",
    "ONNX_FILE",
    "PREPROCESS_FILE",
    "REEXPORT",
    "REQUIRED_FILES",
    "STAGES",
    "STAGE_HELP",
    "TORCHSCRIPT_FILE",
    "WEIGHTS_FILE",
    "BundleError",
    "BundleInfo",
    "BundleWarning",
    "FinetuneRecipe",
    "Preprocess",
    "RecipeError",
    "StageRecipe",
    "json_safe",
    "load_bundle",
    "load_recipe",
    "read_info",
    "size_limit",
    "write_bundle",
    "write_manifest",
    "write_zip",
]
