import shutil

import numpy as np
import pytest

import ecgrhythm.inference as inference
from ecgrhythm.inference import NotFittedError, RhythmClassifier, _batch_buckets, predict_signals
from ecgrhythm.records import RecordError, read_record
from ecgrhythm.saving import ModelFolderError, load_model_dir

NAMES = ["A00001", "A00002", "A00003", "A00004", "A00005", "A00006"]


@pytest.fixture(scope="module")
def clf(tiny_model_dir):
    return RhythmClassifier.load(tiny_model_dir)


@pytest.fixture(scope="module")
def paths(cinc2017_dir):
    return [cinc2017_dir / f"{n}.hea" for n in NAMES]


def test_not_fitted_error_before_load(cinc2017_dir):
    clf = RhythmClassifier()
    record = read_record(cinc2017_dir / "A00001.hea")
    for call in (lambda: clf.prepare(record), lambda: clf.predict_proba([np.zeros((3000, 1), np.float32)]),
                 lambda: clf.classify_files([cinc2017_dir / "A00001.hea"]), lambda: clf.predict_records([record])):
        with pytest.raises(NotFittedError, match="Call 'load'"):
            call()


def test_fast_loading_gives_the_saved_weights(clf, tiny_model_dir):
    plain, _ = load_model_dir(tiny_model_dir)
    saved = lambda model: [v for v in model.variables if "seed_generator" not in v.path]  # noqa: E731  (seeds are drawn anew)
    assert len(saved(plain)) == len(saved(clf.model_)) > 10
    for a, b in zip(saved(plain), saved(clf.model_)):
        assert a.path.split("/")[0] == b.path.split("/")[0]
        np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value))
    assert all(v.value is not None for v in clf.model_.variables)


def test_merging_small_buckets():
    buckets = (100, 200, 300, 400)
    # 100: 3 signals (< 4) merge into 200; 200: 5 stay; 300: none; 400: 1 (largest in use) stays.
    assert _batch_buckets([50] * 3 + [150] * 5 + [400], buckets, min_count=4) == (200, 400)
    # Only small groups: everything rides in the largest bucket in use.
    assert _batch_buckets([50, 150, 250], buckets, min_count=4) == (300,)
    assert _batch_buckets([50] * 4, buckets, min_count=4) == (100,)
    assert _batch_buckets([], buckets, min_count=4) == buckets


def test_batched_prediction_equals_one_record_at_a_time(clf, paths):
    signals = [clf.prepare(read_record(p)) for p in paths]
    together = predict_signals(clf.model_, signals, clf.buckets_)  # all in the largest bucket in use
    alone = np.concatenate([predict_signals(clf.model_, [s], clf.buckets_) for s in signals])  # each in its own bucket
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-5)


def test_classify_files_in_small_chunks_keeps_order_and_failures(clf, tiny_model_dir, paths, tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an array")
    mixed = paths[:2] + [bad] + paths[2:] + [tmp_path / "missing.hea"]
    whole, failures_whole = clf.classify_files(mixed, fs=300)
    chunked, failures = RhythmClassifier.load(tiny_model_dir, chunk_size=2).classify_files(mixed, fs=300)
    assert chunked.names == whole.names == NAMES
    assert [p for p, _ in failures] == [p for p, _ in failures_whole] == [str(bad), str(tmp_path / "missing.hea")]
    assert "not found" in failures[1][1]
    np.testing.assert_allclose(chunked.probabilities, whole.probabilities, atol=1e-5)
    assert chunked.labels == whole.labels and chunked.classes == ["N", "A", "O", "~"]


def test_any_error_of_one_record_is_that_records_failure(clf, paths, monkeypatch):
    real = inference.read_record

    def hostile(path, **kwargs):
        if path == paths[1]:
            raise RuntimeError("parser exploded\non two lines")
        return real(path, **kwargs)

    monkeypatch.setattr(inference, "read_record", hostile)
    prediction, failures = clf.classify_files(paths[:3])
    assert prediction.names == [NAMES[0], NAMES[2]]
    assert failures == [(str(paths[1]), "unexpected error while reading (RuntimeError: parser exploded\non two lines)")]


def test_a_failing_batch_is_retried_record_by_record(clf, paths, monkeypatch):
    real = RhythmClassifier.predict_proba

    marker = clf.prepare(read_record(paths[1]))

    def fragile(self, signals):
        signals = list(signals)
        if any(s.shape == marker.shape and np.array_equal(s, marker) for s in signals):
            raise FloatingPointError("bad batch")
        return real(self, signals)

    monkeypatch.setattr(RhythmClassifier, "predict_proba", fragile)
    prediction, failures = clf.classify_files(paths[:3])
    assert prediction.names == [NAMES[0], NAMES[2]] and prediction.probabilities.shape == (2, 4)
    assert failures == [(str(paths[1]), "cannot be classified (FloatingPointError: bad batch)")]


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
    with pytest.raises(RecordError, match=r"no lead 'V1'.*\['I', 'II'\].*--lead"):
        clf.prepare(record, lead="V1")
    prediction, failures = clf.classify_files([path])
    assert failures == [] and prediction.names == [path.stem]


def test_predict_proba_validates_its_input(clf):
    with pytest.raises(ValueError, match=r"signals\[1\] with shape \(10, 2\)"):
        clf.predict_proba([np.zeros((300, 1), np.float32), np.zeros((10, 2), np.float32)])
    assert clf.predict_proba([]).shape == (0, 4)


def test_arrays_and_records_agree(clf, cinc2017_dir):
    record = read_record(cinc2017_dir / "A00003.hea")
    from_file = clf.predict_records([cinc2017_dir / "A00003.hea"])
    from_array = clf.predict_arrays([record.signal[:, 0]], fs=record.fs, names=["x"])
    np.testing.assert_allclose(from_file.probabilities, from_array.probabilities, atol=1e-6)
    assert from_array.names == ["x"]


def test_bad_model_folders_are_refused(tmp_path, tiny_model_dir):
    with pytest.raises(ModelFolderError, match="model folder not found"):
        RhythmClassifier.load(tmp_path / "nothing")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken, ignore=shutil.ignore_patterns("checkpoint"))
    (broken / "model.weights.h5").write_bytes(b"\0" * 100)
    with pytest.raises(ModelFolderError, match="checksum"):
        RhythmClassifier.load(broken)
    with pytest.raises(ValueError, match="`chunk_size`"):
        RhythmClassifier.load(tiny_model_dir, chunk_size=0)
