"""The held-out test split: evaluated once, at export, on images the search never selected on.

A search trains on train and selects on val, so the best val mIoU of its winner is biased
upwards (it is the maximum over many candidates). What a user is told an exported network
reaches comes from the dataset's ``test`` split instead: generated datasets draw test scenes
from a random stream of their own, folders list them in ``splits/test.txt``. Where a dataset
has none, the metrics say so, and nothing else stands in for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nasfcn.bundle import Preprocess
from nasfcn.model import FCN

if TYPE_CHECKING:
    from nasfcn.data import DatasetBundle, SegmentationDataset

#: Batch size of the single evaluation pass.
TEST_BATCH = 32


def no_test_split(reason: str) -> dict[str, Any]:
    """The ``test`` entry of a bundle's metrics when no test figures could be computed."""
    return {"images": 0, "reason": reason}


def heldout_metrics(
    model: FCN, spec: str, preprocess: Preprocess, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``model`` evaluated once on the test split of dataset ``spec``, as trained (size, mean, std).

    ``options`` are the search's data options (its ``seed`` picks the test scenes of a generated
    dataset; unknown keys are ignored). Returns the figures with the number of images, or
    ``no_test_split(reason)`` when the dataset has no test split or cannot be read now.
    """
    from nasfcn.data import DataConfig, DatasetError, load_dataset

    chosen = {key: value for key, value in (options or {}).items() if key in ("seed", "test_samples")}
    config = DataConfig(
        image_size=preprocess.image_size,
        mean=preprocess.mean,
        std=preprocess.std,
        train_samples=1,  # generated samples are drawn one stream each: test does not depend on these
        val_samples=1,
        with_test=True,
        **chosen,
    )
    try:
        data = load_dataset(spec, config)
    except (DatasetError, KeyError) as err:  # KeyError: UnknownChoiceError, a dataset not registered here
        return no_test_split(f"not evaluated: dataset {spec} cannot be loaded here ({err})".splitlines()[0])
    if data.test is None:
        return no_test_split(f"no test split: {spec} has none ({_how_to_add(spec)})")
    if data.num_classes != preprocess.num_classes or data.in_channels != preprocess.in_channels:
        return no_test_split(
            f"not evaluated: {spec} now has {data.num_classes} classes and {data.in_channels} channels, "
            f"the network {preprocess.num_classes} and {preprocess.in_channels}"
        )
    return _evaluate(model, data.test, data, config.seed)


def _evaluate(model: FCN, test: SegmentationDataset, data: DatasetBundle, seed: int) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    from nasfcn.export._trial import val_metrics
    from nasfcn.train import evaluate

    loader = DataLoader(test, batch_size=TEST_BATCH)
    scores = evaluate(model.eval(), loader, data.num_classes, data.ignore_index, "cpu")
    figures = val_metrics({f"val_{k}": v for k, v in scores.as_dict().items()}, data.class_names)
    figures.pop("epoch", None)
    return {"images": len(test), "dataset": data.spec, "seed": seed, **figures}


def _how_to_add(spec: str) -> str:
    if spec.startswith("voc:"):
        return "add ImageSets/Segmentation/test.txt listing held-out image ids"
    if spec.startswith("folder:"):
        return "add splits/train.txt, splits/val.txt and splits/test.txt; test ids must be in neither"
    return "give the dataset a test split"
