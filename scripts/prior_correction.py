"""Cross-validated effect of the prior correction (`ecgrhythm calibrate --prior-correction`) on recipes' out-of-fold probabilities.

A network trained with balanced class weights (`train`'s default) estimates each class's probability as if the
classes were equally frequent. Multiplying by the training records' class frequencies and renormalising gives
the probabilities under the real frequencies (`ecgrhythm.scoring.calibration.apply_class_prior`). This script scores, for
each out-of-fold file given, every fold's argmax labels before and after that correction, each fold corrected by
the frequencies of the *other* folds' records (so no fold's labels decide its own correction; a file of one fold
is corrected by its own, and says so), with the mean and
95 % interval over the folds, the paired difference (t-test) and the pooled F1 of each class. Then the pooled
top-class ECE and the log-loss (mean negative log-probability of the true class): as it is, after the correction
alone, and after the correction and one temperature per predicted class (both cross-fitted), the calibration
`calibrate --prior-correction --per-predicted-class` writes. Seconds on a CPU. Example:

    .venv/bin/python scripts/prior_correction.py runs/crossval/seed1+augment2-last runs/crossval/seed1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import ttest_rel

from ecgrhythm.scoring.calibration import top_class_calibration
from ecgrhythm.scoring.crossval import cross_fitted_prior, cross_fitted_temperature, prior_correction_scores, t_interval
from ecgrhythm.scoring.metrics import evaluate_predictions
from ecgrhythm.training.oof import OOF_FILE, read_oof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sources",
        nargs="+",
        type=Path,
        help="folders holding an oof.csv (a cross-validation's, or scripts/last_epoch_ensemble.py --oof's), or out-of-fold CSV files "
        "(last_epoch_ensemble.py --oof DIR --partial's DIR/oof-partial.csv)",
    )
    args = parser.parse_args()
    for source in args.sources:
        path = source if source.is_file() else source / OOF_FILE
        if not path.is_file():
            raise SystemExit(f"{source}: neither an out-of-fold CSV file nor a folder holding {OOF_FILE}")
        _, folds, truth, probs, classes = read_oof(path)
        targets = np.array([classes.index(t) for t in truth])
        corrected = cross_fitted_prior(probs, targets, folds)
        before, after = prior_correction_scores(probs, targets, folds, classes)
        diff = np.subtract(after, before)
        p = ttest_rel(after, before).pvalue if len(before) > 1 else float("nan")
        own = ", one fold: corrected by its own frequencies, not cross-fitted" if len(before) < 2 else ""
        print(f"{source.parent.name if source.is_file() else source.name} ({len(targets)} records, {len(before)} folds{own})")
        print("  before: " + ", ".join(f"{s:.4f}" for s in before) + " | mean {:.4f} ± {:.4f}".format(*t_interval(before)))
        print("  after:  " + ", ".join(f"{s:.4f}" for s in after) + " | mean {:.4f} ± {:.4f}".format(*t_interval(after)))
        print(f"  paired difference {diff.mean():+.4f} (p {p:.3f}), higher on {int((diff > 0).sum())} of {len(diff)} folds")
        pooled = [evaluate_predictions(truth, [classes[i] for i in q.argmax(axis=1)], classes) for q in (probs, corrected)]
        print("  pooled F1 before -> after: " + ", ".join(f"{c} {pooled[0].f1[c]:.3f} -> {pooled[1].f1[c]:.3f}" for c in classes))
        if len(before) < 2:  # no other fold to fit the temperatures on
            print(
                f"  top-class ECE: {top_class_calibration(probs, targets).ece:.4f} as it is, {top_class_calibration(corrected, targets).ece:.4f} after the correction"
            )
            continue
        both = cross_fitted_temperature(probs, targets, folds, per_predicted_class=True, class_prior=True)
        eces = [top_class_calibration(q, targets).ece for q in (probs, corrected, both)]
        losses = [-np.log(np.clip(q[np.arange(len(targets)), targets], 1e-12, None)).mean() for q in (probs, corrected, both)]
        print("  top-class ECE: {:.4f} as it is, {:.4f} after the correction, {:.4f} after it and a temperature per predicted class".format(*eces))
        print("  log-loss: {:.4f} as it is, {:.4f} after the correction, {:.4f} after it and the temperatures".format(*losses))


if __name__ == "__main__":
    main()
