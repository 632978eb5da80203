"""An ectopy guard chosen by cross-validation: when the networks say A, do the rhythm features say ectopy, not AF?

Two small guards, each moving a record the networks call A to their most probable other class (the A column set to 0):

- **rule**: `regular_nrmssd < t1` (a regular rhythm once the premature beats and their pauses are set aside) and
  `p_corr > t2` (P waves repeating before the QRS) and, if asked, `premature_share > 0` (a premature beat seen);
  `(t1, t2, premature)` from :data:`RULE_GRID`, or no guard at all;
- **logistic**: scikit-learn's `LogisticRegression` on :data:`LOGISTIC_FEATURES` (standardised), fitted on the
  records the networks call A, giving P(not AF | the networks say A); a record is moved above a threshold of
  :data:`LOGISTIC_THRESHOLDS`, or never;
- **loose**: the rule with :data:`LOOSE_RULE`, fixed by looking at the ectopy records (not chosen by cross-validation),
  to show what a guard that catches them costs on CinC 2017.

Both are chosen **strictly out of fold** on the 5 folds of the committed out-of-fold probabilities of the 128-unit
pair (`docs/results/crossval/seed1+augment-lstm128/run`, 0.8486 prior-corrected): for each outer fold `k`, the
choice (the rule's thresholds; the logistic's threshold, on its own inner out-of-fold predictions, then the model
refitted) is made on the other 4 folds only, their probabilities prior-corrected among themselves, by the pooled
CinC 2017 score there (ties: the fewer records moved), and applied to fold `k`, whose probabilities carry the
reference's cross-fitted prior correction. Scored per fold: the score, F1 and recall of A, the A calls moved.

Then, fitted on all 5 folds and **not refitted**, each guard is applied to the shipped model's calibrated
probabilities (`RhythmClassifier.load()`) on the ectopy sets of `scripts/ectopy_af.py`: the CinC 2021 sample's
records with premature beats (the lead `classify` takes), CinC 2017 N records with premature beats inserted
(:func:`ecgrhythm.lab.ectopy.insert_premature_beats`) and the CPSC 2021 sample (whole records; AF must stay A).
Run from the repository root (about 30 s on 2 cores, the features of CinC 2017 read from their cache)::

    python -m ecgrhythm.lab.ectopy_guard

It writes `docs/results/ectopy_guard.json` and its section of `docs/results/ectopy.md` (between :data:`BEGIN` and
:data:`END`, in the page's hand-written part, kept when `scripts/ectopy_af.py` writes the page again).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

import numpy as np

from ecgrhythm.lab.stacking import feature_table, member_probabilities
from ecgrhythm.lab.stacking_report import PAIR, paired
from ecgrhythm.scoring.crossval import cross_fitted_prior, fold_reports, score_of, t_interval
from ecgrhythm.scoring.metrics import evaluate_predictions
from ecgrhythm.utils.io import atomic_write_text

__all__ = ["rule_moves", "guarded", "choose_rule", "LogisticGuard", "cross_validate", "RULE_GRID", "LOGISTIC_FEATURES"]

logger = logging.getLogger(__name__)

COMMAND = "python -m ecgrhythm.lab.ectopy_guard"
RULE_GRID = tuple(
    itertools.product((0.06, 0.08, 0.10, 0.12, 0.15, 0.20), (0.3, 0.5, 0.6, 0.7, 0.8, 0.9), (False, True))
)  # (t1 on regular_nrmssd, t2 on p_corr, premature_share > 0 required)
# Not chosen by cross-validation: a loose rule set by looking at the 4 CinC 2021 ectopy records the networks call A
# (it moves 3 of them), scored on CinC 2017 the same way to show what a guard that catches them costs.
LOOSE_RULE = (0.25, 0.3, True)
LOGISTIC_FEATURES = ("regular_nrmssd", "p_corr", "premature_share", "cosen")
LOGISTIC_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
BEGIN, END = "<!-- ectopy guard: begin (python -m ecgrhythm.lab.ectopy_guard) -->", "<!-- ectopy guard: end -->"


def _column(features: dict, name: str) -> np.ndarray:
    return np.asarray(features[name], dtype=float)


def rule_moves(features: dict, says_a: np.ndarray, rule) -> np.ndarray:
    """Boolean `(n,)`: the records called A that the rule `(t1, t2, premature)` moves off A (`None`: no guard).

    Args:
        features: `{name: array (n,)}` with `regular_nrmssd`, `p_corr` and `premature_share` (NaN: not moved).
        says_a: boolean `(n,)`, the networks' label is A.
        rule: `(t1, t2, premature)` or `None`.
    """
    says_a = np.asarray(says_a, dtype=bool)
    if rule is None:
        return np.zeros_like(says_a)
    t1, t2, premature = rule
    with np.errstate(invalid="ignore"):
        moved = says_a & (_column(features, "regular_nrmssd") < t1) & (_column(features, "p_corr") > t2)
        return moved & (_column(features, "premature_share") > 0) if premature else moved


def guarded(probabilities: np.ndarray, moved: np.ndarray, a: int) -> np.ndarray:
    """A copy of `probabilities` `(n, n_classes)` with column `a` set to 0 on the `moved` rows: their argmax becomes
    the most probable other class."""
    out = np.array(probabilities, dtype=float, copy=True)
    out[np.asarray(moved, dtype=bool), a] = 0.0
    return out


def _pooled_score(probabilities, targets, classes) -> float:
    truth = [classes[t] for t in targets]
    return score_of(evaluate_predictions(truth, [classes[i] for i in np.argmax(probabilities, axis=1)], classes))


def _best(candidates, probabilities, targets, classes, a):
    """The candidate `(key, moved)` of the highest pooled score; ties: the fewer moved, then the first."""
    scored = [(-_pooled_score(guarded(probabilities, moved, a), targets, classes), int(moved.sum()), i) for i, (_, moved) in enumerate(candidates)]
    return candidates[min(scored)[2]][0]


def choose_rule(probabilities, features: dict, targets, classes) -> tuple | None:
    """The rule of :data:`RULE_GRID` (or `None`) of the highest pooled score of `probabilities` `(n, n_classes)`
    (already prior-corrected) on these rows."""
    a = classes.index("A")
    says_a = np.argmax(probabilities, axis=1) == a
    candidates = [(rule, rule_moves(features, says_a, rule)) for rule in (None, *RULE_GRID)]
    return _best(candidates, probabilities, targets, classes, a)


class LogisticGuard:
    """P(not AF | the networks say A) from :data:`LOGISTIC_FEATURES`; moves a record above `threshold_`."""

    def __init__(self, *, seed: int = 0):
        self.seed = seed

    def _x(self, features: dict) -> np.ndarray:
        return np.column_stack([_column(features, n) for n in LOGISTIC_FEATURES])

    def _fit_model(self, features, says_a, targets, a):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = self._x(features)
        rows = says_a & np.isfinite(x).all(axis=1)
        return make_pipeline(StandardScaler(), LogisticRegression(random_state=self.seed)).fit(x[rows], np.asarray(targets)[rows] != a)

    def _not_af(self, model, features) -> np.ndarray:
        x = self._x(features)
        out = np.zeros(len(x))
        ok = np.isfinite(x).all(axis=1)
        if ok.any():
            out[ok] = model.predict_proba(x[ok])[:, 1]
        return out

    def fit(self, probabilities, features: dict, targets, folds, classes) -> LogisticGuard:
        """Choose the threshold on inner out-of-fold P(not AF) (over `folds`), then fit the model on every row."""
        a, targets, folds = classes.index("A"), np.asarray(targets), np.asarray(folds)
        says_a = np.argmax(probabilities, axis=1) == a
        inner = np.zeros(len(targets))
        for j in np.unique(folds):
            held = folds == j
            model = self._fit_model(_rows(features, ~held), says_a[~held], targets[~held], a)
            inner[held] = self._not_af(model, _rows(features, held))
        candidates = [(None, np.zeros_like(says_a))] + [(t, says_a & (inner > t)) for t in LOGISTIC_THRESHOLDS]
        self.threshold_ = _best(candidates, probabilities, targets, classes, a)
        self.model_ = self._fit_model(features, says_a, targets, a)
        return self

    def moves(self, features: dict, says_a) -> np.ndarray:
        """Boolean `(n,)`: the records called A this guard moves off A."""
        says_a = np.asarray(says_a, dtype=bool)
        if self.threshold_ is None:
            return np.zeros_like(says_a)
        return says_a & (self._not_af(self.model_, features) > self.threshold_)


def _rows(features: dict, rows) -> dict:
    return {k: np.asarray(v)[rows] for k, v in features.items()}


def cross_validate(raw, features: dict, targets, folds, classes, kind: str) -> dict:
    """The guard `kind` (`"rule"` or `"logistic"`; `"loose"`: :data:`LOOSE_RULE`, fixed) chosen on 4 folds and scored on the fifth, for each fold.

    Args:
        raw: the networks' out-of-fold probabilities `(n, n_classes)`, before any prior correction.
        features: `{name: array (n,)}`, the rhythm features of the same rows.
        targets, folds: int arrays `(n,)`.
        classes: class names (with `A`).

    Returns:
        `{"choices", "moved", "moved_true_a", "probabilities"}`: each fold's choice and counts, and the guarded
        prior-corrected probabilities `(n, n_classes)` of every row, each by the guard chosen without its fold.
    """
    targets, folds = np.asarray(targets), np.asarray(folds)
    a = classes.index("A")
    reference = cross_fitted_prior(raw, targets, folds)
    out = reference.copy()
    choices, moved_n, moved_a = [], [], []
    for k in sorted(set(folds.tolist())):
        train, held = folds != k, folds == k
        inner = cross_fitted_prior(raw[train], targets[train], folds[train])  # corrected among the 4 folds only
        held_features, says_a = _rows(features, held), reference[held].argmax(axis=1) == a
        if kind == "loose":
            choice = LOOSE_RULE
            moved = rule_moves(held_features, says_a, choice)
        elif kind == "rule":
            choice = choose_rule(inner, _rows(features, train), targets[train], classes)
            moved = rule_moves(held_features, says_a, choice)
        else:
            guard = LogisticGuard().fit(inner, _rows(features, train), targets[train], folds[train], classes)
            choice, moved = guard.threshold_, guard.moves(held_features, says_a)
        out[held] = guarded(reference[held], moved, a)
        choices.append(choice)
        moved_n.append(int(moved.sum()))
        moved_a.append(int((moved & (targets[held] == a)).sum()))
    return {"choices": choices, "moved": moved_n, "moved_true_a": moved_a, "probabilities": out}


def fold_metrics(probabilities, targets, folds, classes) -> dict:
    """Each fold's score, F1 of A and recall of A (the probabilities already corrected), with means and intervals."""
    reports = [r for _, r in fold_reports(probabilities, targets, folds, classes)]
    out = {"scores": [score_of(r) for r in reports], "f1_a": [r.f1["A"] for r in reports], "recall_a": [r.recall["A"] for r in reports]}
    for key in list(out):
        out[f"{key}_mean"], out[f"{key}_ci95"] = t_interval(out[key])
    return out


