"""Out-of-fold probabilities of a cross-validation: each fold's `oof.csv` (and `oof-last.csv`), pooled once all are there.

Each row is `record,fold,truth,<one probability per class>`; a fold writes its file when it is finished,
and :func:`pool_oof` joins them in fold order into the folder's own `oof.csv` once every fold has one.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ecgrhythm.training.folds import Folds, fold_dir, read_folds
from ecgrhythm.utils.io import atomic_write_text, csv_writer

__all__ = [
    "OOF_FILE",
    "LAST_OOF_FILE",
    "oof_text",
    "read_oof",
    "pool_oof",
    "pooled_oof_text",
    "finished_oof",
    "finished_in_every",
]

OOF_FILE = "oof.csv"


LAST_OOF_FILE = "oof-last.csv"  # the out-of-fold probabilities of each fold network's last epoch


def oof_text(names, fold: int, truth, probabilities: np.ndarray, classes) -> str:
    """Out-of-fold rows `record,fold,true_label,<one probability column per class>` as CSV text (with the header)."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["record", "fold", "true_label", *classes])
    for name, label, row in zip(names, truth, probabilities):
        writer.writerow([name, fold, label, *(f"{p:.6f}" for p in row)])
    return out.getvalue()


def read_oof(path) -> tuple[list[str], np.ndarray, list[str], np.ndarray, list[str]]:
    """An out-of-fold CSV (a fold's or the pooled `oof.csv`), checked row by row.

    Returns:
        `(names, folds (n,), true labels, probabilities (n, n_classes), classes)`.

    Raises:
        ValueError: the file is not such a CSV (nor UTF-8 text), or a row (named by its line) has a probability that is not a number
            from 0 to 1 (NaN, -5), a fold that is not a whole number, or a record already on an earlier row.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        rows = []
    if not rows or rows[0][:3] != ["record", "fold", "true_label"] or len(rows[0]) < 4 or len(rows) < 2:
        raise ValueError(f"{path}: not an out-of-fold probability file (record,fold,true_label,<classes> with one row per record)")
    classes, lines = rows[0][3:], {}
    for line, row in enumerate(rows[1:], start=2):
        problem = _oof_row_problem(row, len(classes), lines)
        if problem:
            raise ValueError(f"{path}: line {line}: {problem}; the file is corrupt or was edited: run that fold again")
        lines[row[0]] = line
    probs = np.array([[float(v) for v in r[3:]] for r in rows[1:]], dtype=float).reshape(len(rows) - 1, len(classes))
    folds = np.array([int(r[1]) for r in rows[1:]])
    return [r[0] for r in rows[1:]], folds, [r[2] for r in rows[1:]], probs, classes


def _oof_row_problem(row: list[str], n_classes: int, lines: dict[str, int]) -> str | None:
    """What is wrong with one out-of-fold row (`lines`: the line of each record seen so far), or None."""
    if len(row) != 3 + n_classes:
        return f"expected {3 + n_classes} fields (record,fold,true_label and {n_classes} probabilities), got {len(row)}"
    if not row[0]:
        return "the record name is empty"
    if row[0] in lines:
        return f"record {row[0][:80]!r} is already on line {lines[row[0]]}: one row per record"
    if not row[1].isascii() or not row[1].isdigit():
        return f"the fold {row[1][:80]!r} is not a whole number"
    for value in row[3:]:
        try:
            p = float(value)
        except ValueError:
            p = math.nan
        if not 0.0 <= p <= 1.0:  # also refuses NaN
            return f"the probability {value[:80]!r} is not a number from 0 to 1"
    return None


def pool_oof(output: Path, n_folds: int) -> Path | None:
    """Write `output/oof.csv` once every fold's `oof.csv` is there (their rows in fold order), and then
    `output/oof-last.csv` if every fold has its `oof-last.csv`. A pooled file whose folds are not all there (one was
    removed to be trained again, or lost its last-epoch probabilities) is removed: it would hold what they replace.

    Returns:
        The pooled `oof.csv`, or `None` while some fold is unfinished.
    """
    if not _pool(output, n_folds, OOF_FILE):
        return None
    _pool(output, n_folds, LAST_OOF_FILE)
    return output / OOF_FILE


def _pool(output: Path, n_folds: int, filename: str) -> bool:
    """Write `output/filename` from every fold's file of that name, if all are there, else remove it; whether it did."""
    paths = [fold_dir(output, k) / filename for k in range(n_folds)]
    if not all(path.is_file() for path in paths):
        (output / filename).unlink(missing_ok=True)
        return False
    _check_distinct(paths, [read_oof(path) for path in paths])
    atomic_write_text(output / filename, pooled_oof_text([path.read_text(encoding="utf-8") for path in paths]))
    return True


