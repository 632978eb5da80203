"""A CSV's first column of times is the time base, never a lead: real records written as CSVs at test time."""

import numpy as np
import pytest

import ecgrhythm
from ecgrhythm.records import RecordError, read_record

NAMES = ["A00004", "A00001"]  # A and N


@pytest.fixture(scope="module")
def shipped():
    return ecgrhythm.RhythmClassifier.load()


@pytest.fixture(scope="module")
def records(cinc2017_dir):
    return {n: read_record(cinc2017_dir / f"{n}.hea") for n in NAMES}


def _write(path, times, signal, header=None, fmt="%.6f"):
    np.savetxt(path, np.column_stack([times, signal]), delimiter=",", header=header or "", comments="", fmt=fmt)
    return path


@pytest.mark.parametrize(
    ("header", "scale"),
    [("time,ECG", 1.0), ("ms,ECG", 1000.0), ("Time (s),ECG", 1.0), ("Elapsed time [ms],ECG", 1000.0), (None, 1.0)],
)
def test_a_time_column_gives_the_rate_and_the_same_answer_as_the_signal_alone(tmp_path, records, shipped, header, scale):
    paths, expected = [], []
    for name, record in records.items():
        times = scale * np.arange(record.n_samples) / record.fs
        paths.append(_write(tmp_path / f"{name}.csv", times, record.signal, header))
        expected.append(record)
    read = read_record(paths[0])
    assert read.fs == pytest.approx(300.0) and read.n_leads == 1 and read.sig_name == (("ECG",) if header else ("lead1",))
    np.testing.assert_allclose(read.signal, records[NAMES[0]].signal, atol=1e-6)
    got, alone = shipped.predict_records(paths), shipped.predict_records(expected)
    assert got.labels == alone.labels == ["A", "N"]
    np.testing.assert_allclose(got.probabilities, alone.probabilities, atol=1e-5)
    assert read_record(paths[0], fs=300).fs == 300  # the caller's rate, agreeing, is taken


def test_a_time_column_refuses_a_disagreeing_fs_naming_both(tmp_path, records):
    record = records["A00004"]
    path = _write(tmp_path / "a.csv", np.arange(record.n_samples) / record.fs, record.signal, "t,ECG")
    with pytest.raises(RecordError, match=r"a.csv: the time column gives a sampling rate of 300 Hz but fs=500 Hz was given"):
        read_record(path, fs=500)


def test_uneven_times_are_refused(tmp_path, records):
    record = records["A00004"]
    times = np.arange(record.n_samples) / record.fs
    times[4000:] += 0.5  # a gap: samples missing
    path = _write(tmp_path / "gap.csv", times, record.signal, "time,ECG")
    with pytest.raises(RecordError, match=r"gap.csv: the time column is not evenly spaced \(rows 4000 to 4001 are 0.503333 apart"):
        read_record(path)
    path = _write(tmp_path / "gap_no_header.csv", times, record.signal)  # without a header: not a time column, so fs is needed
    with pytest.raises(RecordError, match="no sampling rate"):
        read_record(path)


def test_sample_numbers_are_dropped_and_leads_are_never_taken_for_time(tmp_path, records, cinc2021_dir):
    record = records["A00004"]
    path = _write(tmp_path / "n.csv", np.arange(record.n_samples), record.signal, fmt="%.6g")
    read = read_record(path, fs=300)
    assert read.n_leads == 1 and read.fs == 300
    np.testing.assert_allclose(read.signal, record.signal, atol=1e-5)
    twelve = read_record(sorted(cinc2021_dir.glob("*.hea"))[0])
    np.savetxt(tmp_path / "leads.csv", twelve.signal[:, :2], delimiter=",", fmt="%.5f")
    assert read_record(tmp_path / "leads.csv", fs=500).n_leads == 2  # two leads, neither a time column
    with pytest.raises(RecordError, match="only column holds times"):
        np.savetxt(tmp_path / "t.csv", np.arange(1000) / 300, header="time", comments="")
        read_record(tmp_path / "t.csv")


@pytest.mark.parametrize(("header", "scale"), [("time (us),ECG", 1e6), ("usec,ECG", 1e6), ("Time [ns],ECG", 1e9)])
def test_time_columns_in_microseconds_and_nanoseconds_give_the_rate(tmp_path, records, header, scale):
    record = records["A00004"]
    read = read_record(_write(tmp_path / "a.csv", scale * np.arange(record.n_samples) / record.fs, record.signal, header, fmt="%.1f"))
    assert read.fs == pytest.approx(300.0) and read.sig_name == ("ECG",)


def test_a_time_column_in_an_unknown_unit_or_decreasing_is_refused_by_name(tmp_path, records):
    record = records["A00004"]
    times = np.arange(record.n_samples) / record.fs
    with pytest.raises(RecordError, match=r"min.csv: the time column 'time' is in 'min', not a unit of time this reader knows"):
        read_record(_write(tmp_path / "min.csv", times / 60, record.signal, "time (min),ECG", fmt="%.8f"))
    with pytest.raises(RecordError, match=r"down.csv: the time column does not increase \(from 29.9967 to 0\)"):
        read_record(_write(tmp_path / "down.csv", times[::-1], record.signal, "time,ECG"))
