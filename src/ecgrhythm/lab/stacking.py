"""A stacked model, strictly out of fold: gradient boosting on the rhythm features and the networks' out-of-fold probabilities.

The networks' out-of-fold probabilities of a cross-validation (each fold's `oof-last.csv`: the fold network's last
epoch on the fold's records, which it never saw) and the rhythm features of every record
(:func:`ecgrhythm.features.rhythm.rhythm_features`, cached by :func:`feature_table`) are the inputs of scikit-learn's
`HistGradientBoostingClassifier` (scikit-learn is already a dependency of the package). :func:`stacked_oof` fits it
once per outer fold `k` on the rows of the other folds only, with fixed hyper-parameters (:data:`BOOSTING`, its early
stopping on a share of those rows), and predicts fold `k`'s rows: no label of fold `k` chooses or fits anything
applied to it.

One subtlety remains, as in every stacking on cross-validated probabilities: the training rows' probabilities
(folds `j != k`) come from the fold-`j` networks, which were trained on fold `k`'s records among others, and the
rows scored (fold `k`) get theirs from the fold-`k` network, another network than those the booster learned from
(as a booster shipped beside networks trained on every record would be). The booster never sees fold `k`'s labels,
but its inputs on other rows were made by networks that did.

The booster is fitted with balanced class weights, as the networks are, so its probabilities are those under equal
priors; :func:`score_stacked` then applies the same cross-fitted prior correction the reference gets
(:func:`ecgrhythm.scoring.crossval.cross_fitted_prior`: each fold multiplied by the other folds' class frequencies).
:mod:`ecgrhythm.lab.stacking_report` runs it all and writes the results.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np

from ecgrhythm.training.folds import read_folds
from ecgrhythm.training.oof import LAST_OOF_FILE, finished_oof
from ecgrhythm.utils.io import atomic_write_text

__all__ = ["feature_table", "member_probabilities", "stacked_oof", "fit_booster", "BOOSTING"]

logger = logging.getLogger(__name__)

# Fixed, not tuned on any fold: a small learning rate, shallow trees, early stopping on 15 % of the training rows.
BOOSTING = {
    "learning_rate": 0.05,
    "max_iter": 500,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.15,
    "n_iter_no_change": 20,
    "class_weight": "balanced",
}


def feature_table(data_dir, names, cache) -> np.ndarray:
    """The rhythm features `(len(names), len(FEATURE_NAMES))` of the records `names` of `data_dir` (lead 0), cached in `cache`.

    The cache is a CSV file (`record` then one column per feature of
    :data:`ecgrhythm.features.rhythm.FEATURE_NAMES`); it is reused when it holds every record asked for with the
    same feature columns, and written again (atomically) otherwise.

    Raises:
        ecgrhythm.records.core.RecordError: a record cannot be read (the error names the file).
    """
    from ecgrhythm.features.rhythm import FEATURE_NAMES, rhythm_features
    from ecgrhythm.records.reading import read_record

    cache, names = Path(cache), list(names)
    if cache.is_file():
        with cache.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        if rows and rows[0] == ["record", *FEATURE_NAMES]:
            stored = {row[0]: [float(v) for v in row[1:]] for row in rows[1:]}
            if all(n in stored for n in names):
                return np.array([stored[n] for n in names], dtype=float)
        logger.info("%s: other records or features; computing them again", cache)
    table = np.empty((len(names), len(FEATURE_NAMES)))
    for i, name in enumerate(names):
        record = read_record(Path(data_dir) / name)
        table[i] = list(rhythm_features(record.signal[:, 0], record.fs).values())
        if (i + 1) % 1000 == 0:
            logger.info("rhythm features: %d of %d records", i + 1, len(names))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["record", *FEATURE_NAMES])
    writer.writerows([name, *(repr(float(v)) for v in row)] for name, row in zip(names, table))
    atomic_write_text(cache, out.getvalue())
    return table


def member_probabilities(run_dirs, *, partial: bool = False) -> tuple[list[str], np.ndarray, list[str], np.ndarray, list[str], list[np.ndarray]]:
    """The last-epoch out-of-fold probabilities of cross-validations run on the same folds, aligned record by record.

    Args:
        run_dirs: cross-validation folders (or runs kept by their reports, `docs/results/crossval/<recipe>/run`),
            every fold with its `oof-last.csv`.
        partial: keep the records of the folds finished in every run instead (some runs unfinished).

    Returns:
        `(names, folds, truth, targets, classes, probabilities)`: in the first member's order, `folds` and `targets`
        int arrays `(n,)`, `probabilities` one array `(n, n_classes)` per member.

    Raises:
        ValueError: the members were run on other folds, classes, records or labels, or (`partial`) no fold is
            finished in every run.
        FileNotFoundError: a run is unfinished (`partial`: has no finished fold).
    """
    run_dirs = [Path(d) for d in run_dirs]
    digests = {read_folds(d).digest for d in run_dirs}
    if len(digests) != 1:
        raise ValueError(f"{[str(d) for d in run_dirs]}: run on different folds (folds.json); stack cross-validations of the same folds")
    parts = [finished_oof(d, partial, LAST_OOF_FILE) for d in run_dirs]
    shared = set.intersection(*(set(part[0]) for part in parts))
    if partial and not shared:
        raise ValueError(f"{[str(d) for d in run_dirs]}: no fold is finished in every run")
    names, folds, truth, first, classes = parts[0]
    keep = [i for i, n in enumerate(names) if n in shared]
    names, folds, truth = [names[i] for i in keep], np.asarray(folds)[keep], [truth[i] for i in keep]
    probabilities = [first[keep]]
    for d, (other_names, _, other_truth, probs, other_classes) in zip(run_dirs[1:], parts[1:]):
        index = {n: i for i, n in enumerate(other_names)}
        if other_classes != classes or not partial and set(index) != set(parts[0][0]):
            raise ValueError(f"{d}: other classes or records than {run_dirs[0]}")
        order = [index[n] for n in names]
        if [other_truth[i] for i in order] != truth:
            raise ValueError(f"{d}: other true labels than {run_dirs[0]}")
        probabilities.append(probs[order])
    targets = np.array([classes.index(t) for t in truth])
    return names, folds, truth, targets, classes, probabilities


def stacked_oof(inputs: np.ndarray, targets: np.ndarray, folds: np.ndarray, n_classes: int, *, seed: int = 0, threads: int | None = 1) -> np.ndarray:
    """Out-of-fold probabilities `(n, n_classes)` of gradient boosting on `inputs`, fitted for each fold on the other folds' rows.

    Args:
        inputs: array `(n, n_inputs)`, NaN where a value is missing.
        targets: class index of each row `(n,)`.
        folds: fold of each row `(n,)`.
        n_classes: the number of classes (the columns returned).
        seed: the booster's random state (its early-stopping split).
        threads: OpenMP threads of the booster (`None`: as many as cores). One by default: on a 2-core machine shared
            with other work, two threads made a fit 30 times slower than one (they wait for each other).

    Returns:
        float array `(n, n_classes)`: each fold's rows predicted by a booster that never saw them (:data:`BOOSTING`,
        balanced class weights: probabilities under equal class priors).
    """
    out = np.zeros((len(targets), n_classes))
    for k in np.unique(folds):
        held = folds == k
        model = fit_booster(inputs[~held], targets[~held], seed=seed, threads=threads)
        out[np.ix_(held, model.classes_)] = model.predict_proba(inputs[held])
        logger.info("fold %d: %d boosting iterations on %d rows", k, model.n_iter_, int((~held).sum()))
    return out


def fit_booster(inputs: np.ndarray, targets: np.ndarray, *, seed: int = 0, threads: int | None = 1):
    """scikit-learn's `HistGradientBoostingClassifier` with :data:`BOOSTING`, fitted on `inputs` `(n, n_inputs)` and
    `targets` `(n,)` with `threads` OpenMP threads (see :func:`stacked_oof`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="openmp"):
        return HistGradientBoostingClassifier(**BOOSTING, random_state=seed).fit(inputs, targets)
