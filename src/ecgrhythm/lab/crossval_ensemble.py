"""Cross-validation of an ensemble: the fold models of several cross-validations on the same folds, averaged.

:func:`average_crossvals` takes cross-validation folders (see :mod:`ecgrhythm.training.crossval`) run on the
same folds, for example one recipe trained with two seeds, and writes a folder of the same layout::

    crossval.json        {"ensemble_of": [{"folder": member folder's name, "recipe": its crossval.json}, ...]}
    folds.json           the members' folds
    fold0/ ... foldK/    for each fold finished in every member: one model folder averaging the members'
                         networks of that fold (:func:`ecgrhythm.networks.saving.assemble_ensemble`), and its
                         `oof.csv`, the members' out-of-fold probabilities of the fold averaged record by record,
                         and `oof-last.csv`, the same of the members' last epochs where every member has them;
                         when some member's fold has no network (a run kept by a report, `run/` beside it:
                         :func:`ecgrhythm.training.crossval.keep_run`), the probabilities only
    oof.csv              every record's averaged out-of-fold probabilities, once every fold is there
    oof-last.csv         the same of the last epochs

Each fold's ensemble never saw its fold's records (no member did), so its out-of-fold probabilities
are an estimate of the ensemble recipe as honest as those of one network; they are the probabilities
its model folder predicts on those records. :mod:`ecgrhythm.lab.crossval_report` reports the folder as it
reports any cross-validation. Rerunning with the same members adds the folds finished since; other
members are refused. Kept runs as members let the estimate and the calibration of an ensemble outlive the machines
that trained its members' cross-validations (each kept run can come from another machine or session).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ecgrhythm.networks.saving import MAX_MEMBERS, assemble_ensemble, is_finished
from ecgrhythm.training.crossval import RECIPE_FILE, CrossvalResult, claim_folder
from ecgrhythm.training.folds import fold_dir, read_folds
from ecgrhythm.training.oof import LAST_OOF_FILE, OOF_FILE, oof_text, pool_oof, read_oof
from ecgrhythm.utils.io import atomic_write_text

__all__ = ["average_crossvals", "ENSEMBLE_KEY"]

logger = logging.getLogger(__name__)

ENSEMBLE_KEY = "ensemble_of"  # the key of an ensemble's crossval.json


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _read_recipe(member: Path) -> dict:
    path = member / RECIPE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {member} is not a cross-validation folder (pass folders written by 'ecgrhythm crossval')")
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not a cross-validation recipe ({exc})") from None
    if not isinstance(recipe, dict):
        raise ValueError(f"{path}: not a cross-validation recipe (expected a JSON object)")
    if ENSEMBLE_KEY in recipe:
        raise ValueError(f"{member} is itself an ensemble of cross-validations: pass the cross-validation folders of single networks")
    return recipe


def _check_members(members: list[Path], output: Path) -> tuple[list, list[dict]]:
    """`(folds of each member, recipe of each)`, refusing members that cannot be averaged fold by fold or an `output` among them."""
    if not 2 <= len(members) <= MAX_MEMBERS:
        raise ValueError(f"Invalid argument `member_dirs`: expected 2 to {MAX_MEMBERS} cross-validation folders. Received: {len(members)}")
    for i, member in enumerate(members):
        if _same_folder(member, output):
            raise ValueError(f"the output folder {output} is the member {member}: write the ensemble to another folder")
        if any(_same_folder(member, other) for other in members[:i]):
            raise ValueError(f"{member} is given twice: an ensemble averages different cross-validations")
    folds = [read_folds(m) for m in members]
    recipes = [_read_recipe(m) for m in members]
    first = members[0]
    for member, f, recipe in zip(members[1:], folds[1:], recipes[1:]):
        if f.digest != folds[0].digest:
            raise ValueError(
                f"{member}: its folds ({member / 'folds.json'}) differ from those of {first}; cross-validate every member "
                "on the same records with the same number of folds and fold seed"
            )
        if f.classes != folds[0].classes:
            raise ValueError(f"{member}: its classes {list(f.classes)} differ from those of {first} {list(folds[0].classes)}")
        for key in ("preprocess", "model"):  # assemble_ensemble needs them equal: refuse before writing anything
            if recipe.get(key) != recipes[0].get(key):
                raise ValueError(
                    f"{member}: its {key!r} settings differ from those of {first}; an ensemble's networks share preprocessing and architecture"
                )
    return folds, recipes


def _check_output(output: Path) -> None:
    """Refuse an `output` that exists and is neither empty nor a cross-validation folder."""
    if not output.exists() and not output.is_symlink():
        return
    if not output.is_dir():
        raise FileExistsError(f"output folder {output} is a file, not a folder: choose a new or empty folder")
    if (output / RECIPE_FILE).is_file():
        return  # a cross-validation folder: _claim checks that it averages the same members
    names = sorted(os.listdir(output))
    if names:
        raise FileExistsError(
            f"output folder {output} holds {len(names):,} other {'entry' if len(names) == 1 else 'entries'} such as {', '.join(names[:3])}, "
            f"and is not a cross-validation folder ({RECIPE_FILE}): nothing was written; choose a new or empty folder"
        )


def _averaged_oof(members: list[Path], k: int, filename: str = OOF_FILE) -> str:
    """The text of fold `k`'s `filename` (`oof.csv` or `oof-last.csv`): the members' rows averaged per record, in the first member's order."""
    paths = [fold_dir(m, k) / filename for m in members]
    names, _, truth, first, classes = read_oof(paths[0])
    total = first.copy()
    for path in paths[1:]:
        other_names, _, other_truth, probs, other_classes = read_oof(path)
        if other_classes != classes:
            raise ValueError(f"{path}: its classes {other_classes} differ from those of {paths[0]} {classes}")
        if sorted(other_names) != sorted(names) or len(set(other_names)) != len(other_names):
            differ = sorted(set(names) ^ set(other_names))
            raise ValueError(
                f"{path}: its records differ from those of {paths[0]} (such as {', '.join(differ[:3]) or 'a repeated record'}); "
                "the member's fold folder was altered: rerun its cross-validation into a new folder"
            )
        index = {n: i for i, n in enumerate(other_names)}
        if [other_truth[index[n]] for n in names] != truth:
            raise ValueError(f"{path}: its true labels differ from those of {paths[0]}; the cross-validations were run on other labels")
        total += probs[[index[n] for n in names]]
    return oof_text(names, k, truth, total / len(paths), classes)


