"""The stacked model: members aligned, the booster fitted strictly out of fold, the reference reproduced, the feature cache."""

import json
from pathlib import Path

import numpy as np
import pytest

from ecgrhythm.features.rhythm import FEATURE_NAMES
from ecgrhythm.lab.stacking import feature_table, member_probabilities, stacked_oof
from ecgrhythm.lab.stacking_report import MEMBERS, PAIR, evaluate

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "crossval"


@pytest.fixture(scope="module")
def members():
    return member_probabilities([RESULTS / name / "run" for name in (*MEMBERS, PAIR)])


def test_the_pair_is_its_members_averaged_record_by_record(members):
    names, folds, truth, targets, classes, probs = members
    assert len(names) == len(set(names)) == len(folds) == len(targets) == 7249
    assert classes == ["N", "A", "O", "~"] and [classes[t] for t in targets] == truth
    assert np.abs((probs[0] + probs[1]) / 2 - probs[2]).max() < 1e-5  # the CSV files keep 6 decimals


def test_the_reference_reproduces_the_pair_report(members):
    names, folds, truth, targets, classes, probs = members
    report = json.loads((RESULTS / PAIR / "report.json").read_text(encoding="utf-8"))
    result = evaluate(probs[2], targets, folds, classes)
    assert result["scores"] == pytest.approx([f["last_epoch_prior_score"] for f in report["folds"]], abs=1e-9)
    assert result["mean"] == pytest.approx(report["last_epoch_prior_mean"], abs=1e-9)


def test_the_booster_never_fits_on_the_rows_it_predicts(monkeypatch):
    from sklearn.ensemble import HistGradientBoostingClassifier

    fitted = []

    class Recording(HistGradientBoostingClassifier):
        def fit(self, X, y):
            fitted.append(set(X[:, 0].astype(int)))
            return super().fit(X, y)

    monkeypatch.setattr("sklearn.ensemble.HistGradientBoostingClassifier", Recording)
    rng = np.random.default_rng(0)
    n = 300
    folds = np.arange(n) % 3
    targets = rng.integers(0, 3, n)
    inputs = np.c_[np.arange(n), targets + rng.normal(0, 0.3, n)]  # column 0: the row's index
    out = stacked_oof(inputs, targets, folds, 4)
    assert len(fitted) == 3
    for k, rows in enumerate(fitted):
        assert rows == set(np.flatnonzero(folds != k))
    assert np.allclose(out.sum(axis=1), 1) and np.all(out[:, 3] == 0)  # a class absent from training gets 0
    assert (out.argmax(axis=1) == targets).mean() > 0.8  # the informative column is learnt


def test_features_are_cached_and_the_cache_reused(cinc2017_dir, tmp_path, monkeypatch):
    cache = tmp_path / "features.csv"
    table = feature_table(cinc2017_dir, ["A00004", "A00006"], cache)
    assert table.shape == (2, len(FEATURE_NAMES)) and cache.read_text(encoding="utf-8").startswith("record,n_beats,")

    def refuse(*args):
        raise AssertionError("computed again")

    monkeypatch.setattr("ecgrhythm.features.rhythm.rhythm_features", refuse)
    assert np.array_equal(feature_table(cinc2017_dir, ["A00006"], cache), table[1:], equal_nan=True)
    with pytest.raises(AssertionError, match="computed again"):
        feature_table(cinc2017_dir, ["A00007"], cache)


def test_the_readme_keeps_the_text_written_by_hand(tmp_path, monkeypatch):
    from ecgrhythm.lab import stacking_report

    rng = np.random.default_rng(0)
    folds = np.arange(200) % 2
    targets = rng.integers(0, 3, 200)
    probs = rng.dirichlet(np.ones(3), 200)
    classes = ["N", "A", "O"]
    reference = evaluate(probs, targets, folds, classes)
    other = evaluate(np.eye(3)[targets] * 0.9 + 0.1 / 3, targets, folds, classes)  # right every time
    summary = {"command": "cmd", "records": 200, "classes": classes, "boosting": {}, "results": {"networks (pair)": reference, "perfect": other}}
    stacking_report.paired(other, reference)
    assert other["scores"] == [1.0, 1.0] and other["difference"] > 0 and other["folds_higher"] == 2
    monkeypatch.setattr(stacking_report, "run", lambda *args: summary)
    (tmp_path / "README.md").write_text("old table" + stacking_report.NOTES + "Reading by hand.\n", encoding="utf-8")
    stacking_report.main(["--out", str(tmp_path)])
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "old table" not in text and text.endswith(stacking_report.NOTES + "Reading by hand.\n")
    assert "| perfect | 1.0000 | 1.0000 |" in text
    assert json.loads((tmp_path / "stacking.json").read_text(encoding="utf-8"))["records"] == 200
