"""Export: a trained network as a bundle, checked in every format it is written in.

``export_trial`` picks a trial from a search's results (the best completed one by val
mIoU unless told otherwise), finds the checkpoint that holds its weights (a ``cached``
trial trained nothing: its weights are those of the trial it reused) and hands the
network to ``export_model``.

The network is evaluated once on the dataset's held-out ``test`` split (``heldout_metrics``):
the search selected it on val, so val overstates it; a dataset without a test split says so.

``export_model`` writes the weights, ONNX (dynamic batch, height and width) and
TorchScript, and checks each against PyTorch at a resolution training never used: an
export that differs by more than ``PARITY_TOLERANCE`` fails, and so does one the
exporter cannot produce. Files are assembled in a staging folder and moved into place
only when every check passed, so a failed export leaves nothing behind.
"""

from nasfcn.export._card import model_card
from nasfcn.export._confirmed import test_confirmed
from nasfcn.export._heldout import heldout_metrics, no_test_split
from nasfcn.export._pick import confirmed_figures, confirmed_winner, select_trial
from nasfcn.export._trial import export_trial, measured_cost, val_metrics
from nasfcn.export._write import (
    CHECK_BATCH,
    CHECK_SIZE,
    PARITY_TOLERANCE,
    ExportError,
    ExportResult,
    Parity,
    export_model,
    export_onnx,
    export_torchscript,
)

__all__ = [
    "CHECK_BATCH",
    "CHECK_SIZE",
    "PARITY_TOLERANCE",
    "ExportError",
    "ExportResult",
    "Parity",
    "confirmed_figures",
    "confirmed_winner",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "export_trial",
    "heldout_metrics",
    "measured_cost",
    "model_card",
    "no_test_split",
    "select_trial",
    "test_confirmed",
    "val_metrics",
]
