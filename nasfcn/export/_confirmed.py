"""The held-out test figures of a search's confirmed networks, evaluated once each.

The search selects on val; once its confirmation runs finished, the run each confirmed network
would be exported with (its best by val, ``confirmed_winner``'s rule) is evaluated on the
``test`` split (``heldout_metrics``) and the figures are stored on that trial. Nothing of the
search reads them back: they are reported, never selected on. A trial whose figures are
stored is not evaluated again.
"""

from __future__ import annotations

from nasfcn.bundle import Preprocess
from nasfcn.confirm import pooled
from nasfcn.export._fetch import _load_checkpoint, _local_checkpoint
from nasfcn.export._heldout import heldout_metrics
from nasfcn.export._pick import confirmed_winner
from nasfcn.export._write import ExportError
from nasfcn.store import Store, get_search, leaderboard_frame, set_test_metrics, trial_record


def test_confirmed(store: Store, search: str) -> list[str]:
    """Evaluate each confirmed network of ``search`` on the test split; one line per network."""
    from nasfcn.train import CHECKPOINT_INFO

    board = leaderboard_frame(store, search)
    stats = pooled(board)
    stored = get_search(store, search)
    options = dict(stored["config"]) if stored else {}
    group = board["confirms"].fillna(board["number"]).astype(int)
    lines = []
    for number in stats["group"]:
        row = confirmed_winner(board[group == number])
        if row is None:
            continue
        if row.get("test_miou") is not None and row["test_miou"] == row["test_miou"]:
            continue  # evaluated once already
        record = trial_record(store, int(row["trial_id"]))
        if not record["checkpoint"]:
            lines.append(f"test split: trial {row['number']} has no checkpoint to evaluate")
            continue
        try:
            with _local_checkpoint(record["checkpoint"], record) as folder:
                model, info = _load_checkpoint(folder, record)
                preprocess = Preprocess.from_dict(info.get("preprocess"), str(folder / CHECKPOINT_INFO))
        except ExportError as err:
            lines.append(f"test split: trial {row['number']} not evaluated: {err}")
            continue
        figures = heldout_metrics(model, record["dataset"], preprocess, options)
        if not figures.get("images"):
            lines.append(f"test split: {figures.get('reason')}")
            break  # the same for every network of the search
        set_test_metrics(store, int(row["trial_id"]), figures)
        lines.append(
            f"test mIoU {figures['miou']:.3f} on {figures['images']} held-out images: trial "
            f"{row['number']} (confirmed network of trial {number})"
        )
    return lines
