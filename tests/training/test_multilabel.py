"""Multi-label, multi-lead path on the real CinC 2021 sample (50 records prove the path, not accuracy)."""

import csv
import json

import numpy as np
import pytest

from ecgrhythm.cli import main
from ecgrhythm.config import PreprocessConfig, TrainConfig
from ecgrhythm.inference.classifier import NO_LABEL, RhythmClassifier
from ecgrhythm.networks.cnn_lstm import ModelConfig
from ecgrhythm.preprocessing.pipeline import preprocess
from ecgrhythm.records import RecordError, read_record
from ecgrhythm.records.labels import dx_codes, dx_mapping
from ecgrhythm.training.data import load_labelled
from ecgrhythm.training.trainer import train

LEADS = ("I", "II", "V1")


@pytest.fixture(scope="module")
def multilabel_model(tmp_path_factory, cinc2021_dir):
    out = tmp_path_factory.mktemp("ml") / "model"
    train(
        cinc2021_dir,
        out,
        preprocess_config=PreprocessConfig(fs=100.0, leads=LEADS),
        model_config=ModelConfig(conv_filters=(8, 8, 16), lstm_units=8, dropout=0.0),
        train_config=TrainConfig(epochs=1, batch_size=8, window_s=10.0, val_fraction=0.3, seed=0),
        classes="scored",
        verbose=0,
    )
    return out


def test_header_codes_become_multi_hot_targets(cinc2021_dir):
    data = load_labelled(cinc2021_dir, PreprocessConfig(fs=100.0), classes="all", limit=10)
    names, _ = dx_mapping(cinc2021_dir)
    assert data.multilabel and data.targets.shape == (10, len(data.classes))
    assert data.preprocess.leads == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    for name, row in zip(data.names, data.targets):
        codes = dx_codes(read_record(cinc2021_dir / f"{name}.hea").comments)
        assert {c for c, v in zip(data.classes, row) if v} == {names.get(code, code) for code in codes}
    # 10 s at 500 Hz resampled to 100 Hz, 12 leads
    assert all(s.shape == (1000, 12) for s in data.signals)


def test_records_without_the_chosen_classes_are_dropped_or_kept(cinc2021_dir):
    dropped = load_labelled(cinc2021_dir, PreprocessConfig(fs=100.0), classes=["SB"], limit=20)
    kept = load_labelled(cinc2021_dir, PreprocessConfig(fs=100.0), classes=["SB"], limit=20, unlabelled="keep")
    assert dropped.targets.all() and len(dropped.names) + len(dropped.unlabelled) == 20
    assert len(kept.names) == 20 and not kept.unlabelled and kept.targets.sum() == len(dropped.names)


def test_lead_selection_and_missing_leads(cinc2021_dir, cpsc2021_dir):
    record = read_record(cinc2021_dir / "E07500.hea")
    chosen = preprocess(record, PreprocessConfig(fs=250.0, leads=("V1", "I")))
    assert chosen.shape == (2500, 2)
    np.testing.assert_allclose(chosen[:, 1], preprocess(record, PreprocessConfig(fs=250.0, leads=("I",)))[:, 0], atol=1e-5)
    two_lead = read_record(cpsc2021_dir / "data_101_6.hea")
    with pytest.raises(RecordError, match="V1"):
        preprocess(two_lead, PreprocessConfig(fs=250.0, leads=LEADS))


def test_multilabel_model_saves_thresholds_and_labels_over_them(multilabel_model, cinc2021_dir):
    config = json.loads((multilabel_model / "config.json").read_text())
    assert config["model"]["multilabel"] and config["preprocess"]["leads"] == list(LEADS)
    assert len(config["thresholds"]) == len(config["classes"]) and config["n_leads"] == 3
    clf = RhythmClassifier.load(multilabel_model)
    pred = clf.predict_records([cinc2021_dir / "E07500.hea", cinc2021_dir / "E07501.hea"])
    for label, row in zip(pred.labels, pred.probabilities):
        expected = [c for c, p, t in zip(clf.classes_, row, clf.thresholds_) if p >= t]
        assert label == (" ".join(expected) or NO_LABEL)


def test_classify_and_evaluate_a_multilabel_model_from_the_cli(multilabel_model, cinc2021_dir, cpsc2021_dir, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    assert main(["classify", str(cinc2021_dir), "--model", str(multilabel_model), "--output", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0][:2] == ["record", "label"] and len(rows) == 51
    assert main(["classify", str(cpsc2021_dir / "data_101_6.hea"), "--model", str(multilabel_model), "--output", str(tmp_path / "x.csv")]) == 1
    assert "missing leads" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(cinc2021_dir), "--model", str(multilabel_model), "--output", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    assert "macro F1" in printed and "AUROC" in printed
    report = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    # every record the model was not trained on is scored, those with none of its classes included
    assert report["n_records"] == 50 - len(json.loads((multilabel_model / "split.json").read_text())["train"])
    assert (tmp_path / "ev" / "evaluation.png").stat().st_size > 1000
