"""Long records read in pieces: the same probabilities and episodes as a whole read, in bounded memory, up to 14 days."""

import tracemalloc

import numpy as np
import pytest

from ecgrhythm.episodes.finder import record_episodes, stream_episodes
from ecgrhythm.inference.classifier import RhythmClassifier, split_long
from ecgrhythm.inference.long_records import classify_stream, stream_chunks, stream_input
from ecgrhythm.inference.streaming import classify_files
from ecgrhythm.preprocessing.pipeline import model_input
from ecgrhythm.records import RecordError, open_wfdb, read_record
from ecgrhythm.records.long_records import STREAM_ABOVE_S, open_long_record, should_stream


@pytest.fixture(scope="module")
def clf():
    return RhythmClassifier.load()


def _write_long(folder, cpsc2021_dir, hours, name="long"):
    """A 2-lead 200 Hz WFDB record of `hours`, tiled from the real cpsc2021 records' signals."""
    import wfdb

    pieces = [read_record(p).signal for p in sorted(cpsc2021_dir.glob("*.hea"))]
    n = round(hours * 3600 * 200)
    tiled = np.concatenate(pieces * (n // sum(map(len, pieces)) + 1))[:n]
    wfdb.wrsamp(
        name,
        fs=200,
        units=["mV", "mV"],
        sig_name=["I", "II"],
        p_signal=tiled.astype(np.float64),
        fmt=["16", "16"],
        adc_gain=[1000.0, 1000.0],
        baseline=[0, 0],
        write_dir=str(folder),
    )
    return folder / f"{name}.hea"


def test_streaming_equals_whole_record_reading_on_a_real_record(clf, cpsc2021_dir):
    path = cpsc2021_dir / "data_84_1.hea"  # 8.7 minutes with AF
    for lead, name in ((None, "I"), ("II", "II")):
        whole = clf.predict_prepared([clf.prepare(read_record(path), lead)])
        with open_long_record(path) as stream:
            probs, chosen = classify_stream(clf, stream, lead, piece_s=45.0)  # 12 pieces, each resampled with its margins
        assert chosen == name and np.abs(probs - whole[0]).max() < 1e-5
        assert clf.labels_from_proba(probs[None]) == clf.labels_from_proba(whole)


def test_a_long_record_streamed_in_pieces_gives_the_window_probabilities_of_a_whole_read(clf, cpsc2021_dir):
    """One pipeline: the chunks of a record read in pieces are those the classifier cuts a whole read into, with their probabilities."""
    path = cpsc2021_dir / "data_101_9.hea"  # 249 s at 200 Hz: 4 chunks of the largest bucket (65 s at 150 Hz)
    signal = clf.prepare(read_record(path))
    whole = split_long(signal, clf.buckets_[-1])  # what predict_prepared runs for the record read whole
    with open_long_record(path) as stream:
        n, pieces, lead = stream_input(clf, stream, piece_s=45.0)  # 6 pieces, each resampled with its margins
        streamed = list(stream_chunks(pieces, n, clf.buckets_[-1], fs=clf.preprocess_.fs))
    assert lead == "I" and n == len(signal) and len(whole) == 4 and [len(c) for c in streamed] == [len(c) for c in whole]
    np.testing.assert_allclose(np.concatenate(streamed), signal, atol=1e-6, rtol=0)
    expected = clf.predict_prepared(whole, calibrated=False)
    assert np.abs(expected - expected.mean(axis=0)).max() > 1e-3  # the windows differ
    np.testing.assert_allclose(clf.predict_prepared(streamed, calibrated=False), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("normalization", ["zscore", "minmax", "robust"])
def test_the_pipeline_gives_the_same_input_for_a_signal_held_whole_or_read_in_pieces(clf, cinc2017_dir, normalization):
    import dataclasses

    records = [read_record(p) for p in sorted(cinc2017_dir.glob("A*.hea"))[:12]]
    joined = np.concatenate([r.signal for r in records])  # 12 real records end to end at 300 Hz, filtered 0.5-40 Hz here

    config = dataclasses.replace(clf.preprocess_, normalization=normalization, bandpass=(0.5, 40.0))
    n, pieces = model_input(lambda a, b: joined[a:b], len(joined), 300.0, config, 1, piece_s=37.0)
    pieces = list(pieces)
    whole_n, whole = model_input(lambda a, b: joined[a:b], len(joined), 300.0, config, 1)
    whole = list(whole)
    assert len(pieces) > 5 and len(whole) == 1 and n == whole_n == len(whole[0]) == -(-len(joined) // 2)  # 300 -> 150 Hz
    np.testing.assert_allclose(np.concatenate(pieces), whole[0], atol=1e-6, rtol=0)


def test_streamed_episodes_equal_in_memory_episodes(clf, cpsc2021_dir):
    path = cpsc2021_dir / "data_21_8.hea"
    expected = record_episodes(clf, read_record(path))
    with open_long_record(path) as stream:
        got = stream_episodes(clf, stream, piece_s=37.0)
    assert got.lead == expected.lead == "I" and len(got.episodes) == len(expected.episodes)
    for a, b in zip(got.episodes, expected.episodes):
        assert a.label == b.label and abs(a.start_s - b.start_s) < 1e-6 and abs(a.end_s - b.end_s) < 1e-6
        assert abs(a.probability - b.probability) < 1e-5


def test_a_multi_hour_record_is_classified_in_pieces_with_bounded_memory(clf, cpsc2021_dir, tmp_path):
    header = _write_long(tmp_path, cpsc2021_dir, hours=3)
    assert should_stream(header) and not should_stream(cpsc2021_dir / "data_84_1.hea")
    whole_bytes = 3 * 3600 * 200 * 2 * 4  # the record read whole as float32
    tracemalloc.start()
    try:
        prediction, failures = classify_files(clf, [header])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert failures == [] and prediction.names == ["long"] and prediction.leads == ["I"]
    assert peak < whole_bytes / 2, f"peak {peak / 1e6:.1f} MB while reading a {whole_bytes / 1e6:.1f} MB record in pieces"
    expected = clf.predict_records([read_record(header)])  # 3 h still fits a whole read
    assert np.abs(prediction.probabilities - expected.probabilities).max() < 1e-5 and prediction.labels == expected.labels


def test_records_over_24_hours_are_read_in_pieces_only(tmp_path):
    import wfdb

    n = 25 * 3600 * 20  # 25 h at 20 Hz, one lead
    t = np.arange(n) / 20
    wfdb.wrsamp(
        "day",
        fs=20,
        units=["mV"],
        sig_name=["I"],
        p_signal=np.sin(2 * np.pi * t)[:, None],
        fmt=["16"],
        adc_gain=[1000.0],
        baseline=[0],
        write_dir=str(tmp_path),
    )
    header = tmp_path / "day.hea"
    with pytest.raises(RecordError, match=r"25\.0 h long .* the maximum is 24 h: records over 24 h are read in pieces only as WFDB"):
        read_record(header)
    assert should_stream(header) and n / 20 > STREAM_ABOVE_S
    with open_wfdb(header) as stream:
        tail = stream.read(n - 100, n, [0])
        assert stream.n_samples == n and tail.shape == (100, 1) and tail.dtype == np.float32
        np.testing.assert_allclose(tail[:, 0], np.sin(2 * np.pi * t[-100:]), atol=1e-3)
        with pytest.raises(RecordError, match="day.hea: cannot read the signal"):
            stream.read(n - 10, n + 10, [0])


def test_classify_takes_the_chosen_lead_and_says_which(tmp_path, cpsc2021_dir, tiny_model_dir, capsys):
    import csv

    from ecgrhythm.cli import main

    out = tmp_path / "out.csv"
    assert main(["classify", str(cpsc2021_dir), "-o", str(out), "--model", str(tiny_model_dir), "--lead", "II"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 18 and {r["lead"] for r in rows} == {"II"}
    clf = RhythmClassifier.load(tiny_model_dir)
    first = sorted(cpsc2021_dir.glob("*.hea"))[0]
    expected = clf.predict_prepared([clf.prepare(read_record(first), "II")])[0]
    row = next(r for r in rows if r["record"] == first.stem)
    assert np.abs(np.array([float(row[c]) for c in clf.classes_]) - expected).max() < 1e-5
    prediction, failures = classify_files(clf, [first, first], lead=None)
    assert prediction.leads == ["I", "I"] and failures == []
    assert main(["classify", str(first), "-o", str(out), "--model", str(tiny_model_dir), "--lead", "V5"]) == 1
    assert "no lead 'V5': the record has ['I', 'II']" in capsys.readouterr().err


def test_a_model_with_the_rr_channel_streams_it_piece_by_piece(tiny_rr_model_dir, cpsc2021_dir, monkeypatch):
    from ecgrhythm.preprocessing.pipeline import model_rate_pieces, rr_intervals

    rr = RhythmClassifier.load(tiny_rr_model_dir)
    path = cpsc2021_dir / "data_84_1.hea"  # 8.7 minutes with AF
    signal = rr.prepare(read_record(path))
    whole = rr.predict_prepared([signal])[0]
    fed = []  # what the streamed read gives the network
    predict = rr.predict_prepared
    monkeypatch.setattr(rr, "predict_prepared", lambda chunks, **kw: fed.extend(np.copy(c) for c in chunks) or predict(chunks, **kw))
    with open_long_record(path) as stream:
        probs, lead = classify_stream(rr, stream, piece_s=45.0)
    assert lead == "I" and np.abs(probs - whole).max() < 1e-3  # only the RR samples near piece starts may differ
    with open_long_record(path) as stream:
        columns, _ = rr.input_columns(stream.sig_name, source=stream.header)
        pieces = list(model_rate_pieces(lambda a, b: stream.read(a, b, columns), stream.n_samples, stream.fs, rr.preprocess_, 45.0))
    per_piece = np.concatenate([rr_intervals(x[:, 0], rr.preprocess_.fs) for x in pieces])
    streamed = np.concatenate(fed)
    assert streamed.shape == signal.shape and np.array_equal(streamed[:, 1], per_piece)  # each piece's own beats
    np.testing.assert_allclose(streamed[:, 0], signal[:, 0], atol=1e-5)  # the lead as read whole
    starts = np.cumsum([len(x) for x in pieces])[:-1]
    differ = np.flatnonzero(~np.isclose(per_piece, signal[:, 1]))
    assert len(differ) < 0.2 * len(signal)
    assert np.abs(differ[:, None] - starts[None, :]).min(axis=1).max() <= 30 * rr.preprocess_.fs  # within 30 s of a piece boundary


def test_a_fixed_length_model_takes_a_long_records_first_seconds(tmp_path, cinc2017_dir, cpsc2021_dir):
    import dataclasses

    from conftest import TINY_MODEL, TINY_TRAIN

    from ecgrhythm.config import PreprocessConfig
    from ecgrhythm.training.trainer import train

    out = tmp_path / "fixed"
    pre = PreprocessConfig(fs=100.0, fixed_length_s=30.0)
    train(
        cinc2017_dir, out, preprocess_config=pre, model_config=TINY_MODEL, train_config=dataclasses.replace(TINY_TRAIN, epochs=1), limit=32, verbose=0
    )
    fixed = RhythmClassifier.load(out)
    path = cpsc2021_dir / "data_84_1.hea"  # 8.7 minutes
    whole = fixed.predict_prepared([fixed.prepare(read_record(path))])[0]
    fed = []
    predict = fixed.predict_prepared
    fixed.predict_prepared = lambda signals, **kw: fed.extend(signals) or predict(signals, **kw)
    with open_long_record(path) as stream:
        probs, lead = classify_stream(fixed, stream, piece_s=13.0)  # the first 30 s span three pieces
    assert lead == "I" and [s.shape for s in fed] == [(3000, 1)] and np.abs(probs - whole).max() < 1e-5
    fixed.predict_prepared = predict
    header = _write_long(tmp_path, cpsc2021_dir, hours=1.05)  # streamed, not read whole
    assert should_stream(header)
    prediction, failures = classify_files(fixed, [header])
    expected = fixed.predict_records([read_record(header)])
    assert failures == [] and prediction.names == ["long"]
    assert np.abs(prediction.probabilities - expected.probabilities).max() < 1e-5


def test_pieces_are_bounded_in_samples_whatever_the_rate(clf, cpsc2021_dir, monkeypatch):
    """A piece holds at most PIECE_VALUES samples (a 100 kHz record reads shorter pieces); results do not change."""
    import ecgrhythm.inference.long_records as long_records

    assert long_records.piece_samples(600, 200.0, 2) == 120_000  # the usual rates: the seconds decide
    assert long_records.piece_samples(600, 100_000.0, 1) == long_records.PIECE_VALUES
    assert long_records.piece_samples(600, 100_000.0, 4) == long_records.PIECE_VALUES // 4
    path = cpsc2021_dir / "data_84_1.hea"
    with open_long_record(path) as stream:
        usual, _ = classify_stream(clf, stream)
    reads = []
    monkeypatch.setattr(long_records, "PIECE_VALUES", 9_000)  # 45 s of one lead at 200 Hz
    with open_long_record(path) as stream:
        read = stream.read
        stream.read = lambda a, b, *args, **kw: reads.append(b - a) or read(a, b, *args, **kw)
        small, _ = classify_stream(clf, stream)
    head, *pieces = reads  # the first minutes of both leads, for the lead's quality, then the pieces of the lead
    assert head == 36_000 and len(pieces) > 10 and max(pieces) < 20_000  # 9,000 samples and their filter margins (120,000 unbounded)
    assert np.abs(small - usual).max() < 1e-5
