"""`ecgrhythm calibrate`: write a temperature, fitted on a cross-validation's out-of-fold probabilities, into a model folder."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "calibrate",
        help="fit temperature scaling on a cross-validation's out-of-fold probabilities and write it into a model folder",
        description="Fit the temperature T that minimises the negative log-likelihood of softmax(log p / T) on OUTPUT/oof.csv of a finished "
        "'ecgrhythm crossval', and write it into MODEL_DIR/config.json (\"temperature\"; checksums kept consistent). The model's "
        "probabilities are then scaled by it; 'ecgrhythm evaluate' shows the ECE.",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="the model folder to calibrate (trained with the cross-validated recipe)")
    p.add_argument("--crossval", required=True, metavar="DIR", help="the cross-validation folder whose oof.csv the temperature is fitted on")
    p.add_argument("--per-class", action="store_true", help="one temperature per class instead of one for all")


def run(args):
    from pathlib import Path

    import numpy as np

    from ..crossval import OOF_FILE, read_oof
    from ..crossval_report import cross_fitted_temperature
    from ..metrics import apply_temperature, fit_temperature, top_class_calibration
    from ..saving import load_model_dir, set_temperature
    from . import _common as common

    oof = Path(args.crossval) / OOF_FILE
    if not oof.is_file():
        raise common.UsageError(f"{oof} not found: pass the folder of a finished 'ecgrhythm crossval' (--crossval DIR)")
    _, folds, truth, probs, classes = read_oof(oof)
    _, config = load_model_dir(args.model)
    if list(config["classes"]) != classes:
        raise common.UsageError(
            f"{args.model} has the classes {config['classes']}, {oof} has {classes}: calibrate a model of the cross-validated recipe"
        )
    targets = np.array([classes.index(t) for t in truth])
    temperature = fit_temperature(probs, targets, per_class=args.per_class)
    before = top_class_calibration(probs, targets).ece
    after = top_class_calibration(apply_temperature(probs, temperature), targets).ece
    cross = top_class_calibration(cross_fitted_temperature(probs, targets, folds), targets).ece if not args.per_class else None
    set_temperature(args.model, temperature)
    shown = np.round(np.atleast_1d(temperature), 4).tolist()
    print(
        f"temperature {shown[0] if temperature.ndim == 0 else shown} written to {Path(args.model) / 'config.json'}; out-of-fold ECE "
        f"{before:.4f} before, {after:.4f} after" + (f" ({cross:.4f} cross-fitted)" if cross is not None else "")
    )
    return 0
