import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import ecgrhythm.inference.classifier as inference
from ecgrhythm.inference.classifier import NotFittedError, RhythmClassifier
from ecgrhythm.inference.streaming import classify_files
from ecgrhythm.networks.saving import ModelFolderError
from ecgrhythm.records import RecordError, read_record


def test_not_fitted_error_before_load(cinc2017_dir):
    clf = RhythmClassifier()
    record = read_record(cinc2017_dir / "A00001.hea")
    for call in (
        lambda: clf.prepare(record),
        lambda: clf.predict_prepared([np.zeros((3000, 1), np.float32)]),
        lambda: classify_files(clf, [cinc2017_dir / "A00001.hea"]),
        lambda: clf.predict_records([record]),
    ):
        with pytest.raises(NotFittedError, match="Call 'load'"):
            call()


def test_a_single_lead_model_takes_lead_i_of_a_real_two_lead_record(clf, cpsc2021_dir):
    path = sorted(cpsc2021_dir.glob("*.hea"))[0]
    record = read_record(path)
    assert record.sig_name == ("I", "II")
    one, lead = clf.choose_lead(record)
    assert lead == "I" and one.n_leads == 1
    np.testing.assert_array_equal(one.signal[:, 0], record.signal[:, 0])
    np.testing.assert_array_equal(clf.prepare(record), clf.prepare(one))
    by_name, by_index = clf.prepare(record, lead="ii"), clf.prepare(record, lead=1)
    np.testing.assert_array_equal(by_name, by_index)
    assert not np.array_equal(by_name, clf.prepare(record))
    with pytest.raises(RecordError, match=r"no lead 'V1'.*\['I', 'II'\].*`lead` argument"):
        clf.prepare(record, lead="V1")
    prediction, failures = classify_files(clf, [path])
    assert failures == [] and prediction.names == [path.stem]


def test_predict_proba_validates_its_input(clf):
    with pytest.raises(ValueError, match=r"signals\[1\] with shape \(10, 2\)"):
        clf.predict_prepared([np.zeros((300, 1), np.float32), np.zeros((10, 2), np.float32)])
    assert clf.predict_prepared([]).shape == (0, 4)


def test_arrays_and_records_agree(clf, cinc2017_dir):
    record = read_record(cinc2017_dir / "A00003.hea")
    from_file = clf.predict_records([cinc2017_dir / "A00003.hea"])
    from_array = clf.predict_arrays([record.signal[:, 0]], fs=record.fs, names=["x"])
    np.testing.assert_allclose(from_file.probabilities, from_array.probabilities, atol=1e-6)
    assert from_array.names == ["x"]


@pytest.fixture(scope="module")
def shipped():
    """The shipped model: calibrated (a class prior and temperatures), three networks."""
    return RhythmClassifier.load()


def test_predict_and_predict_proba_take_one_signal_or_a_list_and_agree_with_predict_records(shipped, cinc2017_dir):
    paths = [cinc2017_dir / "A00004.hea", cinc2017_dir / "A00001.hea"]  # labelled A and N in REFERENCE.csv
    expected = shipped.predict_records(paths)
    assert expected.labels == ["A", "N"]
    af, normal = (read_record(p) for p in paths)
    one = af.signal[:, 0]  # 1-D, mV, 300 Hz
    assert one.ndim == 1 and shipped.predict(one, fs=300) == "A"
    proba = shipped.predict_proba(one, fs=300)
    assert proba.shape == (4,)
    np.testing.assert_allclose(proba, expected.probabilities[0], atol=1e-6)  # the calibrated whole-record probabilities
    np.testing.assert_allclose(shipped.predict_proba(one[:, None], fs=300.0), proba, atol=1e-6)  # 2-D, one lead
    assert shipped.predict(af) == "A"  # a record carries its rate
    np.testing.assert_allclose(shipped.predict_proba(af, fs=300), proba, atol=1e-6)  # an agreeing fs is fine
    signals = [one, normal.signal[:, 0]]
    assert shipped.predict(signals, fs=300) == ["A", "N"] and shipped.predict(tuple(signals), fs=300) == ["A", "N"]
    stacked = shipped.predict_proba(signals, fs=300)
    assert stacked.shape == (2, 4)
    np.testing.assert_allclose(stacked, expected.probabilities, atol=1e-6)
    np.testing.assert_allclose(shipped.predict_proba([af, normal.signal], fs=300), expected.probabilities, atol=1e-6)  # mixed
    assert shipped.predict_proba([], fs=300).shape == (0, 4) and shipped.predict([], fs=300) == []


