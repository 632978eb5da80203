"""Running studies on real records: record, resume, report, refuse bad settings; a study and a strategy registered from outside."""

from __future__ import annotations

import csv
from typing import ClassVar

import pytest

from ecgrhythm.cli import main
from ecgrhythm.lab.studies import LENGTHS, STUDIES, Budget, LengthStrategy, Study, Variant, run_study, study_rows, write_report
from ecgrhythm.networks.cnn_lstm import ModelConfig


def test_study_records_resumes_and_reports(small_folder, small_data, tiny, tmp_path):
    store = tmp_path / "store.db"
    seen = []
    kwargs = dict(
        storage=store,
        budget=tiny,
        seeds=(0,),
        variants=["bucket_mask", "windows"],
        data=small_data,
        on_run=lambda v, s, m: seen.append((v.name, s, m["val_cinc_score"])),
    )
    assert run_study("length", small_folder, max_runs=1, **kwargs) == 1  # interrupted after one run
    assert run_study("length", small_folder, **kwargs) == 1  # resumes with the other
    assert run_study("length", small_folder, **kwargs) == 0  # nothing left
    assert [(name, seed) for name, seed, _ in seen] == [("bucket_mask", 0), ("windows", 0)]

    rows, setup = study_rows("length", store)
    assert [(r["variant"], r["seed"], r["val_cinc_score"]) for r in rows] == seen
    assert setup["n_train"] == len(small_data.train_idx) and setup["budget"]["epochs"] == 1
    for r in rows:
        assert 0 <= r["val_cinc_score"] <= 1 and r["parameters"] > 0 and r["inference_records_per_s"] > 0 and r["fold"] is None

    assert main(["study", "length", "--store", str(store), "--output", str(tmp_path / "report"), "--note", "shared the CPU with a training"]) == 0
    paths = write_report("length", tmp_path / "report", store, min_seeds=1)
    assert "## Notes\n\n- shared the CPU with a training" in paths["md"].read_text()
    with open(paths["csv"], newline="") as f:
        written = list(csv.DictReader(f))
    assert [(r["variant"], float(r["val_cinc_score"]), r["fold"]) for r in written] == [(n, s, "") for n, _, s in seen]
    text = paths["md"].read_text()
    assert "bucket_mask" in text and "windows" in text and "## Answer" in text and "###" not in text  # one budget: no per-budget sections
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with pytest.raises(ValueError, match="other settings"):
        run_study("length", small_folder, **{**kwargs, "budget": Budget(epochs=2, train_records=40, val_fraction=0.3, batch_size=16)})


def test_same_seed_gives_the_same_run(small_folder, small_data, tiny, tmp_path):
    """A fixed-input strategy end to end, twice in two stores: the same measurements' scores."""
    scores = []
    for store in ("a.db", "b.db"):
        run_study(
            "length",
            small_folder,
            storage=tmp_path / store,
            budget=tiny,
            seeds=(3,),
            variants=["crop_pad"],
            data=small_data,
            on_run=lambda v, s, m: scores.append((m["val_cinc_score"], m["final_loss"], m["parameters"])),
        )
    assert len(scores) == 2 and scores[0] == scores[1]


class FirstWindow(LengthStrategy):
    """A toy strategy: train and predict on each record's first window only."""

    name = "first_window"
    description = "the first training window of each record"

    def training(self, signals):
        from ecgrhythm.lab.studies.strategies import pad_to

        return [pad_to(s, self.window)[: self.window] for s in signals], self.window

    def predict(self, model, signals):
        from ecgrhythm.inference.classifier import predict_signals

        return predict_signals(model, self.training(signals)[0], (self.window,))


class WidthStudy(Study):
    """A toy study: the LSTM's width on a tiny network, fed by the toy strategy."""

    name = "width"
    question = "How wide should a tiny LSTM be?"
    factor = "LSTM width"
    reference = "8 units"
    model: ClassVar = ModelConfig(conv_filters=(8, 8, 16, 16), lstm_units=8, dropout=0.0)

    def variants(self):
        import dataclasses

        return [Variant(f"{u} units", {"lstm_units": u}, length="first_window", model=dataclasses.replace(self.model, lstm_units=u)) for u in (4, 8)]

    def distributions(self):
        from optuna.distributions import IntDistribution

        return {"lstm_units": IntDistribution(1, 64)}

    def answer(self, complete, close, margin, reference):
        return [f"Toy answer over {len(complete)} variants."]


def test_a_registered_study_and_strategy_run_record_and_report(small_folder, small_data, tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(LENGTHS, FirstWindow.name, FirstWindow)
    monkeypatch.setitem(STUDIES, WidthStudy.name, WidthStudy())
    store = tmp_path / "store.db"
    made = run_study("width", small_folder, storage=store, budget=tiny, seeds=(0,), variants=["4 units"], data=small_data)
    assert made == 1
    rows, _ = study_rows("width", store)
    assert [(r["variant"], r["seed"]) for r in rows] == [("4 units", 0)]
    assert '"lstm_units": 4' in rows[0]["config"] and 0 <= rows[0]["val_cinc_score"] <= 1
    text = write_report("width", tmp_path / "out", store, min_seeds=1)["md"].read_text()
    assert "**Question.** How wide should a tiny LSTM be?" in text and "Toy answer over 1 variants." in text
    assert "- `4 units`" in text and "- `8 units`" in text  # the default `compared`: the study's variants


def test_bad_settings_fail_before_anything_is_recorded(small_folder, small_data, tiny, tmp_path):
    store = tmp_path / "store.db"
    with pytest.raises(ValueError, match="epochs"):
        Budget(epochs=0)
    with pytest.raises(ValueError, match="margin"):
        run_study("depth", small_folder, storage=store, budget=tiny, margin=-0.1, data=small_data)
    with pytest.raises(ValueError, match="unknown depth variants"):
        run_study("depth", small_folder, storage=store, budget=tiny, variants=["9xLSTM"], data=small_data)
    with pytest.raises(ValueError, match=r"`name`.*Received: name='speed'"):
        run_study("speed", small_folder, storage=store, budget=tiny, data=small_data)
    assert not store.exists()


def test_cli_study_report_and_errors(small_folder, tmp_path, capsys):
    store, out = tmp_path / "store.db", tmp_path / "out"
    assert main(["study", "length", "--report-only", "--store", str(store), "--output", str(out)]) == 2
    assert "no recorded runs" in capsys.readouterr().err
    code = main(
        [
            "study",
            "normalization",
            "--data",
            str(small_folder),
            "--store",
            str(store),
            "--output",
            str(out),
            "--variants",
            "zscore/raw,nonsense",
            "--epochs",
            "1",
            "--train-records",
            "40",
            "--seeds",
            "0",
        ]
    )
    assert code == 2 and "nonsense" in capsys.readouterr().err
    assert main(["study", "length", "--import-csv", str(tmp_path / "missing.csv"), "--store", str(store)]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err
    assert not out.exists()  # no report from a failed command
