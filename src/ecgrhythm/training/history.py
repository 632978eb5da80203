"""The per-epoch log of a training run (`training_log.csv` in its model folder) and the name of its validation score."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ecgrhythm.networks.saving import LOG_FILE
from ecgrhythm.utils.io import csv_writer

__all__ = ["log_text", "read_log", "score_column"]


def log_text(history: list[dict]) -> str:
    """The per-epoch log as CSV text: a header of the first row's keys, then one line per epoch."""
    out = io.StringIO()
    fields = list(history[0])
    writer = csv_writer(out)
    writer.writerow(fields)
    writer.writerows([row.get(k, "") for k in fields] for row in history)
    return out.getvalue()


def read_log(model_dir) -> list[dict]:
    """The per-epoch log (`training_log.csv`) of a model folder: one dict per epoch, its values as written (strings).

    Raises:
        FileNotFoundError: the folder has no log (a model trained by this package writes one).
    """
    path = Path(model_dir) / LOG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a model folder trained by 'ecgrhythm train' or 'ecgrhythm crossval'")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def score_column(multilabel: bool) -> str:
    """The validation score's column in the training log and its key in the model's metadata."""
    return "val_macro_f1" if multilabel else "val_cinc_score"