def _differences(result: dict, reference: dict) -> None:
    paired(result, reference)  # the score: difference, p, folds higher
    for key in ("scores", "f1_a", "recall_a"):
        result[f"{key}_difference"], result[f"{key}_difference_ci95"] = t_interval(np.subtract(result[key], reference[key]))


def crossval(results: Path, data: Path, cache: Path) -> dict:
    """The reference and both guards, per fold, on CinC 2017 (see the module docstring); with the rows' data."""
    from ecgrhythm.features.rhythm import FEATURE_NAMES

    names, folds, _, targets, classes, probs = member_probabilities([results / PAIR / "run"])
    table = feature_table(data, names, cache)
    features = {n: table[:, i] for i, n in enumerate(FEATURE_NAMES)}
    raw = probs[0]
    reference = fold_metrics(cross_fitted_prior(raw, targets, folds), targets, folds, classes)
    out = {"records": len(names), "classes": classes, "reference": reference, "guards": {}}
    for kind in ("rule", "logistic", "loose"):
        cv = cross_validate(raw, features, targets, folds, classes, kind)
        result = fold_metrics(cv.pop("probabilities"), targets, folds, classes) | cv
        _differences(result, reference)
        out["guards"][kind] = result
        logger.info("%s: %s", kind, {k: result[k] for k in ("choices", "moved", "moved_true_a", "scores_difference")})
    a = classes.index("A")
    corrected = cross_fitted_prior(raw, targets, folds)  # all 5 folds: the guards applied to the ectopy sets
    says_a = corrected.argmax(axis=1) == a
    out["a_calls"] = int(says_a.sum())
    out["a_call_features"] = {  # 10th, 50th and 90th percentiles among the A calls, true A or not
        group: {n: np.nanpercentile(features[n][rows], [10, 50, 90]).tolist() for n in ("regular_nrmssd", "p_corr", "premature_share")}
        for group, rows in (("true A", says_a & (targets == a)), ("not A", says_a & (targets != a)))
    }
    out["final"] = {
        "rule": choose_rule(corrected, features, targets, classes),
        "logistic": LogisticGuard().fit(corrected, features, targets, folds, classes),
        "loose": LOOSE_RULE,
    }
    return out


