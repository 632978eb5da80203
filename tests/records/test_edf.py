"""EDF, EDF+ and BDF files written with pyedflib from real WFDB records: the same signal, label and episodes, hostile headers refused."""

import datetime
import warnings

import numpy as np
import pytest
from memory import peak_memory
from pyedflib import highlevel

import ecgrhythm
from ecgrhythm.episodes.finder import stream_episodes
from ecgrhythm.episodes.params import EpisodeParams
from ecgrhythm.inference.streaming import classify_files
from ecgrhythm.records import RecordError, find_records, read_record
from ecgrhythm.records.core import Annotation
from ecgrhythm.records.edf_reader import open_edf, read_edf
from ecgrhythm.records.long_records import STREAM_ABOVE_S, open_long_record, should_stream

START = datetime.datetime(2021, 3, 4, 22, 11, 12)
NOTES = [[1.5, 2.0, "AF onset"], [10.0, -1, "electrode check"]]
# (unit, per mV, digital range) of the two formats written: EDF 16-bit samples in uV, BDF 24-bit samples in mV.
FORMATS = {"edf": ("uV", 1000.0, 1 << 15), "bdf": ("mV", 1.0, 1 << 23)}


@pytest.fixture(scope="module")
def clf():
    return ecgrhythm.RhythmClassifier.load()


def _write(path, signal, fs, names, *, extra=(), span_mv=10.0):
    """Write `signal` (mV, whole seconds of it) as an EDF+ or BDF+ file by `path`'s suffix, with `extra` (label, unit, fs, samples) signals."""
    unit, per_mv, limit = FORMATS[path.suffix[1:]]
    n = len(signal) // int(fs) * int(fs)
    headers = [highlevel.make_signal_header(name, unit, fs, -span_mv * per_mv, span_mv * per_mv, -limit, limit - 1) for name in names]
    data = [signal[:n, i].astype(np.float64) * per_mv for i in range(len(names))]
    for label, dim, rate, samples in extra:
        headers.append(highlevel.make_signal_header(label, dim, rate, -10_000, 10_000, -limit, limit - 1))
        data.append(samples)
    header = highlevel.make_header(startdate=START)
    header["annotations"] = NOTES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyedflib's notes on rounding a physical range to 8 characters
        highlevel.write_edf(str(path), data, headers, header)
    return path, n


@pytest.mark.parametrize("suffix", ["edf", "bdf"])
def test_a_real_two_lead_record_reads_back_within_the_quantisation(tmp_path, cpsc2021_dir, suffix):
    wfdb = read_record(cpsc2021_dir / "data_84_1.hea")
    path, n = _write(tmp_path / f"data_84_1.{suffix}", wfdb.signal, wfdb.fs, wfdb.sig_name)
    record = read_record(path)
    step = 20.0 / (2 * FORMATS[suffix][2] - 1)  # mV per digital unit over the written +-10 mV
    assert record.sig_name == ("I", "II") and record.fs == 200.0 and record.n_samples == n == 103_800
    assert np.abs(record.signal - wfdb.signal[:n]).max() <= step * 1.01
    decoded = read_edf(path)
    assert decoded.start_time == START
    assert decoded.annotations == (Annotation(1.5, 2.0, "AF onset"), Annotation(10.0, None, "electrode check"))
    assert find_records([tmp_path]) == [path]  # folders take the format


