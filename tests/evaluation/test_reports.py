import json

import numpy as np
import pytest
from hand_made import CLASSES, HAND_CM
from hand_made import labels_from as _labels_from

from ecgrhythm.evaluation.reports import format_report, write_report
from ecgrhythm.scoring.metrics import evaluate_predictions, multilabel_report


def test_write_report_writes_json_and_png_atomically(tmp_path):
    y_true, y_pred = _labels_from(HAND_CM, seed=3)
    report = evaluate_predictions(y_true, y_pred, CLASSES, info={"data": "somewhere"})
    paths = write_report(report, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["score"] == pytest.approx(317 / 468) and data["confusion"] == HAND_CM.tolist()
    assert data["info"] == {"data": "somewhere"} and data["scored_classes"] == ["N", "A", "O"]
    png = paths["figure"].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["evaluation.json", "evaluation.png"]


def test_format_report_is_a_table():
    y_true, y_pred = _labels_from(HAND_CM)
    text = format_report(evaluate_predictions(y_true, y_pred, CLASSES))
    assert "CinC 2017 score (mean F1 of N, A, O): 0.6774" in text
    lines = text.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("class"))) + 1 :][:4]
    assert [line.split()[0] for line in table] == CLASSES
    assert table[2].split() == ["O", "7", "6", f"{4 / 6:.4f}", f"{4 / 7:.4f}", f"{8 / 13:.4f}"]
    assert lines[-4:][0].split() == ["N", "5", "1", "1", "0"]  # first row of the confusion matrix


def _with_probabilities(seed=0):
    """Labels from HAND_CM with probabilities whose arg-max is the predicted label."""
    y_true, y_pred = _labels_from(HAND_CM, seed=seed)
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0.0, 0.3, (len(y_pred), 4))
    probs[np.arange(len(y_pred)), [CLASSES.index(p) for p in y_pred]] = rng.uniform(0.5, 1.0, len(y_pred))
    return y_true, y_pred, probs / probs.sum(axis=1, keepdims=True)


def test_reports_show_the_ece_and_a_reliability_diagram(tmp_path):
    y_true, y_pred, probs = _with_probabilities()
    report = evaluate_predictions(y_true, y_pred, CLASSES, probabilities=probs)
    text = format_report(report)
    assert f"top-class expected calibration error (15 bins): {report.ece:.4f}" in text
    assert "calibration" not in format_report(evaluate_predictions(y_true, y_pred, CLASSES))
    paths = write_report(report, tmp_path / "with")
    data = json.loads(paths["json"].read_text())
    assert data["ece"] == pytest.approx(report.ece) and sum(data["calibration"]["count"]) == 20
    without = write_report(evaluate_predictions(y_true, y_pred, CLASSES), tmp_path / "without")
    assert json.loads(without["json"].read_text())["ece"] is None
    from PIL import Image

    # The reliability diagram is a third panel: the figure is wider than the two-panel one.
    with Image.open(paths["figure"]) as wide, Image.open(without["figure"]) as narrow:
        assert wide.size[0] > narrow.size[0] * 1.3 and wide.size[1] == narrow.size[1]


def test_multilabel_report_table_and_figure(tmp_path):
    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    probs = np.array([[0.9, 0.2, 0.1], [0.6, 0.7, 0.2], [0.3, 0.4, 0.3], [0.1, 0.8, 0.6]])
    report = multilabel_report(targets, probs, ["a", "b", "c"], 0.5)
    lines = format_report(report).splitlines()
    assert lines[0].startswith("macro F1 (per-class thresholds): 0.5000")
    assert lines[-1].split() == ["c", "0", "1", "0.50", "0.0000", "n/a", "n/a"]
    paths = write_report(report, tmp_path)
    assert json.loads(paths["json"].read_text())["f1"]["b"] == 0.5
    assert paths["figure"].read_bytes().startswith(b"\x89PNG")