def average_crossvals(member_dirs, output) -> CrossvalResult:
    """Write the cross-validation of the ensemble of `member_dirs`: each fold's networks averaged, and their out-of-fold probabilities.

    The members are cross-validation folders, finished or not, or runs kept by their reports, on the same folds
    (same `folds.json` digest) with the same classes, preprocessing and architecture. Every fold finished in all members is averaged
    (see the module docstring); the pooled `oof.csv` is written once every fold is. Rerunning with the same
    members averages the folds finished since and leaves the others as they are.

    Args:
        member_dirs: 2 to :data:`ecgrhythm.networks.saving.MAX_MEMBERS` cross-validation folders.
        output: the folder to write: new or empty, or an earlier output of this function with the same members.

    Returns:
        A :class:`ecgrhythm.training.crossval.CrossvalResult`: `finished` the folds averaged so far, `trained` those this call
        averaged, `oof_path` the pooled `oof.csv` (or `None` while some fold is unfinished in a member).

    Raises:
        ValueError: too few or too many members, members on other folds or with other classes or settings,
            a member given twice or as `output`, mismatched records in a fold, or an `output` averaging other members.
        FileNotFoundError: a member is not a cross-validation folder.
        FileExistsError: `output` holds other things and is not a cross-validation folder.
    """
    members, output = [Path(d) for d in member_dirs], Path(output)
    folds, recipes = _check_members(members, output)
    _check_output(output)
    claim_folder(output, {ENSEMBLE_KEY: [{"folder": m.resolve().name, "recipe": r} for m, r in zip(members, recipes)]}, folds[0])
    n_folds, averaged = len(folds[0].folds), []
    for k in range(n_folds):
        if not all((fold_dir(m, k) / OOF_FILE).is_file() for m in members):
            continue
        if not (fold_dir(output, k) / OOF_FILE).is_file():
            text = _averaged_oof(members, k)
            if all(is_finished(fold_dir(m, k)) for m in members):
                logger.info("fold %d of %d: averaging the networks of %d cross-validations", k + 1, n_folds, len(members))
                assemble_ensemble([fold_dir(m, k) for m in members], fold_dir(output, k))
            else:
                logger.info(
                    "fold %d of %d: averaging the probabilities of %d cross-validations (a member kept no network)", k + 1, n_folds, len(members)
                )
            atomic_write_text(fold_dir(output, k) / OOF_FILE, text)  # the fold reads as finished once it is there
            averaged.append(k)
        if not (fold_dir(output, k) / LAST_OOF_FILE).is_file() and all((fold_dir(m, k) / LAST_OOF_FILE).is_file() for m in members):
            atomic_write_text(fold_dir(output, k) / LAST_OOF_FILE, _averaged_oof(members, k, LAST_OOF_FILE))
    finished = [k for k in range(n_folds) if (fold_dir(output, k) / OOF_FILE).is_file()]
    oof_path = pool_oof(output, n_folds)
    return CrossvalResult(output, folds[0], finished, averaged, oof_path)
