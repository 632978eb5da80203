"""The suffix-to-reader table: a new format is one reader plus one registration."""

from __future__ import annotations

import numpy as np
import pytest

from ecgrhythm.records import Decoded, RecordError, find_records, read_record, record_suffixes, register_reader, registry, signal_suffixes


def _read_xyz(path, *, fs, **_options):
    """A toy format: little-endian float32 samples of one lead, in mV."""
    return Decoded(np.fromfile(path, dtype="<f4")[:, None].copy(), fs, ("toy",))


@pytest.fixture
def xyz(monkeypatch):
    monkeypatch.setattr(registry, "_READERS", dict(registry._READERS))  # the registration ends with the test
    register_reader(".xyz", _read_xyz)


def test_builtin_suffixes():
    assert record_suffixes() == (".hea", ".mat", ".csv", ".npy", ".edf", ".bdf")
    assert signal_suffixes() == (".mat", ".csv", ".npy", ".edf", ".bdf")


def test_registered_reader_serves_read_record_and_folder_discovery(xyz, cinc2017_dir, tmp_path):
    real = read_record(cinc2017_dir / "A00001.hea")
    real.signal[:, 0].astype("<f4").tofile(tmp_path / "A00001.XYZ")
    record = read_record(tmp_path / "A00001.XYZ", fs=real.fs)
    np.testing.assert_array_equal(record.signal, real.signal)
    assert (record.sig_name, record.record_name, record.fs) == (("toy",), "A00001", 300.0)
    assert find_records([tmp_path]) == [tmp_path / "A00001.XYZ"]
    (tmp_path / "RECORDS").write_text("A00001\n")
    assert find_records([tmp_path]) == [tmp_path / "A00001.XYZ"]
    with pytest.raises(RecordError, match=r"no sampling rate: give its sampling rate in Hz \(fs\)"):  # the shared boundary: no rate, no read
        read_record(tmp_path / "A00001.XYZ")
    (tmp_path / "short.xyz").write_bytes(np.zeros(10, "<f4").tobytes())
    with pytest.raises(RecordError, match="minimum is 2 s") as err:  # the shared validation
        read_record(tmp_path / "short.xyz", fs=300)
    assert "short.xyz" in str(err.value)
    with pytest.raises(RecordError, match=r"expected \.hea, \.mat, \.csv, \.npy, \.edf, \.bdf or \.xyz"):
        read_record(tmp_path / "RECORDS")


def test_unregistered_suffix_is_unsupported_and_not_discovered(cinc2017_dir, tmp_path):
    (tmp_path / "A00001.xyz").write_bytes(np.zeros(900, "<f4").tobytes())
    assert find_records([tmp_path]) == []
    with pytest.raises(RecordError, match=r"unsupported file type '\.xyz': expected \.hea, \.mat, \.csv, \.npy, \.edf or \.bdf"):
        read_record(tmp_path / "A00001.xyz", fs=300)


@pytest.mark.parametrize("suffix", ["xyz", ".", ".a.b", ".mat", ".MAT"])
def test_bad_or_taken_suffix_is_refused(xyz, suffix):
    with pytest.raises(ValueError, match="`suffix`"):
        register_reader(suffix, _read_xyz)
