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
    from ecgrhythm.evaluation.calibration import open_model

    for flag, given in (("--partial", args.partial), ("--last-epoch", args.last_epoch)):
        if given and not args.crossval:
            raise common.UsageError(f"{flag} applies to --crossval only")
    held = _held_out(args)
    common.check_model(args.model, flag="MODEL_DIR")  # before the networks load
    model = open_model(args.model)
    if args.leave_out_validation:
        held, left_out = model.leave_out_validation(held)
        print(f"left out {left_out} rows of {args.model}'s validation records; fitting on {len(held.names)}")
    plan = model.prepare(held, per_class=args.per_class, per_predicted_class=args.per_predicted_class, prior_correction=args.prior_correction)
    if args.prior_correction:
        print(_prior_scores(*plan.prior_scores()))
    result = plan.fit()
    cross = "one fold: no cross-fitted ECE" if np.isnan(result.ece_cross_fitted) else f"{result.ece_cross_fitted:.4f} cross-fitted"
    temperature = result.temperature
    shown = np.round(np.atleast_1d(temperature), 4).tolist()
    kind = " (by predicted class)" if args.per_predicted_class else ""
    with_prior = f"class prior {np.round(result.class_prior, 4).tolist()} and " if args.prior_correction else ""
    print(
        f"{with_prior}temperature{kind} {shown[0] if temperature.ndim == 0 else shown} written to {Path(args.model) / 'config.json'}; "
        f"held-out ECE {result.ece_before:.4f} before, {result.ece_after:.4f} after ({cross})"
    )
    return 0


def _held_out(args):
    """The probabilities `--crossval` or `--predictions` names."""
    from pathlib import Path

    import ecgrhythm.cli.common as common
    from ecgrhythm.evaluation.calibration import HeldOut, read_predictions
    from ecgrhythm.training.oof import LAST_OOF_FILE, OOF_FILE, finished_oof

    if not args.crossval:
        try:
            return read_predictions(args.predictions)
        except ValueError as exc:
            raise common.UsageError(f"--predictions {exc}") from None
    oof = Path(args.crossval) / (LAST_OOF_FILE if args.last_epoch else OOF_FILE)
    try:
        names, folds, truth, probs, classes = finished_oof(Path(args.crossval), args.partial, oof.name)
    except FileNotFoundError as exc:
        raise common.UsageError(f"{exc}" + ("" if args.partial else "; or fit on the finished folds with calibrate's --partial")) from None
    return HeldOut(oof, names, folds, truth, probs, classes, origin=args.crossval)


def _prior_scores(before, after) -> str:
    """Per fold and in mean, the score of the argmax labels before and after the cross-fitted prior correction."""
    import numpy as np

    per_fold = ", ".join(f"{a:.4f} -> {b:.4f}" for a, b in zip(before, after))
    return (
        "score by fold before -> after the prior correction (cross-fitted: each fold's prior from the other folds): "
        f"{per_fold}; mean {np.mean(before):.4f} -> {np.mean(after):.4f}"
    )