def test_only_the_ecg_signals_are_read_and_units_are_checked(tmp_path, cinc2017_dir):
    wfdb = read_record(cinc2017_dir / "A00004.hea")
    n = wfdb.n_samples // 300 * 300
    resp = np.sin(np.arange(n // 12) / 5.0) * 100
    oxygen = np.full(n, 97.0)
    path, _ = _write(tmp_path / "mixed.edf", wfdb.signal, 300.0, ["ECG II"], extra=[("Resp", "Ohm", 25, resp), ("SpO2", "%", 300, oxygen)])
    record = read_record(path)
    assert record.sig_name == ("ECG II",) and record.fs == 300.0
    assert np.abs(record.signal[:, 0] - wfdb.signal[:n, 0]).max() < 1e-3
    # Unlabelled signals are all read at their common rate, and then a unit that is not a voltage is refused.
    unlabelled, _ = _write(tmp_path / "unlabelled.edf", wfdb.signal, 300.0, ["chan1"], extra=[("chan2", "%", 300, oxygen)])
    with pytest.raises(RecordError, match=r"unlabelled\.edf: signal 'chan2' has the physical dimension '%'; expected uV, mV or V"):
        read_record(unlabelled)
    # ECG leads at two rates: those of the most common rate.
    two = np.concatenate([wfdb.signal[:n], wfdb.signal[:n]], axis=1)
    rates, _ = _write(tmp_path / "rates.edf", two, 300.0, ["I", "II"], extra=[("V1", "uV", 150, wfdb.signal[:n:2, 0] * 1000)])
    assert read_record(rates).sig_name == ("I", "II")


def test_the_classifier_gives_the_same_label_on_the_edf_as_on_the_wfdb_record(tmp_path, cinc2017_dir, clf):
    header = cinc2017_dir / "A00004.hea"  # AF, 30 s at 300 Hz
    wfdb = read_record(header)
    assert wfdb.n_samples % 300 == 0
    path, _ = _write(tmp_path / "A00004.edf", wfdb.signal, 300.0, ["ECG"])
    prediction = clf.predict_records([header, path])
    assert prediction.labels == ["A", "A"]
    np.testing.assert_allclose(prediction.probabilities[1], prediction.probabilities[0], atol=0.01)


def test_the_episodes_of_a_cpsc2021_edf_match_the_wfdb_records(tmp_path, cpsc2021_dir, clf):
    header = cpsc2021_dir / "data_101_8.hea"  # paroxysmal AF, 121 s
    wfdb = read_record(header)
    path, _ = _write(tmp_path / "data_101_8.bdf", wfdb.signal, wfdb.fs, wfdb.sig_name)
    expected = ecgrhythm.record_episodes(clf, wfdb)
    got = ecgrhythm.record_episodes(clf, read_record(path))
    window = EpisodeParams().window_s
    assert got.lead == expected.lead == "I" and [e.label for e in got.episodes] == [e.label for e in expected.episodes]
    assert any(e.label == "A" for e in got.episodes) and abs(got.af_burden - expected.af_burden) < 0.1
    for a, b in zip(got.episodes, expected.episodes):
        assert abs(a.start_s - b.start_s) <= window and abs(a.end_s - b.end_s) <= window
    with open_long_record(path) as stream:  # the episode finder reads an EDF/BDF in pieces as it does a WFDB record
        streamed = stream_episodes(clf, stream, piece_s=37.0)
    assert [(e.label, round(e.start_s, 6), round(e.end_s, 6)) for e in streamed.episodes] == [
        (e.label, round(e.start_s, 6), round(e.end_s, 6)) for e in got.episodes
    ]


def test_an_edf_over_an_hour_is_read_and_classified_in_pieces_with_bounded_memory(tmp_path, cpsc2021_dir, clf):
    pieces = [read_record(p).signal for p in sorted(cpsc2021_dir.glob("*.hea"))]
    n = round(1.1 * 3600) * 200
    tiled = np.concatenate(pieces * (n // sum(map(len, pieces)) + 1))[:n]
    path, _ = _write(tmp_path / "holter.edf", tiled, 200.0, ["I", "II"], span_mv=20.0)
    assert should_stream(path) and n / 200 > STREAM_ABOVE_S and not should_stream(tmp_path / "missing.edf")
    whole_bytes = n * 2 * 4  # the record read whole as float32
    with peak_memory() as peak:
        with open_long_record(path) as stream:
            total = sum(float(stream.read(i, min(n, i + 12_000)).sum(dtype=np.float64)) for i in range(0, n, 12_000))  # 1 min pieces
    assert peak[0] < whole_bytes / 10, f"peak {peak[0] / 1e6:.1f} MB while reading a {whole_bytes / 1e6:.1f} MB record in pieces"
    assert abs(total - read_record(path).signal.sum(dtype=np.float64)) < 1e-3 * n
    prediction, failures = classify_files(clf, [path])  # the streamed path: should_stream above
    assert failures == [] and prediction.names == ["holter"] and prediction.leads == ["I"]
    expected = clf.predict_records([read_record(path)])  # 1.1 h still fits a whole read
    assert np.abs(prediction.probabilities - expected.probabilities).max() < 1e-5 and prediction.labels == expected.labels
    expected = clf.predict_records([read_record(path)])  # 1.1 h still fits a whole read
    assert np.abs(prediction.probabilities - expected.probabilities).max() < 1e-5 and prediction.labels == expected.labels


def test_a_file_over_24_hours_is_read_in_pieces_only(tmp_path):
    n = 25 * 3600 * 20  # 25 h at 20 Hz, one lead
    t = np.arange(n) / 20
    path, _ = _write(tmp_path / "day.bdf", np.sin(2 * np.pi * t)[:, None], 20.0, ["ECG"], span_mv=2.0)
    with pytest.raises(RecordError, match=r"day\.bdf: record is 25\.0 h long .* or EDF/BDF files"):
        read_record(path)
    assert should_stream(path)
    with open_edf(path) as stream:
        tail = stream.read(n - 100, n, [0])
        assert stream.n_samples == n and stream.start_time == START and tail.shape == (100, 1) and tail.dtype == np.float32
        np.testing.assert_allclose(tail[:, 0], np.sin(2 * np.pi * t[-100:]), atol=1e-5)
        with pytest.raises(RecordError, match=r"day\.bdf \(samples .*\): cannot read the signal: the range is outside"):
            stream.read(n - 10, n + 10, [0])


def _sparse_edf(path, fs: int, n_records: int):
    """A plain EDF of one ECG lead in uV, `n_records` data records of 1 s at `fs` Hz, sparse: its samples take no disk."""
    signal = [("ECG", 16), ("", 80), ("uV", 8), ("-3200", 8), ("3200", 8), ("-32768", 8), ("32767", 8), ("", 80), (str(fs), 8), ("", 32)]
    fixed = [("0", 8), ("X X X X", 80), ("Startdate 04-MAR-2021 X X X", 80), ("04.03.21", 8), ("22.11.12", 8), ("512", 8), ("", 44)]
    fixed += [(str(n_records), 8), ("1", 8), ("1", 4)]
    with open(path, "wb") as f:
        f.write("".join(value.ljust(width) for value, width in fixed + signal).encode())
        f.truncate(512 + n_records * fs * 2)


def test_a_high_rate_sparse_edf_under_an_hour_is_refused_whole_and_read_in_pieces(tmp_path):
    path = tmp_path / "fast.edf"
    _sparse_edf(path, 100_000, 3000)  # 50 min at 100 kHz: 600 MB declared, none on disk; 1.2 GB as float32
    with peak_memory() as peak, pytest.raises(RecordError, match=r"fast\.edf: reading the file whole takes 300000000 samples of 1 leads"):
        read_record(path)
    assert peak[0] < 1 << 20
    assert should_stream(path)  # classify and episodes read it in pieces
    with peak_memory() as peak, open_long_record(path) as stream:
        piece = stream.read(0, 1_000_000)
    assert piece.shape == (1_000_000, 1) and np.isfinite(piece).all() and peak[0] < 40 << 20


def _patch(raw: bytes, offset: int, text: str) -> bytes:
    return raw[:offset] + text.encode().ljust(8)[: max(8, len(text))] + raw[offset + max(8, len(text)) :]


# Offsets in a 3-signal header (ECG, ECG, annotations): signal fields start at 256, each field holds 3 values.
_NS, _SIG = 3, 256
_PHYSICAL_MAX = _SIG + _NS * (16 + 80 + 8 + 8)
_DIGITAL_MIN = _PHYSICAL_MAX + _NS * 8
_SAMPLES = _SIG + _NS * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
HOSTILE = {
    "records": (lambda raw: _patch(raw, 236, "99999999"), r"declares 99999999 data records of .* but the file holds \d+ bytes of data \(truncated"),
    "unfinished": (lambda raw: _patch(raw, 236, "-1"), r"declares -1 data records \(a recording never closed\)"),
    "samples": (lambda raw: _patch(raw, _SAMPLES, "9999999"), r"declares 121 data records of .* \(truncated or corrupt\)"),
    "negative": (lambda raw: _patch(raw, _SAMPLES, "-200"), r"samples per data record of signal 1 is -200; expected 1 to"),
    "text": (lambda raw: _patch(raw, _SAMPLES, "2e2"), r"samples per data record of signal 1 is '2e2', not an integer"),
    "truncated": (lambda raw: raw[:-1000], r"but the file holds \d+ bytes of data \(truncated or corrupt\)"),
    "header": (lambda raw: raw[:600], r"shorter than its 1024-byte header \(truncated\)"),
    "order": (lambda raw: _patch(raw, _DIGITAL_MIN + _NS * 8, "-32768"), r"signal 1 \('I'\) has the digital range -32768 to -32768; the minimum"),
    "physical": (lambda raw: _patch(raw, _PHYSICAL_MAX, "-10000"), r"signal 1 \('I'\) has the physical range -10000 to -10000; the two must differ"),
    "date": (lambda raw: _patch(raw, 168, "99.99.99"), r"pyedflib cannot read the file"),
    "digital": (lambda raw: _patch(raw, _DIGITAL_MIN, "40000"), r"digital minimum of signal 1 \('I'\) is 40000; expected -32768 to 32767"),
    "duration": (lambda raw: _patch(raw, 244, "0"), r"data record duration of 0 s"),
    "gaps": (lambda raw: _patch(raw, 192, "EDF+D"), r"discontinuous EDF\+D files .* are not supported"),
    "magic": (lambda raw: b"1" + raw[1:], r"not an EDF or BDF file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_headers_are_refused_naming_the_file_before_reading(tmp_path, cpsc2021_dir, case):
    wfdb = read_record(cpsc2021_dir / "data_101_8.hea")
    path, _ = _write(tmp_path / "good.edf", wfdb.signal, wfdb.fs, wfdb.sig_name)
    patch, reason = HOSTILE[case]
    bad = tmp_path / "bad.edf"
    bad.write_bytes(patch(path.read_bytes()))
    with peak_memory() as peak:
        with pytest.raises(RecordError, match=r"bad\.edf: .*(?:" + reason + ")"):
            read_record(bad)
    assert peak[0] < 1 << 20  # refused from the header, before any samples are read
    assert not should_stream(bad)