def test_predict_refuses_what_it_cannot_take_naming_the_argument(shipped, cinc2017_dir):
    record = read_record(cinc2017_dir / "A00004.hea")
    signal = record.signal[:, 0]
    for call in (lambda: shipped.predict(signal), lambda: shipped.predict_proba([signal]), lambda: shipped.predict_arrays(signal, None)):
        with pytest.raises(ValueError, match=r"`fs`: arrays carry no sampling rate; pass fs=, the sampling rate in Hz") as error:
            call()
        assert "--" not in str(error.value)
    with pytest.raises(ValueError, match=r"`fs`: record 'A00004' was sampled at 300 Hz.*Received: fs=250"):
        shipped.predict(record, fs=250)
    with pytest.raises(ValueError, match=r"`fs`: invalid sampling rate 5 Hz"):
        shipped.predict(signal, fs=5)
    with pytest.raises(ValueError, match=r"x\[0\] is a number.*np.asarray\(x\)"):  # one signal as a plain list: ambiguous
        shipped.predict(signal.tolist(), fs=300)
    with pytest.raises(ValueError, match="not a file path.*predict_records"):
        shipped.predict(str(cinc2017_dir / "A00004.hea"))
    with pytest.raises(ValueError, match=r"shape \(1, 9000\) has more leads than samples.*transpose"):
        shipped.predict(signal[None, :], fs=300)
    with pytest.raises(ValueError, match=r"expected a signal of shape \(n_samples,\) or \(n_samples, n_leads\)"):
        shipped.predict_proba(signal.reshape(1, -1, 1), fs=300)
    with pytest.raises(RecordError, match=r"x: record is 1.00 s long"):  # too short: the record checks, naming the argument
        shipped.predict(signal[:300], fs=300)


def test_predict_arrays_takes_one_array_or_a_list(shipped, cinc2017_dir):
    record = read_record(cinc2017_dir / "A00004.hea")
    one = shipped.predict_arrays(record.signal[:, 0], fs=300)
    assert one.names == ["array0"] and one.labels == ["A"]
    np.testing.assert_allclose(one.probabilities, shipped.predict_records([record]).probabilities, atol=1e-6)
    two = shipped.predict_arrays([record.signal, record.signal[:3000, 0]], 300, names=["whole", "first 10 s"])
    assert two.names == ["whole", "first 10 s"] and two.probabilities.shape == (2, 4)
    with pytest.raises(ValueError, match=r"`names`: expected one name per array \(2\)"):
        shipped.predict_arrays([record.signal, record.signal], 300, names=["one"])


def test_predict_records_reads_header_less_files_at_the_given_fs(shipped, cinc2017_dir, tmp_path):
    record = read_record(cinc2017_dir / "A00004.hea")
    csv = tmp_path / "af300.csv"
    np.savetxt(csv, record.signal, fmt="%.6f")
    result = shipped.predict_records([csv], fs=300)
    assert result.names == ["af300"] and result.labels == ["A"]
    np.testing.assert_allclose(result.probabilities, shipped.predict_records([record]).probabilities, atol=1e-4)
    np.testing.assert_allclose(shipped.predict_records(csv, fs=300).probabilities, result.probabilities)  # one path
    with pytest.raises(RecordError, match="af300.csv: .*no sampling rate.*fs") as error:
        shipped.predict_records([csv])
    assert "--fs" not in str(error.value)


def test_bad_model_folders_are_refused(tmp_path, tiny_model_dir):
    with pytest.raises(ModelFolderError, match="model folder not found"):
        RhythmClassifier.load(tmp_path / "nothing")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken, ignore=shutil.ignore_patterns("checkpoint"))
    (broken / "model.weights.h5").write_bytes(b"\0" * 100)
    with pytest.raises(ModelFolderError, match="checksum"):
        RhythmClassifier.load(broken)
    with pytest.raises(ValueError, match="`batch_size`"):
        RhythmClassifier.load(tiny_model_dir, batch_size=0)


def test_load_is_the_only_way_to_a_model(tiny_model_dir):
    assert not hasattr(RhythmClassifier, "fit")
    unloaded = RhythmClassifier(tiny_model_dir, batch_size=3)  # the constructor only stores its arguments
    assert (unloaded.model_dir, unloaded.batch_size) == (tiny_model_dir, 3) and not hasattr(unloaded, "model_")
    loaded = RhythmClassifier.load(tiny_model_dir, batch_size=3)
    assert loaded.model_dir_ == tiny_model_dir and loaded.batch_size == 3
    assert loaded.classes_ == json.loads((tiny_model_dir / "config.json").read_text())["classes"]


def test_the_default_model_of_a_checkout_is_its_models_folder():
    root = Path(__file__).resolve().parents[2]
    assert inference.default_model_dir() == root / "models" / "cinc2017"
    assert (inference.default_model_dir() / "config.json").is_file()


