"""What a network adds to an ensemble, from the cross-validations' committed out-of-fold probabilities."""

import json
import shutil

import numpy as np
import pytest

from ecgrhythm.lab.crossval_report import DEFAULT_RESULTS
from ecgrhythm.lab.member_gain import REFERENCE, gains

BANDPASS = DEFAULT_RESULTS / "seed3-augment-bandpass" / "run"


def test_the_reference_scores_as_its_report_and_a_network_averaged_in_moves_it():
    report = json.loads((DEFAULT_RESULTS / "seed1+augment-lstm128" / "report.json").read_text())
    summary = gains(REFERENCE, [BANDPASS])
    reference, alone, both = summary["results"].values()
    assert summary["folds"] == [0, 1, 2, 3, 4] and summary["records"] == 7249
    assert reference["mean"] == pytest.approx(report["last_epoch_prior_mean"], abs=1e-9)
    bandpass = json.loads((DEFAULT_RESULTS / "seed3-augment-bandpass" / "report.json").read_text())
    assert alone["mean"] == pytest.approx(bandpass["last_epoch_prior_mean"], abs=1e-9)
    assert both["scores"] != reference["scores"] and both["difference"] == pytest.approx(np.mean(both["scores"]) - reference["mean"])


def test_only_the_folds_finished_in_every_run_are_scored(tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(BANDPASS, partial)
    for k in (1, 2, 3, 4):
        (partial / f"fold{k}" / "oof-last.csv").unlink()
    summary = gains(REFERENCE, [partial])
    full = gains(REFERENCE, [BANDPASS])
    assert summary["folds"] == [0] and 1400 < summary["records"] < 1500
    assert summary["results"]["partial alone"]["scores"][0] == pytest.approx(full["results"]["seed3-augment-bandpass alone"]["scores"][0], abs=0.002)
