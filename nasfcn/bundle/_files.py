"""What a bundle is: its file names, formats, size limits and errors."""

from __future__ import annotations

from nasfcn.errors import NasfcnError

GENOTYPE_FILE = "genotype.json"
WEIGHTS_FILE = "weights.safetensors"
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.torchscript.pt"
PREPROCESS_FILE = "preprocess.json"
METRICS_FILE = "metrics.json"
FINETUNE_FILE = "finetune.yaml"
CARD_FILE = "README.md"
MANIFEST_FILE = "manifest.json"
#: Every file of a complete bundle, in the order the model card lists them.
BUNDLE_FILES = (
    GENOTYPE_FILE,
    WEIGHTS_FILE,
    ONNX_FILE,
    TORCHSCRIPT_FILE,
    PREPROCESS_FILE,
    METRICS_FILE,
    FINETUNE_FILE,
    CARD_FILE,
    MANIFEST_FILE,
)
#: What ``load_bundle`` needs; the other files are for other runtimes and for people.
REQUIRED_FILES = (GENOTYPE_FILE, WEIGHTS_FILE, PREPROCESS_FILE)
#: Written into the weights' safetensors header, checked on load.
FORMAT = "nasfcn-bundle/1"
#: Written into manifest.json.
MANIFEST_FORMAT = "nasfcn-manifest/1"
#: Where a broken bundle comes from again.
REEXPORT = "export it again (nasfcn export ... --out PATH)"

#: Limits on what a bundle may hold, far above any real export (a few MB of weights, KBs of
#: JSON), so that a hostile or broken bundle is refused before it costs gigabytes: sizes are
#: checked from zip headers and file sizes first, and reading stops at the limit.
MAX_PARAMS = 250_000_000  # numbers in the network genotype.json describes (1 GB as float32)
MAX_MODEL_BYTES = MAX_PARAMS * 4 + 64 * 2**20  # weights.safetensors, model.onnx, model.torchscript.pt
MAX_JSON_BYTES = 16 * 2**20  # genotype.json, preprocess.json, metrics.json
MAX_TEXT_BYTES = 2**20  # finetune.yaml, README.md
MAX_BUNDLE_BYTES = 3 * MAX_MODEL_BYTES + 4 * MAX_JSON_BYTES  # everything read from one bundle
MAX_JSON_DEPTH = 32  # nesting of objects and lists in a JSON file
MAX_IMAGE_SIDE = 4096  # image_size (height, width) in preprocess.json and finetune.yaml
_MODEL_FILES = (WEIGHTS_FILE, ONNX_FILE, TORCHSCRIPT_FILE)
_TEXT_FILES = (FINETUNE_FILE, CARD_FILE)


class BundleError(NasfcnError, ValueError):
    """A bundle cannot be used as it is; the message names the file and the fix."""


class BundleWarning(UserWarning):
    """A bundle loads, but something about it is unchecked (e.g. it predates ``manifest.json``)."""


def size_limit(name: str) -> int:
    """The most bytes a bundle file may hold."""
    if name in _MODEL_FILES:
        return MAX_MODEL_BYTES
    return MAX_TEXT_BYTES if name in _TEXT_FILES else MAX_JSON_BYTES
