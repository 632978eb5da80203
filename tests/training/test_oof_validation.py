"""Out-of-fold files are checked row by row: a probability outside 0 to 1, a NaN or a record twice is refused, naming the file and line."""

from __future__ import annotations

import numpy as np
import pytest

from ecgrhythm.records import read_reference
from ecgrhythm.training.folds import fold_dir
from ecgrhythm.training.oof import OOF_FILE, oof_text, pool_oof, read_oof

CLASSES = ["A", "N", "O", "~"]


@pytest.fixture
def two_folds(tmp_path, cinc2017_dir):
    """Two folds' `oof.csv` of real CinC 2017 records and labels (100 each), as a cross-validation writes them."""
    labels = read_reference(cinc2017_dir / "REFERENCE.csv")
    names = list(labels)[:200]
    probs = np.random.default_rng(0).dirichlet(np.ones(len(CLASSES)), size=len(names))
    for k in range(2):
        part = slice(100 * k, 100 * (k + 1))
        fold_dir(tmp_path, k).mkdir()
        text = oof_text(names[part], k, [labels[n] for n in names[part]], probs[part], CLASSES)
        (fold_dir(tmp_path, k) / OOF_FILE).write_text(text, encoding="utf-8")
    return tmp_path, names


def _edit(path, line: int, field: int, value: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    cells = lines[line - 1].rstrip("\n").split(",")
    cells[field] = value
    lines[line - 1] = ",".join(cells) + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def test_valid_folds_pool_to_every_record_once(two_folds):
    output, names = two_folds
    pooled = pool_oof(output, 2)
    read, folds, _, probs, classes = read_oof(pooled)
    assert read == names and classes == CLASSES and list(np.bincount(folds)) == [100, 100]
    assert np.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1


@pytest.mark.parametrize(("value", "match"), [("-5", "probability '-5' is not a number from 0 to 1"), ("nan", "probability 'nan'"), ("1.5", "'1.5'")])
def test_probability_outside_0_to_1_is_refused_naming_file_and_line(two_folds, value, match):
    output, _ = two_folds
    path = fold_dir(output, 1) / OOF_FILE
    _edit(path, 7, 4, value)
    with pytest.raises(ValueError, match=match) as info:
        read_oof(path)
    assert str(info.value).startswith(f"{path}: line 7:")
    with pytest.raises(ValueError, match="line 7"):
        pool_oof(output, 2)
    assert not (output / OOF_FILE).exists()


def test_duplicate_row_in_a_fold_is_refused(two_folds):
    output, names = two_folds
    path = fold_dir(output, 0) / OOF_FILE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join([*lines, lines[5]]), encoding="utf-8")  # 101 rows for 100 records
    with pytest.raises(ValueError, match=rf"line 102: record '{names[4]}' is already on line 6"):
        read_oof(path)


def test_record_in_two_folds_is_refused_naming_both_files(two_folds):
    output, names = two_folds
    path = fold_dir(output, 1) / OOF_FILE
    _edit(path, 2, 0, names[0])  # fold 1's first row now holds a record of fold 0
    with pytest.raises(ValueError, match=rf"record '{names[0]}' is also in .*fold0"):
        pool_oof(output, 2)
