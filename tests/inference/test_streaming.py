import threading
import weakref

import numpy as np
import pytest
from conftest import FIRST_SIX as NAMES

import ecgrhythm.inference.streaming as streaming
from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.inference.streaming import classify_files, iter_classify_files
from ecgrhythm.records import read_record


def test_classify_files_in_small_chunks_keeps_order_and_failures(clf, paths, tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not an array")
    mixed = paths[:2] + [bad] + paths[2:] + [tmp_path / "missing.hea"]
    whole, failures_whole = classify_files(clf, mixed, fs=300)
    chunked, failures = classify_files(clf, mixed, fs=300, chunk_samples=1)  # one record per chunk
    assert chunked.names == whole.names == NAMES
    assert [p for p, _ in failures] == [p for p, _ in failures_whole] == [str(bad), str(tmp_path / "missing.hea")]
    assert "not found" in failures[1][1]
    np.testing.assert_allclose(chunked.probabilities, whole.probabilities, atol=1e-5)
    assert chunked.labels == whole.labels and chunked.classes == ["N", "A", "O", "~"]


def test_any_error_of_one_record_is_that_records_failure(clf, paths, monkeypatch):
    real = streaming.read_record

    def hostile(path, **kwargs):
        if path == paths[1]:
            raise RuntimeError("parser exploded\non two lines")
        return real(path, **kwargs)

    monkeypatch.setattr(streaming, "read_record", hostile)
    prediction, failures = classify_files(clf, paths[:3])
    assert prediction.names == [NAMES[0], NAMES[2]]
    assert failures == [(str(paths[1]), "unexpected error while reading (RuntimeError: parser exploded\non two lines)")]


def test_a_failing_batch_is_retried_record_by_record(clf, paths, monkeypatch):
    real = RhythmClassifier.predict_prepared

    marker = clf.prepare(read_record(paths[1]))

    def fragile(self, signals):
        signals = list(signals)
        if any(s.shape == marker.shape and np.array_equal(s, marker) for s in signals):
            raise FloatingPointError("bad batch")
        return real(self, signals)

    monkeypatch.setattr(RhythmClassifier, "predict_prepared", fragile)
    prediction, failures = classify_files(clf, paths[:3])
    assert prediction.names == [NAMES[0], NAMES[2]] and prediction.probabilities.shape == (2, 4)
    assert failures == [(str(paths[1]), "cannot be classified (FloatingPointError: bad batch)")]


def test_memory_is_bounded_by_samples_not_records(clf, cinc2017_dir, tmp_path, monkeypatch):
    """Chunks hold at most `chunk_samples` values (or one longer record), and no more than about two chunks are alive at once."""
    records = sorted(cinc2017_dir.glob("A000*.hea"))[:24]
    records.insert(5, tmp_path / "missing.hea")
    sizes = {str(p): clf.prepare(read_record(p)).size for p in records if p.exists()}
    budget = 2 * int(np.median(list(sizes.values())))
    bound = 2 * budget + max(sizes.values())
    assert sum(sizes.values()) > 2 * bound  # a run holding every record would break the bound
    lock, live, peak = threading.Lock(), [0], [0]

    def freed(size):
        with lock:
            live[0] -= size

    def tracked(record, real=clf.prepare):
        signal = real(record)
        with lock:
            live[0] += signal.size
            peak[0] = max(peak[0], live[0])
        weakref.finalize(signal, freed, signal.size)
        return signal

    monkeypatch.setattr(clf, "prepare", tracked)
    chunks = [(p.names, bad) for p, bad in iter_classify_files(clf, records, chunk_samples=budget)]
    by_name = {read_record(p).record_name: size for p, size in sizes.items()}
    assert [n for names, _ in chunks for n in names] == [p.stem for p in records if p.exists()]  # input order kept
    assert [bad for _, failures in chunks for bad, _ in failures] == [str(tmp_path / "missing.hea")]
    assert len(chunks) > 4
    for names, _ in chunks:
        assert len(names) == 1 or sum(by_name[n] for n in names) <= budget
    assert 0 < peak[0] <= bound and live[0] == 0


def test_a_record_longer_than_the_budget_is_a_chunk_alone(clf, paths):
    chunks = [p.names for p, _ in iter_classify_files(clf, paths[:3], chunk_samples=10)]
    assert chunks == [[n] for n in NAMES[:3]]
    with pytest.raises(ValueError, match="`chunk_samples`"):
        list(iter_classify_files(clf, paths, chunk_samples=0))


def test_a_long_record_reports_the_seconds_of_signal_classified(clf, cpsc2021_dir, monkeypatch):
    from ecgrhythm.inference.long_records import classify_stream
    from ecgrhythm.records import open_wfdb

    header = cpsc2021_dir / "data_101_6.hea"  # 22,355 samples at 200 Hz: 111.775 s
    calls = []
    with open_wfdb(header) as stream:
        row, _ = classify_stream(clf, stream, piece_s=20, progress=lambda done, total: calls.append((done, total)))
    done = [d for d, _ in calls]
    assert len(calls) >= 5 and done == sorted(done) and [t for _, t in calls] == [pytest.approx(111.775, abs=0.01)] * len(calls)
    assert done[-1] == pytest.approx(111.775, abs=0.01)
    with open_wfdb(header) as stream:
        np.testing.assert_allclose(classify_stream(clf, stream, piece_s=20)[0], row)  # reporting changes nothing

    monkeypatch.setattr("ecgrhythm.records.long_records.STREAM_ABOVE_S", 60.0)  # the record is "long": read in pieces
    calls.clear()
    prediction, failures = classify_files(clf, [header], progress=lambda done, total: calls.append((done, total)))
    assert failures == [] and prediction.names == ["data_101_6"] and calls[-1] == (pytest.approx(111.775, abs=0.01),) * 2