def _apply(clf, records: list, guards: dict) -> dict:
    """The shipped model's labels of `records` (EcgRecord, the lead it takes) and each guard's, per record."""
    from ecgrhythm.features.rhythm import rhythm_features

    taken = [clf.choose_lead(r)[0] for r in records]
    prediction = clf.predict_records(taken)
    rows = [rhythm_features(r.signal[:, 0].astype(np.float64), r.fs) for r in taken]
    features = {n: np.array([row[n] for row in rows]) for n in rows[0]}
    a = list(prediction.classes).index("A")
    says_a = prediction.probabilities.argmax(axis=1) == a
    out = {"records": [r.record_name for r in records], "networks": list(prediction.labels)}
    out["features_of_a_calls"] = {  # why a guard kept or moved them
        records[i].record_name: {n: float(features[n][i]) for n in ("regular_nrmssd", "p_corr", "premature_share")} for i in np.flatnonzero(says_a)
    }
    for kind, guard in guards.items():
        moved = rule_moves(features, says_a, guard) if kind != "logistic" else guard.moves(features, says_a)
        out[kind] = [prediction.classes[i] for i in guarded(prediction.probabilities, moved, a).argmax(axis=1)]
    return out


def ectopy_sets(data: Path, n: int, guards: dict) -> dict:
    """Each guard, as fitted on all of CinC 2017, on the ectopy sets and the CPSC 2021 sample (module docstring)."""
    import ecgrhythm
    from ecgrhythm.lab.ectopy import ECTOPY, insert_premature_beats, scp_labels
    from ecgrhythm.preprocessing.rpeaks import detect_beats
    from ecgrhythm.records.core import EcgRecord
    from ecgrhythm.records.reference import read_reference

    clf = ecgrhythm.RhythmClassifier.load()
    headers = sorted((data / "cinc2021-sample").glob("*.hea"))
    out = {"CinC 2021 sample, premature beats": _apply(clf, [ecgrhythm.read_record(h) for h in headers if set(scp_labels(h)) & set(ECTOPY)], guards)}
    reference = read_reference(data / "cinc2017" / "REFERENCE.csv")
    originals = [ecgrhythm.read_record(data / "cinc2017" / k) for k in sorted(k for k, v in reference.items() if v == "N")[: 2 * n]]
    originals = [r for r in originals if r.n_samples == 30 * r.fs][:n]  # as scripts/ectopy_af.py takes them
    for prematurity in (0.25, 0.35):
        changed = []
        for seed, record in enumerate(originals):
            x = record.signal[:, 0].astype(np.float64)
            y, _ = insert_premature_beats(x, record.fs, detect_beats(x, record.fs), prematurity=prematurity, spacing=(4, 8), seed=seed)
            changed.append(EcgRecord(y[:, None].astype(np.float32), record.fs, record.sig_name, f"{record.record_name}-ectopy"))
        out[f"CinC 2017 N, premature beats inserted ({prematurity:.0%})"] = _apply(clf, changed, guards)
    cpsc = [ecgrhythm.read_record(h) for h in sorted((data / "cpsc2021-sample").glob("*.hea"))]
    result = _apply(clf, cpsc, guards)
    result["class"] = [next((c.strip("# ").strip() for c in r.comments if "fibrillation" in c), "") for r in cpsc]
    out["CPSC 2021 sample"] = result
    return out


