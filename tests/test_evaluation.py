import json
import shutil

import numpy as np
import pytest

from ecgrhythm.cli import main
from ecgrhythm.evaluation import (
    cinc2017_score,
    confusion_matrix,
    evaluate_predictions,
    f1_per_class,
    format_report,
    load_split,
    multilabel_report,
    tune_thresholds,
    write_report,
)

CLASSES = ["N", "A", "O", "~"]


@pytest.fixture(autouse=True)
def _no_compilation_cache(monkeypatch):
    """Keep in-process runs from writing a JAX cache into the home folder."""
    monkeypatch.setenv("ECGRHYTHM_JAX_CACHE", "off")
# Hand-made confusion matrix (rows: true class, columns: predicted class).
HAND_CM = np.array([
    [5, 1, 1, 0],  # true N: 7
    [1, 3, 0, 0],  # true A: 4
    [2, 0, 4, 1],  # true O: 7
    [0, 0, 1, 1],  # true ~: 2
])


def _labels_from(cm, seed=0):
    """Label lists whose confusion matrix is `cm`, in a shuffled order."""
    pairs = [(CLASSES[i], CLASSES[j]) for i in range(4) for j in range(4) for _ in range(cm[i, j])]
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[k][0] for k in order], [pairs[k][1] for k in order]


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


def _labelled_folder(tmp_path, cinc2017_dir, names, extra_reference=()):
    """A labelled folder with copies of real records and their REFERENCE.csv rows."""
    from ecgrhythm.records import read_reference

    folder = tmp_path / "data"
    folder.mkdir()
    reference = read_reference(cinc2017_dir / "REFERENCE.csv")
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(cinc2017_dir / f"{name}{suffix}", folder)
    rows = [f"{n},{reference[n]}" for n in names] + list(extra_reference)
    (folder / "REFERENCE.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_evaluate_scores_held_out_records_by_default(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    split = load_split(tiny_model_dir)
    train, val = split["train"][:3], split["val"][:4]
    folder = _labelled_folder(tmp_path, cinc2017_dir, train + val, extra_reference=["Z99999,N"])
    (folder / "Z99999.hea").write_text("Z99999 1 300 9000\nZ99999.mat 16 1000 16 0 0 0 0 ECG\n")  # signal file missing
    out = tmp_path / "report"

    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "excluded 3 records the model was trained on" in captured.out
    assert "scored 4 held-out records (1 could not be scored)" in captured.out
    assert "CinC 2017 score" in captured.out and "confusion matrix" in captured.out
    assert "cannot score" in captured.err and "Z99999.hea" in captured.err and "Traceback" not in captured.err
    data = json.loads((out / "evaluation.json").read_text())
    assert data["n_records"] == 4 and data["info"]["held_out"] is True
    assert data["info"]["excluded_training_records"] == 3 and data["info"]["failed_records"] == 1
    assert (out / "evaluation.png").read_bytes().startswith(b"\x89PNG")
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0] == "record,label,true_label,N,A,O,~"
    assert sorted(r.split(",")[0] for r in rows[1:]) == sorted(val)

    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out), "--all-records"]) == 0
    captured = capsys.readouterr()
    assert "scored 7 records, including any the model was trained on (--all-records): NOT a held-out score" in captured.out
    assert json.loads((out / "evaluation.json").read_text())["n_records"] == 7


def test_evaluate_without_split_file_says_the_score_is_not_held_out(tmp_path, cinc2017_dir, tiny_model_dir, capsys, caplog):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns("split.json", "checkpoint"))
    folder = _labelled_folder(tmp_path, cinc2017_dir, load_split(tiny_model_dir)["train"][:2])
    assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "the model folder has no split.json): NOT a held-out score" in captured.out
    assert "has no split.json" in caplog.text


def test_evaluate_errors_are_one_line(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns("checkpoint"))
    (model / "split.json").write_text("[1, 2")
    folder = _labelled_folder(tmp_path, cinc2017_dir, ["A00001"])
    assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "split.json: invalid split file" in err and len(err.strip().splitlines()) == 1
    assert main(["evaluate", "--data", str(tmp_path / "nowhere"), "--model", str(tiny_model_dir)]) == 2
    assert "REFERENCE.csv" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
