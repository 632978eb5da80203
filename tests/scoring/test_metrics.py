import numpy as np
import pytest
from hand_made import CLASSES, HAND_CM
from hand_made import labels_from as _labels_from

from ecgrhythm.scoring.metrics import (
    cinc2017_score,
    confusion_matrix,
    evaluate_predictions,
    f1_per_class,
    multilabel_report,
    score_probabilities,
    tune_thresholds,
)


def test_score_matches_a_hand_computed_confusion_matrix():
    # Predicted counts (column sums): N 8, A 4, O 6, ~ 2.  F1 = 2 TP / (true count + predicted count):
    #   N: 2*5 / (7+8) = 10/15 = 2/3
    #   A: 2*3 / (4+4) = 6/8   = 3/4
    #   O: 2*4 / (7+6) = 8/13
    #   ~: 2*1 / (2+2) = 2/4   = 1/2   (reported, not scored)
    # CinC 2017 score = (2/3 + 3/4 + 8/13) / 3 = (104 + 117 + 96) / 156 / 3 = 317/468 = 0.67735...
    y_true, y_pred = _labels_from(HAND_CM)
    report = evaluate_predictions(y_true, y_pred, CLASSES)
    np.testing.assert_array_equal(report.confusion, HAND_CM)
    assert report.score == pytest.approx(317 / 468)
    assert report.f1 == pytest.approx({"N": 2 / 3, "A": 3 / 4, "O": 8 / 13, "~": 1 / 2})
    assert report.precision["N"] == pytest.approx(5 / 8) and report.recall["O"] == pytest.approx(4 / 7)
    assert report.true_counts == {"N": 7, "A": 4, "O": 7, "~": 2}
    assert report.predicted_counts == {"N": 8, "A": 4, "O": 6, "~": 2}
    assert report.n_records == 20 and report.accuracy == pytest.approx(13 / 20)
    assert report.macro_f1 == pytest.approx((2 / 3 + 3 / 4 + 8 / 13 + 1 / 2) / 4)
    # The helpers the training loop uses agree with the report.
    cm = confusion_matrix(y_true, y_pred, CLASSES)
    assert cinc2017_score(cm, CLASSES) == pytest.approx(317 / 468)
    assert f1_per_class(cm, CLASSES) == pytest.approx(report.f1)


def test_absent_class_scores_zero_and_score_needs_the_cinc_classes():
    report = evaluate_predictions(["N", "N", "O"], ["N", "O", "O"], CLASSES)
    assert report.f1["A"] == 0.0 and report.f1["~"] == 0.0
    # N: 2*1/(2+1) = 2/3; A: 0; O: 2*1/(1+2) = 2/3 -> (2/3 + 0 + 2/3) / 3 = 4/9
    assert report.score == pytest.approx(4 / 9)
    assert evaluate_predictions(["x", "y"], ["x", "x"], ["x", "y"]).score is None


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [(["N", "A"], ["N"], "Mismatch"), ([], [], "No records"), (["N", "B"], ["N", "N"], r"\['B'\]")],
)
def test_bad_label_lists_are_refused(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        evaluate_predictions(y_true, y_pred, CLASSES)


def test_multilabel_scores_and_tuned_thresholds_by_hand():
    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    probs = np.array([[0.9, 0.2, 0.1], [0.6, 0.7, 0.2], [0.3, 0.4, 0.3], [0.1, 0.8, 0.6]])
    # At 0.5: class a predicted in records 0, 1 -> TP 2, F1 = 4/(2+2) = 1;
    #         class b predicted in 1, 3 -> TP 1, F1 = 2/(2+2) = 1/2; class c: none true, 1 predicted -> F1 0.
    report = multilabel_report(targets, probs, ["a", "b", "c"], 0.5)
    assert report.f1 == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0}) and report.macro_f1 == pytest.approx(0.5)
    assert report.true_counts == {"a": 2, "b": 2, "c": 0} and report.predicted_counts == {"a": 2, "b": 2, "c": 1}
    # Best F1 of b: thresholds in (0.2, 0.4] predict records 1, 2, 3 -> TP 2, F1 = 4/(2+3) = 0.8 (0.2 or less: 4/6;
    # (0.4, 0.7]: 2/4); the lowest such grid value is 0.25. For a: (0.3, 0.6] gives F1 1 -> 0.35. c has no positives -> 0.5.
    np.testing.assert_allclose(tune_thresholds(targets, probs), [0.35, 0.25, 0.5])
    tuned = multilabel_report(targets, probs, ["a", "b", "c"], tune_thresholds(targets, probs))
    assert tuned.f1["b"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="same shape"):
        tune_thresholds(targets, probs[:, :2])


def test_score_probabilities_scores_the_arg_max_class():
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.2, 0.6]])
    score, f1, extras = score_probabilities(np.array([0, 1, 2, 3]), probs, CLASSES)
    # predicted N, A, A, ~: F1 N 1, A 2/3, O 0 -> (1 + 2/3 + 0) / 3
    assert score == pytest.approx(5 / 9) and f1["~"] == 1.0
    assert extras["val_confusion"][2] == [0, 1, 0, 0]


def test_evaluate_predictions_with_probabilities_reports_the_ece():
    probs = np.array([[0.9, 0.05, 0.03, 0.02], [0.2, 0.75, 0.03, 0.02], [0.1, 0.1, 0.7, 0.1], [0.65, 0.2, 0.1, 0.05]])
    report = evaluate_predictions(["N", "N", "O", "~"], ["N", "A", "O", "N"], CLASSES, probabilities=probs)
    assert report.ece == pytest.approx((0.1 + 0.75 + 0.3 + 0.65) / 4)
    assert report.to_dict()["ece"] == report.ece and report.to_dict()["calibration"]["count"][13] == 1
    assert evaluate_predictions(["N"], ["N"], CLASSES).ece is None
    with pytest.raises(ValueError, match=r"expected shape \(4, 4\)"):
        evaluate_predictions(["N", "N", "O", "~"], ["N", "A", "O", "N"], CLASSES, probabilities=probs[:, :3])