def test_predict_segments_is_the_timeline_of_consecutive_windows(clf, cinc2017_dir):
    record = read_record(cinc2017_dir / "A00004.hea")  # 30 s
    prepared = clf.prepare(record)
    segments = clf.predict_segments(record, 10.0)
    assert len(segments) == 3
    assert segments[0].start_s == 0 and segments[-1].end_s == pytest.approx(record.duration_s)
    assert all(a.end_s == b.start_s for a, b in zip(segments, segments[1:]))
    for seg in segments:
        a, b = round(seg.start_s * clf.preprocess_.fs), round(seg.end_s * clf.preprocess_.fs)
        np.testing.assert_allclose(seg.probabilities, clf.predict_prepared([prepared[a:b]], calibrated=False)[0], atol=1e-6)
        assert seg.label == clf.classes_[int(np.argmax(seg.probabilities))] and seg.calibrated is False
    # Windows of about 7 s: round(30 / 7) = 4 near-equal windows.
    assert [round(s.end_s - s.start_s, 3) for s in clf.predict_segments(record, 7.0, signal=prepared)] == [7.5] * 4
    with pytest.raises(ValueError, match="`window_s`"):
        clf.predict_segments(record, 0)
    whole, together = clf.predict_with_segments(record, 10.0, signal=prepared)  # one call of the networks: the same numbers
    np.testing.assert_allclose(whole, clf.predict_prepared([prepared])[0], atol=1e-6)
    np.testing.assert_allclose([s.probabilities for s in together], [s.probabilities for s in segments], atol=1e-6)
    assert [(s.start_s, s.end_s, s.label) for s in together] == [(s.start_s, s.end_s, s.label) for s in segments]


def test_the_calibration_fitted_on_whole_records_is_applied_to_them_not_to_windows(shipped, cinc2017_dir):
    assert shipped.class_prior_ is not None and shipped.temperature_by_ == "predicted_class"
    record = read_record(cinc2017_dir / "A00004.hea")
    prepared = shipped.prepare(record)
    whole, segments = shipped.predict_with_segments(record, 10.0, signal=prepared)
    np.testing.assert_allclose(whole, shipped.predict_prepared([prepared])[0], atol=1e-6)
    assert not np.allclose(whole, shipped.predict_prepared([prepared], calibrated=False)[0], atol=1e-3)
    windows = [prepared[round(s.start_s * 150) : round(s.end_s * 150)] for s in segments]
    own, calibrated = shipped.predict_prepared(windows, calibrated=False), shipped.predict_prepared(windows)
    np.testing.assert_allclose([s.probabilities for s in segments], own, atol=1e-6)
    assert not np.allclose(own, calibrated, atol=1e-3) and not any(s.calibrated for s in segments)
    again = shipped.predict_segments(record, 10.0)  # the same windows alone: the same numbers (within the backend's batch-size rounding)
    assert [s.label for s in again] == [s.label for s in segments]
    np.testing.assert_allclose([s.probabilities for s in again], [s.probabilities for s in segments], atol=1e-6)


def test_non_finite_model_output_is_an_error_of_that_record(tiny_model_dir, paths):
    broken = RhythmClassifier.load(tiny_model_dir)
    for v in broken.model_.trainable_variables:  # a model whose every output is NaN
        v.assign(np.full(v.shape, np.nan, dtype=v.dtype))
    with pytest.raises(inference.NonFiniteOutputError, match="non-finite probabilities"):
        broken.predict_prepared([broken.prepare(read_record(paths[0]))])
    prediction, failures = classify_files(broken, paths[:2])
    assert prediction.names == [] and [p for p, _ in failures] == [str(p) for p in paths[:2]]
    assert all("non-finite probabilities" in reason for _, reason in failures)


def test_a_model_trained_with_the_rr_channel_saves_reloads_and_classifies_real_records(tiny_rr_model_dir, tiny_model_dir, cinc2017_dir):
    config = json.loads((tiny_rr_model_dir / "config.json").read_text())
    assert config["preprocess"]["rr_channel"] is True and config["n_leads"] == 1  # config.json counts leads; the network takes 2 channels
    rr = RhythmClassifier.load(tiny_rr_model_dir)
    assert rr.preprocess_.rr_channel and rr.n_leads_ == 1 and rr.n_channels_ == 2
    assert rr.model_.input["signal"].shape[-1] == 2
    record = read_record(cinc2017_dir / "A00004.hea")
    signal = rr.prepare(record)
    assert signal.shape == (round(record.n_samples * 100 / 300), 2) and signal[:, 1].min() >= 0.2  # seconds between beats
    prediction = rr.predict_records([record])
    assert prediction.names == ["A00004"] and prediction.labels[0] in rr.classes_
    np.testing.assert_allclose(prediction.probabilities, rr.predict_prepared([signal]))
    with pytest.raises(ValueError, match=r"\(n_samples, 2\)"):  # the lead alone is not this model's input
        rr.predict_prepared([signal[:, :1]])
    segments = rr.predict_segments(record, 10.0)
    assert len(segments) == 3 and segments[-1].end_s == pytest.approx(record.duration_s)
    # A folder written before the option (its config.json has no such key) loads with it off.
    assert "rr_channel" not in json.loads((tiny_model_dir / "config.json").read_text())["preprocess"]
    plain = RhythmClassifier.load(tiny_model_dir)
    assert not plain.preprocess_.rr_channel and plain.n_channels_ == plain.n_leads_ == 1 and plain.prepare(record).shape[1] == 1