def _ci(mean: float, half: float, digits: int = 4) -> str:
    return f"{mean:+.{digits}f} ± {half:.{digits}f}"


def markdown(result: dict) -> str:
    """The section of `docs/results/ectopy.md` (between :data:`BEGIN` and :data:`END`)."""
    cv, ref = result["crossval"], result["crossval"]["reference"]
    lines = [
        BEGIN,
        "",
        "## An ectopy guard chosen by cross-validation",
        "",
        "When the networks say A, move the record to their most probable other class if its rhythm features say ectopy: "
        "`rule`: `regular_nrmssd < t1` and `p_corr > t2` (and, if chosen, a premature beat seen); `logistic`: P(not AF | "
        f"networks say A) from {', '.join(f'`{n}`' for n in LOGISTIC_FEATURES)} above a threshold. Chosen on 4 folds, scored "
        f"on the fifth, on the out-of-fold probabilities of the 128-unit pair ({cv['records']:,} CinC 2017 records, "
        f"{cv['a_calls']} called A); see `ecgrhythm.lab.ectopy_guard`'s docstring. Command (from the repository root; on "
        f"{result['machine']}):",
        "",
        "```",
        result["command"],
        "```",
        "",
        "| guard | score per fold | score, mean ± 95 % CI | score difference (p, folds higher) | F1 A difference | A recall difference | "
        "A calls moved per fold (true A among them) | choice per fold |",
        "|---|---|---|---|---|---|---|---|",
        f"| none (reference) | {' '.join(f'{s:.4f}' for s in ref['scores'])} | {ref['scores_mean']:.4f} ± {ref['scores_ci95']:.4f} | | | "
        f"(A recall {ref['recall_a_mean']:.3f}, F1 A {ref['f1_a_mean']:.3f}) | | |",
    ]
    for kind, g in cv["guards"].items():
        p = "" if g["p_value"] is None else f", p {g['p_value']:.2f}"
        moved = ", ".join(f"{m} ({t})" for m, t in zip(g["moved"], g["moved_true_a"]))
        lines.append(
            f"| {kind} | {' '.join(f'{s:.4f}' for s in g['scores'])} | {g['scores_mean']:.4f} ± {g['scores_ci95']:.4f} | "
            f"{g['scores_difference']:+.4f}{p}, {g['folds_higher']} of {len(g['scores'])} | {_ci(g['f1_a_difference'], g['f1_a_difference_ci95'])} | "
            f"{_ci(g['recall_a_difference'], g['recall_a_difference_ci95'])} | {moved} | {'; '.join(str(c) for c in g['choices'])} |"
        )
    lines += ["", "The features of the records called A out of fold (10th, 50th and 90th percentiles):", ""]
    lines += ["| A calls | " + " | ".join(f"`{n}`" for n in next(iter(cv["a_call_features"].values()))) + " |", "|---|---|---|---|"]
    for group, values in cv["a_call_features"].items():
        lines.append(f"| {group} | " + " | ".join(" / ".join(f"{v:.2f}" for v in q) for q in values.values()) + " |")
    final = result["final"]
    lines += [
        "",
        f"Fitted on all 5 folds: rule {final['rule']}, logistic threshold {final['logistic']}; loose rule {final['loose']} "
        "(`LOOSE_RULE`: set by looking at the CinC 2021 records, its CinC 2017 row above is what it costs). Applied, without refitting, "
        "to the shipped model's labels on the ectopy sets (the lead `classify` takes; whole CPSC 2021 records):",
        "",
        "| set | records | called A by the networks | after the rule | after the logistic guard | after the loose rule (not chosen by CV) |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in result["sets"].items():
        groups = [(name, list(range(len(s["records"]))))]
        if "class" in s:
            groups = [(f"{name}, {c}", [i for i, x in enumerate(s["class"]) if x == c]) for c in sorted(set(s["class"]))]
        for label, idx in groups:
            count = {k: sum(s[k][i] == "A" for i in idx) for k in ("networks", "rule", "logistic", "loose")}
            lines.append(f"| {label} | {len(idx)} | {count['networks']} | {count['rule']} | {count['logistic']} | {count['loose']} |")
    calls = result["sets"]["CinC 2021 sample, premature beats"]["features_of_a_calls"]
    lines += ["", "The CinC 2021 records with premature beats the networks call A (all features in `ectopy_guard.json`):", ""]
    lines += [f"- {name}: " + ", ".join(f"`{k}` {v:.2f}" for k, v in f.items()) for name, f in calls.items()]
    return "\n".join(lines + ["", END])


def write_section(page: Path, section: str) -> None:
    """Put `section` in `page` in place of the text between :data:`BEGIN` and :data:`END`, or at its end."""
    text = page.read_text(encoding="utf-8") if page.is_file() else ""
    head, found, rest = text.partition(BEGIN)
    tail = rest.partition(END)[2] if found else ""
    atomic_write_text(page, head.rstrip("\n") + "\n\n" + section + (tail if tail.strip() else "\n"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=Path("docs/results/crossval"), help="the cross-validation results (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=Path("runs/features/cinc2017-rhythm.csv"), help="the features' cache (default: %(default)s)")
    parser.add_argument("--n", type=int, default=200, help="CinC 2017 N records to insert premature beats in (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("docs/results"), help="where ectopy_guard.json and ectopy.md are (default: %(default)s)")
    parser.add_argument("--machine", default="this 2-core machine", help="the machine's words on the page")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cv = crossval(args.results, args.data / "cinc2017", args.cache)
    guards = cv.pop("final")
    sets = ectopy_sets(args.data, args.n, guards)
    result = {
        "command": COMMAND + (f" --n {args.n}" if args.n != 200 else ""),
        "machine": args.machine,
        "crossval": cv,
        "final": {"rule": guards["rule"], "logistic": guards["logistic"].threshold_, "loose": LOOSE_RULE},
        "sets": sets,
    }
    atomic_write_text(args.out / "ectopy_guard.json", json.dumps(result, indent=2, default=float) + "\n")
    write_section(args.out / "ectopy.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
