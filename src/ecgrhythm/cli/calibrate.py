"""`ecgrhythm calibrate`: write a calibration into a model folder, fitted on probabilities of records it never trained on.

Those are a cross-validation's out-of-fold probabilities (`--crossval`: its folds' `oof.csv`, or with
`--last-epoch` their `oof-last.csv`, those of each fold network's last epoch), or the `predictions.csv` that
`ecgrhythm evaluate` writes for the records a model held out (`--predictions`). With `--prior-correction`
the probabilities are first multiplied by the class frequencies of those records (the prior that balanced
class weights took out of the training), which changes labels: the command prints the score before and after;
the temperature is then fitted on the corrected probabilities.
"""

from __future__ import annotations


def add_parser(sub):
    from ecgrhythm.scoring.calibration import MIN_PREDICTED_ROWS

    p = sub.add_parser(
        "calibrate",
        help="fit temperature scaling (and optionally a class prior) on held-out probabilities and write it into a model folder",
        description="Fit the temperature T that minimises the negative log-likelihood of softmax(log p / T) on the out-of-fold probabilities of a "
        "finished 'ecgrhythm crossval' (its folds' oof.csv, or with --last-epoch their oof-last.csv), or on the predictions.csv 'ecgrhythm evaluate' wrote for records the model never trained on, and write it "
        'into MODEL_DIR/config.json ("temperature"; checksums kept consistent). The model\'s probabilities are then scaled by it; '
        "'ecgrhythm evaluate' shows the ECE. The cross-fitted ECE (T fitted on the other folds of the records) is the honest estimate. "
        "--per-predicted-class fits one T per class on the records predicted as that class and scales each record by that of its "
        "predicted class, which keeps every label (and so the score) while correcting under- and over-confident classes apart. "
        "--prior-correction first multiplies the probabilities by the records' class frequencies, which does change labels.",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="the model folder to calibrate (trained with the cross-validated recipe)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--crossval", metavar="DIR", help="the cross-validation folder whose folds' oof.csv (or oof-last.csv) the temperature is fitted on"
    )
    source.add_argument(
        "--predictions",
        metavar="FILE.csv",
        help="an 'ecgrhythm evaluate' predictions.csv of records the model never trained on (its held-out score: no --all-records)",
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="with --crossval: fit on the folds finished so far (their fold*/oof.csv, or oof-last.csv) while others are unfinished",
    )
    p.add_argument(
        "--last-epoch",
        action="store_true",
        help="with --crossval: fit on the probabilities of each fold network's last epoch (oof-last.csv), for a model trained on "
        "every record and kept at its last epoch (train --val-fraction 0), instead of those of the kept epochs (oof.csv)",
    )
    p.add_argument(
        "--leave-out-validation",
        action="store_true",
        help="leave out the rows of the records MODEL_DIR validates on (its split.json), for example when the model is one fold's "
        "networks: 'ecgrhythm evaluate' then measures the calibration on records the temperature was not fitted on",
    )
    p.add_argument(
        "--prior-correction",
        action="store_true",
        help="multiply the probabilities by the class frequencies of the records fitted on, before the temperature (written as "
        '"class_prior"): the posterior under the training prior for networks trained with balanced class weights (the default), '
        "whose outputs assume equal class priors. It moves unsure records to common classes; the cross-fitted score before and "
        "after is printed",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--per-class", action="store_true", help="one temperature per class (each column scaled by its own) instead of one for all")
    mode.add_argument(
        "--per-predicted-class",
        action="store_true",
        help="one temperature per predicted class: each record scaled by that of its argmax, which keeps every label "
        f"(T = 1 for a class predicted fewer than {MIN_PREDICTED_ROWS} times)",
    )


def run(args):
    from pathlib import Path

    import numpy as np

    import ecgrhythm.cli.common as common
    from ecgrhythm.networks.saving import load_model_dir, load_split, set_calibration
    from ecgrhythm.scoring.calibration import apply_class_prior, apply_temperature, class_frequencies, fit_temperature, top_class_calibration
    from ecgrhythm.scoring.crossval import cross_fitted_ece
    from ecgrhythm.training.oof import LAST_OOF_FILE, OOF_FILE, finished_oof

    for flag, given in (("--partial", args.partial), ("--last-epoch", args.last_epoch)):
        if given and not args.crossval:
            raise common.UsageError(f"{flag} applies to --crossval only")
    if args.crossval:
        oof = Path(args.crossval) / (LAST_OOF_FILE if args.last_epoch else OOF_FILE)
        try:
            names, folds, truth, probs, classes = finished_oof(Path(args.crossval), args.partial, oof.name)
        except FileNotFoundError as exc:
            raise common.UsageError(f"{exc}" + ("" if args.partial else "; or fit on the finished folds with calibrate's --partial")) from None
        except ValueError as exc:
            raise common.UsageError(str(exc)) from None
    else:
        oof = Path(args.predictions)
        names, truth, probs, classes = _read_predictions(oof)
        folds = np.random.default_rng(0).permutation(len(truth)) % CROSS_FIT_FOLDS  # seeded folds for the cross-fitted ECE
    _, config = load_model_dir(args.model)
    if args.leave_out_validation:
        validation = set((load_split(args.model) or {"val": []})["val"])
        keep = np.array([n not in validation for n in names])
        if not keep.any():
            raise common.UsageError(f"every row of {args.crossval or oof} is a validation record of {args.model}: nothing is left to fit on")
        print(f"left out {int((~keep).sum())} rows of {args.model}'s validation records; fitting on {int(keep.sum())}")
        folds, truth, probs = folds[keep], [t for t, k in zip(truth, keep) if k], probs[keep]
    if list(config["classes"]) != classes:
        raise common.UsageError(
            f"{args.model} has the classes {config['classes']}, {oof} has {classes}: calibrate a model of the cross-validated recipe"
        )
    targets = np.array([classes.index(t) for t in truth])
    mode = {"per_class": args.per_class, "per_predicted_class": args.per_predicted_class}
    before = top_class_calibration(probs, targets).ece
    raw, prior = probs, None
    if args.prior_correction:
        _check_balanced(args.model, config)
        try:
            prior = class_frequencies(targets, len(classes))
        except ValueError as exc:
            raise common.UsageError(f"--prior-correction: {oof}: {exc}") from None
        print(_prior_scores(probs, targets, folds, classes))
        probs = apply_class_prior(probs, prior)
    temperature = fit_temperature(probs, targets, **mode)
    after = top_class_calibration(apply_temperature(probs, temperature, per_predicted_class=args.per_predicted_class), targets).ece
    cross = cross_fitted_ece(raw, targets, folds, **mode, class_prior=args.prior_correction)
    cross = "one fold: no cross-fitted ECE" if np.isnan(cross) else f"{cross:.4f} cross-fitted"
    set_calibration(args.model, temperature, per_predicted_class=args.per_predicted_class, class_prior=prior)
    shown = np.round(np.atleast_1d(temperature), 4).tolist()
    kind = " (by predicted class)" if args.per_predicted_class else ""
    with_prior = f"class prior {np.round(prior, 4).tolist()} and " if args.prior_correction else ""
    print(
        f"{with_prior}temperature{kind} {shown[0] if temperature.ndim == 0 else shown} written to {Path(args.model) / 'config.json'}; "
        f"held-out ECE {before:.4f} before, {after:.4f} after ({cross})"
    )
    return 0


CROSS_FIT_FOLDS = 5


def _check_balanced(model, config):
    """Refuse --prior-correction for a model whose networks were trained without balanced class weights."""
    import ecgrhythm.cli.common as common

    metadata = config.get("metadata", {})
    members = [m.get("metadata", {}) for m in metadata.get("ensemble_of", [])] or [metadata]
    weightings = {m.get("train_config", {}).get("class_weighting") for m in members}
    if weightings - {"balanced", None}:
        raise common.UsageError(
            f"--prior-correction applies to networks trained with balanced class weights; {model} has networks trained with "
            f"class_weighting {sorted(w for w in weightings if w)}, whose outputs already hold the training prior"
        )


def _prior_scores(probs, targets, folds, classes) -> str:
    """Per fold and in mean, the score of the argmax labels before and after the cross-fitted prior correction."""
    import numpy as np

    from ecgrhythm.scoring.crossval import prior_correction_scores

    before, after = prior_correction_scores(probs, targets, folds, classes)
    per_fold = ", ".join(f"{a:.4f} -> {b:.4f}" for a, b in zip(before, after))
    return (
        "score by fold before -> after the prior correction (cross-fitted: each fold's prior from the other folds): "
        f"{per_fold}; mean {np.mean(before):.4f} -> {np.mean(after):.4f}"
    )


def _read_predictions(path):
    """`(records, true labels, probabilities (n, n_classes), classes)` of an `ecgrhythm evaluate` predictions.csv."""
    import csv

    import numpy as np

    import ecgrhythm.cli.common as common

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise common.UsageError(f"--predictions {path}: cannot read it ({exc.strerror or exc})") from None
    header = list(rows[0]) if rows else []
    if "true_label" not in header:
        raise common.UsageError(
            f"--predictions {path}: not a predictions.csv of 'ecgrhythm evaluate' (columns record,label,true_label,[lead,]<classes>)"
        )
    classes = header[header.index("lead" if "lead" in header else "true_label") + 1 :]
    try:
        probs = np.array([[float(r[c]) for c in classes] for r in rows])
    except (TypeError, ValueError):
        raise common.UsageError(f"--predictions {path}: a probability is not a number") from None
    return [r["record"] for r in rows], [r["true_label"] for r in rows], probs, classes