def _check_distinct(paths, parts) -> None:
    """Refuse out-of-fold files (`parts`: their :func:`read_oof`) in which one record appears twice, naming both files."""
    first: dict[str, Path] = {}
    for path, part in zip(paths, parts):
        for name in part[0]:
            if name in first:
                raise ValueError(
                    f"{path}: record {name[:80]!r} is also in {first[name]}: a record is out of fold in one fold only; the folder mixes runs"
                )
            first[name] = path


def pooled_oof_text(texts) -> str:
    """One out-of-fold CSV text from several (:func:`oof_text`, one per fold, same classes): the first header, then every row in order."""
    parts = [text.splitlines(keepends=True) for text in texts]
    return "".join([parts[0][0], *(line for part in parts for line in part[1:])])


def finished_oof(output: Path, partial: bool, filename: str = OOF_FILE):
    """`read_oof` of the folds' files `filename` (`oof.csv`, or `oof-last.csv`) pooled in fold order: every fold's, or
    (`partial`) those of the folds that have one. Read from the folds' own files, so a pooled file left from
    another state of the folder is never used."""
    paths = [fold_dir(output, k) / filename for k in range(len(read_folds(output).folds))]
    missing = [k for k, path in enumerate(paths) if not path.is_file()]
    if len(missing) == len(paths) or missing and not partial:
        if filename == LAST_OOF_FILE and all((fold_dir(output, k) / OOF_FILE).is_file() for k in missing):
            raise FileNotFoundError(
                f"{output}: fold(s) {missing} are finished but have no {filename} (run before it was written, or without a checkpoint); "
                f"rerun the cross-validation with the same settings on those folds (`only={missing}`: it reads each fold's checkpoint, "
                "it does not train), or for an ensemble of cross-validations, each member so, then the ensemble again"
            )
        if partial:
            raise FileNotFoundError(f"{output}: no fold is finished (no fold*/{filename}); run at least one fold of the cross-validation (`only`)")
        raise FileNotFoundError(
            f"{output}: fold(s) {missing} have no {filename}: the cross-validation is unfinished; rerun it with the same settings, "
            "or use the finished folds only (`partial=True`)"
        )
    paths = [path for path in paths if path.is_file()]
    parts = [read_oof(path) for path in paths]
    _check_distinct(paths, parts)
    if any(part[4] != parts[0][4] for part in parts):
        raise ValueError(f"{output}: the finished folds' {filename} files have different classes; the folder mixes runs, start it again")
    names, truth = [n for part in parts for n in part[0]], [t for part in parts for t in part[2]]
    return names, np.concatenate([part[1] for part in parts]), truth, np.concatenate([part[3] for part in parts]), parts[0][4]


def finished_in_every(members) -> tuple[Folds, list[int]]:
    """`(folds, finished)`: the folds shared by the cross-validation folders `members` and the folds whose `oof.csv`
    every member has, in order.


    Raises:
        ValueError: a member has other folds than the first, or no fold is finished in every member.
    """
    members = [Path(m) for m in members]
    folds = read_folds(members[0])
    for member in members[1:]:
        if read_folds(member).digest != folds.digest:
            raise ValueError(f"{member}: other folds than {members[0]}")
    finished = [k for k in range(len(folds.folds)) if all((fold_dir(m, k) / OOF_FILE).is_file() for m in members)]
    if not finished:
        raise ValueError(f"no fold is finished in every one of {[str(m) for m in members]}: run their cross-validations first")
    return folds, finished
