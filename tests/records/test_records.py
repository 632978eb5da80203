"""Reading records: real PhysioNet data, a corpus of malformed files, folders, labels and fuzzing.

Every malformed file is made here in `tmp_path`; each must raise a
`RecordError` whose message names the file. Property-based tests write
arbitrary (and mutated valid) bytes to `.hea`/`.mat`/`.csv`/`.npy` files: a
reader returns a valid record or raises `RecordError`, nothing else.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory import peak_memory

from ecgrhythm.records import EcgRecord, RecordError, find_records, read_record, read_reference, validate_signal

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
F32_MAX = float(np.finfo(np.float32).max)


def _header_fields(path: Path) -> list[list[str]]:
    """Non-comment lines of a WFDB header, split into fields (parsed here, independently of the reader)."""
    return [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _copy_record(src_dir: Path, name: str, dst_dir: Path, header_as=None, signal_as=None) -> Path:
    """Copy a `.hea` + `.mat` pair; return the header's new path."""
    header = dst_dir / (header_as or f"{name}.hea")
    shutil.copyfile(src_dir / f"{name}.hea", header)
    shutil.copyfile(src_dir / f"{name}.mat", dst_dir / (signal_as or f"{name}.mat"))
    return header


# --------------------------------------------------------------------------- real records


def test_cinc2017_header_matches_raw_mat_values(cinc2017_dir):
    record = read_record(cinc2017_dir / "A00001.hea")
    val = scipy.io.loadmat(cinc2017_dir / "A00001.mat")["val"]  # (1, n) int16, 1000 units per mV
    fields = _header_fields(cinc2017_dir / "A00001.hea")
    assert record.signal.dtype == np.float32 and record.signal.shape == (val.shape[1], 1)
    assert record.fs == float(fields[0][2]) and record.n_samples == int(fields[0][3])
    assert record.sig_name == (fields[1][-1],) and record.record_name == "A00001"
    np.testing.assert_allclose(record.signal[:, 0], val[0] / 1000.0, rtol=1e-6, atol=1e-6)


def test_mat_beside_its_header_reads_through_the_header(cinc2017_dir):
    via_header = read_record(cinc2017_dir / "A00002.hea")
    via_mat = read_record(cinc2017_dir / "A00002.mat")
    np.testing.assert_array_equal(via_header.signal, via_mat.signal)
    assert via_mat.fs == via_header.fs


def test_bare_mat_needs_fs_and_reads_with_it(cinc2017_dir, tmp_path):
    shutil.copyfile(cinc2017_dir / "A00003.mat", tmp_path / "A00003.mat")
    with pytest.raises(RecordError, match=r"no sampling rate: give its sampling rate in Hz \(fs\)") as err:
        read_record(tmp_path / "A00003.mat")
    assert "A00003.mat" in str(err.value)
    bare = read_record(tmp_path / "A00003.mat", fs=300)
    np.testing.assert_array_equal(bare.signal, read_record(cinc2017_dir / "A00003.hea").signal)
    assert bare.fs == 300.0 and bare.sig_name == ("lead1",)


def test_cinc2021_twelve_leads_with_names_and_dx(cinc2021_dir):
    header = sorted(cinc2021_dir.glob("*.hea"))[0]
    record = read_record(header)
    fields = _header_fields(header)
    assert record.n_leads == int(fields[0][1]) == 12
    assert record.sig_name == tuple(line[-1] for line in fields[1:])
    assert record.fs == float(fields[0][2]) and record.n_samples == int(fields[0][3])
    dx = [line[1:].strip() for line in header.read_text().splitlines() if line.startswith("# Dx")]
    assert dx and dx[0] in record.comments


def test_cpsc2021_dat_matches_manual_format16_decoding(cpsc2021_dir):
    header = sorted(cpsc2021_dir.glob("*.hea"))[0]
    record = read_record(header)
    fields = _header_fields(header)
    n_sig, n = int(fields[0][1]), int(fields[0][3])
    digital = np.fromfile(cpsc2021_dir / fields[1][0], dtype="<i2")[: n * n_sig].reshape(n, n_sig)
    for i, line in enumerate(fields[1:]):
        gain, baseline = line[2].split("/")[0].rstrip(")").split("(")
        expected = (digital[:, i] - float(baseline)) / float(gain)
        np.testing.assert_allclose(record.signal[:, i], expected, rtol=1e-5, atol=1e-5)
    assert record.fs == float(fields[0][2]) and record.sig_name == tuple(line[-1] for line in fields[1:])
    # The .dat path with its header beside it reads the same record.
    np.testing.assert_array_equal(read_record(cpsc2021_dir / fields[1][0]).signal, record.signal)


def test_upper_case_extensions_spaces_and_non_ascii_names(cinc2017_dir, tmp_path):
    reference = read_record(cinc2017_dir / "A00004.hea")
    header = _copy_record(cinc2017_dir, "A00004", tmp_path, header_as="Ékg record 4.HEA", signal_as="A00004.MAT")
    record = read_record(header)
    np.testing.assert_array_equal(record.signal, reference.signal)
    assert record.record_name == "Ékg record 4"
    with open(tmp_path / "Ärger 1.NPY", "wb") as f:  # np.save would append ".npy"
        np.save(f, reference.signal)
    (tmp_path / "ß data.CSV").write_text("\n".join(f"{v:.6f}" for v in reference.signal[:, 0]), encoding="utf-8")
    for name in ("Ärger 1.NPY", "ß data.CSV"):
        np.testing.assert_allclose(read_record(tmp_path / name, fs=300).signal, reference.signal, atol=1e-6)


def test_symlinked_record_reads_and_folder_link_fails(cinc2017_dir, tmp_path):
    (tmp_path / "link.hea").symlink_to(cinc2017_dir / "A00001.hea")
    (tmp_path / "A00001.mat").symlink_to(cinc2017_dir / "A00001.mat")
    np.testing.assert_array_equal(read_record(tmp_path / "link.hea").signal, read_record(cinc2017_dir / "A00001.hea").signal)
    (tmp_path / "dir.npy").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "dangling.npy").symlink_to(tmp_path / "nowhere.npy")
    for name, reason in (("dir.npy", "folder"), ("dangling.npy", "broken symbolic link")):
        with pytest.raises(RecordError, match=reason) as err:
            read_record(tmp_path / name, fs=300)
        assert name in str(err.value)


def test_wfdb_format_212_written_by_wfdb_reads_back(tmp_path):
    wfdb = pytest.importorskip("wfdb")
    t = np.arange(2000) / 250.0
    signal = np.stack([np.sin(2 * np.pi * 1.3 * t), 0.5 * np.cos(2 * np.pi * 0.7 * t)], axis=1)
    wfdb.wrsamp(
        "rec212",
        fs=250,
        units=["mV", "mV"],
        sig_name=["I", "II"],
        p_signal=signal,
        fmt=["212", "212"],
        adc_gain=[200.0, 200.0],
        baseline=[0, 0],
        write_dir=str(tmp_path),
    )
    record = read_record(tmp_path / "rec212.hea")
    assert record.fs == 250.0 and record.sig_name == ("I", "II") and record.signal.shape == (2000, 2)
    np.testing.assert_allclose(record.signal, signal, atol=1 / 200.0)


def test_units_are_converted_to_millivolts(tmp_path):
    digital = (np.sin(np.arange(900) / 10) * 1000).astype("<i2")
    digital.tofile(tmp_path / "uv.dat")
    (tmp_path / "uv.hea").write_text("uv 1 300 900\nuv.dat 16 1(0)/uV 16 0 0 0 0 I\n")
    np.testing.assert_allclose(read_record(tmp_path / "uv.hea").signal[:, 0], digital / 1000.0, rtol=1e-6)


@pytest.mark.parametrize(
    "signal",
    [
        np.full((900, 1), F32_MAX, np.float32),
        np.where(np.arange(1200) % 2, F32_MAX, -F32_MAX).astype(np.float32)[:, None],
        np.zeros((600, 3), np.float32),
    ],
    ids=["max", "alternating-max", "flat"],
)
def test_extreme_but_valid_signals_read(tmp_path, signal):
    np.save(tmp_path / "x.npy", signal)
    record = read_record(tmp_path / "x.npy", fs=300)
    np.testing.assert_array_equal(record.signal, signal)


def test_hours_long_npy_is_read_without_extra_copies(tmp_path):
    n = 300 * 3600 * 2  # two hours at 300 Hz
    np.save(tmp_path / "long.npy", np.zeros((n, 1), dtype=np.float32))
    with peak_memory() as peak:
        record = read_record(tmp_path / "long.npy", fs=300)
    assert record.n_samples == n and record.duration_s == 7200
    assert not isinstance(record.signal, np.memmap) and record.signal.flags.owndata
    assert peak[0] < 1.5 * record.signal.nbytes  # one float32 array, not a full read plus a conversion


def test_validate_signal_accepts_numpy_scalars_and_rejects_bad_rates():
    validate_signal(np.zeros((600, 1), np.float32), np.float32(300), source="s")
    for fs in (0, -300, float("nan"), float("inf"), "300", True, 1e-300):
        with pytest.raises(RecordError, match="sampling rate"):
            validate_signal(np.zeros((600, 1), np.float32), fs, source="s")


# --------------------------------------------------------------------------- malformed corpus


def _mat_v4(path, body: bytes, mrows: int, ncols: int, mtype: int = 30):
    """A MATLAB v4 matrix 'val' with hand-set dimensions (type 30: int16)."""
    path.write_bytes(struct.pack("<5i", mtype, mrows, ncols, 0, 4) + b"val\0" + body)


def _npy_header(path, shape, descr="<f4", body=b"\0" * 64):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    path.write_bytes(buf.getvalue() + body)


def _wfdb(path, header: str, dat_bytes: int | None = 1800, dat_name="r.dat"):
    if dat_bytes is not None:
        (path.parent / dat_name).write_bytes((np.arange(dat_bytes // 2) % 100).astype("<i2").tobytes())
    path.write_text(header, encoding="utf-8")


def _truncated_mat(path):
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"val": np.arange(1800, dtype=np.int16)[None]})
    path.write_bytes(buf.getvalue()[:200])


def _savemat(**variables):
    def make(path):
        scipy.io.savemat(path, variables)

    return make


ROW = "r.dat 16 200 16 0 0 0 0 I\n"
MALFORMED = {
    # empty and garbage files of every kind
    "empty.hea": lambda p: p.write_bytes(b""),
    "empty.mat": lambda p: p.write_bytes(b""),
    "empty.csv": lambda p: p.write_bytes(b""),
    "empty.npy": lambda p: p.write_bytes(b""),
    "garbage.hea": lambda p: p.write_bytes(bytes(range(256)) * 4),
    "garbage.mat": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    "garbage.csv": lambda p: p.write_bytes(np.random.default_rng(1).bytes(4096)),
    "garbage.npy": lambda p: p.write_bytes(np.random.default_rng(2).bytes(4096)),
    "comments-only.hea": lambda p: p.write_text("# nothing but a comment\n"),
    "whitespace.csv": lambda p: p.write_text("\n   \n\t\n# a comment\n"),
    "nul.csv": lambda p: p.write_bytes(b"I,II\n" + b"0.1,0\x002\n" * 1000),
    # .mat contents
    "truncated.mat": _truncated_mat,
    "no-val.mat": _savemat(x=np.zeros((1, 900), np.int16)),
    "struct-val.mat": _savemat(val={"a": np.zeros(900)}),
    "cell-val.mat": _savemat(val=np.array([np.zeros(900), "a"], dtype=object)),
    "char-val.mat": _savemat(val="not a signal"),
    "complex-val.mat": _savemat(val=np.ones((1, 900)) * (1 + 2j)),
    "logical-val.mat": _savemat(val=np.ones((1, 900), dtype=bool)),
    "3d-val.mat": _savemat(val=np.zeros((2, 900, 2))),
    "empty-val.mat": _savemat(val=np.zeros((0, 0))),
    "nan-val.mat": _savemat(val=np.r_[np.zeros(899), np.nan][None]),
    "huge-dims.mat": lambda p: _mat_v4(p, b"\0" * 64, 1, 2**30),
    "v73.mat": lambda p: p.write_bytes(b"MATLAB 7.3 MAT-file".ljust(116) + b"\0" * 8 + b"\x00\x02IM" + b"\0" * 512),
    "short.mat": _savemat(val=np.zeros((1, 300), np.int16)),
    # .csv contents
    "text.csv": lambda p: p.write_text("I\n" + "0.1\n" * 500 + "abc\n" + "0.2\n" * 500),
    "missing-values.csv": lambda p: p.write_text("I,II\n" + "0.1,0.2\n" * 500 + "0.1,\n" + "0.1,0.2\n" * 500),
    "ragged.csv": lambda p: p.write_text("0.1,0.2\n" * 500 + "0.1,0.2,0.3\n" + "0.1,0.2\n" * 500),
    "non-utf8.csv": lambda p: p.write_bytes(b"I\xff\xfe\n" + b"0.1\n" * 1000),
    "nan.csv": lambda p: p.write_text("0.1\n" * 500 + "nan\n" + "0.1\n" * 500),
    "inf.csv": lambda p: p.write_text("0.1\n" * 500 + "inf\n" + "0.1\n" * 500),
    "overflow.csv": lambda p: p.write_text("0.1\n" * 500 + "1e300\n" + "0.1\n" * 500),
    "header-only.csv": lambda p: p.write_text("I,II,III\n"),
    "header-mismatch.csv": lambda p: p.write_text("I,II,III\n" + "0.1,0.2\n" * 1000),
    "too-many-columns.csv": lambda p: p.write_text(",".join(f"c{i}" for i in range(100)) + "\n" + ",".join(["0"] * 100) + "\n"),
    "short.csv": lambda p: p.write_text("0.1\n" * 100),
    # .npy contents
    "object.npy": lambda p: np.save(p, np.array([1, "a", None], dtype=object), allow_pickle=True),
    "0d.npy": lambda p: np.save(p, np.float32(1.0)),
    "3d.npy": lambda p: np.save(p, np.zeros((900, 2, 2), np.float32)),
    "empty-array.npy": lambda p: np.save(p, np.zeros((0,), np.float32)),
    "empty-leads.npy": lambda p: np.save(p, np.zeros((900, 0), np.float32)),
    "complex.npy": lambda p: np.save(p, np.ones(900, np.complex64)),
    "bool.npy": lambda p: np.save(p, np.ones(900, bool)),
    "structured.npy": lambda p: np.save(p, np.zeros(900, dtype=[("a", "<f4"), ("b", "<i2")])),
    "strings.npy": lambda p: np.save(p, np.array(["1.0"] * 900)),
    "datetime.npy": lambda p: np.save(p, np.arange(900).astype("datetime64[s]")),
    "subarray.npy": lambda p: _npy_header(p, (900,), descr=[("", "<f4", (2,))], body=b"\0" * 7200),
    "huge-shape.npy": lambda p: _npy_header(p, (10**12,)),
    "truncated.npy": lambda p: _npy_header(p, (900,), body=b"\0" * 1000),
    "trailing.npy": lambda p: _npy_header(p, (900,), body=b"\0" * 4000),
    "nan.npy": lambda p: np.save(p, np.r_[np.zeros(899), np.nan].astype(np.float32)),
    "inf.npy": lambda p: np.save(p, np.r_[np.zeros(899), -np.inf].astype(np.float32)),
    "beyond-float32.npy": lambda p: np.save(p, np.r_[np.zeros(899), 1e300]),
    "too-many-leads.npy": lambda p: np.save(p, np.zeros((1000, 100), np.float32)),
    "short.npy": lambda p: np.save(p, np.zeros(599, np.float32)),
    # WFDB headers (r.dat holds 900 format-16 samples)
    "fs-zero.hea": lambda p: _wfdb(p, "r 1 0 900\n" + ROW),
    "fs-negative.hea": lambda p: _wfdb(p, "r 1 -300 900\n" + ROW),
    "fs-nan.hea": lambda p: _wfdb(p, "r 1 nan 900\n" + ROW),
    "fs-text.hea": lambda p: _wfdb(p, "r 1 abc 900\n" + ROW),
    "fs-tiny.hea": lambda p: _wfdb(p, "r 1 1e-300 900\n" + ROW),
    "no-fs.hea": lambda p: _wfdb(p, "r 1\n" + ROW),
    "huge-length.hea": lambda p: _wfdb(p, "r 1 300 1000000000000\n" + ROW),
    "longer-than-file.hea": lambda p: _wfdb(p, "r 1 300 1000\n" + ROW),
    "shorter-than-file.hea": lambda p: _wfdb(p, "r 1 300 700\n" + ROW),
    "zero-length.hea": lambda p: _wfdb(p, "r 1 300 0\n" + ROW),
    "missing-signal.hea": lambda p: _wfdb(p, "r 1 300 900\n" + ROW, dat_bytes=None),
    "traversal.hea": lambda p: _wfdb(p, "r 1 300 900\n../r.dat 16 200 16 0 0 0 0 I\n"),
    "absolute.hea": lambda p: _wfdb(p, "r 1 300 900\n/etc/passwd 16 200 16 0 0 0 0 I\n"),
    "dotdot.hea": lambda p: _wfdb(p, "r 1 300 900\n.. 16 200 16 0 0 0 0 I\n"),
    "absurd-nsig.hea": lambda p: _wfdb(p, "r 100000 300 900\n" + ROW),
    "nsig-zero.hea": lambda p: _wfdb(p, "r 0 300 900\n"),
    "fewer-signal-lines.hea": lambda p: _wfdb(p, "r 3 300 900\n" + ROW),
    "format-999.hea": lambda p: _wfdb(p, "r 1 300 900\nr.dat 999 200 16 0 0 0 0 I\n"),
    "format-0.hea": lambda p: _wfdb(p, "r 1 300 900\nr.dat 0 200 16 0 0 0 0 I\n"),
    "huge-spf.hea": lambda p: _wfdb(p, "r 1 300 900\nr.dat 16x1000000 200 16 0 0 0 0 I\n"),
    "offset-beyond-file.hea": lambda p: _wfdb(p, "r 1 300 900\nr.dat 16+99999999 200 16 0 0 0 0 I\n"),
    "gain-inf.hea": lambda p: _wfdb(p, "r 1 300 900\nr.dat 16 1e400 16 0 0 0 0 I\n"),
    "multi-segment.hea": lambda p: _wfdb(p, "r/2 1 300 900\nseg1 450\nseg2 450\n"),
    "binary.hea": lambda p: p.write_bytes(b"r 1 300 900\n\0\0\0"),
    "huge.hea": lambda p: p.write_bytes(b"r 1 300 900\n" + b"# padding\n" * 200_000),
    "signal-is-header.hea": lambda p: _wfdb(p, "r 1 300 900\nx.hea 16 200 16 0 0 0 0 I\n", dat_name="x.hea"),
    "short-record.hea": lambda p: _wfdb(p, "r 1 300 300\n" + ROW, dat_bytes=600),
    "signal-is-folder.hea": lambda p: (p.parent / "d.dat").mkdir() or p.write_text("r 1 300 900\nd.dat 16 200 16 0 0 0 0 I\n"),
    # not records at all
    "unsupported.txt": lambda p: p.write_text("0.1\n" * 1000),
    "orphan.dat": lambda p: p.write_bytes(b"\0" * 1800),
    "missing.npy": lambda p: None,
    "folder.csv": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_file_raises_record_error_naming_it(tmp_path, name):
    path = tmp_path / name
    MALFORMED[name](path)
    with pytest.raises(RecordError) as err:
        read_record(path, fs=None if path.suffix == ".hea" else 300)
    assert name in str(err.value) and err.value.reason


@pytest.mark.parametrize(
    "name, reason",
    [
        ("fs-zero.hea", "invalid sampling rate"),
        ("fs-text.hea", "not a number"),
        ("no-fs.hea", r"gives no sampling rate: give its sampling rate in Hz \(fs\)"),
        ("huge-length.hea", "maximum is 24 h"),
        ("longer-than-file.hea", "declares"),
        ("shorter-than-file.hea", "holds"),
        ("missing-signal.hea", "not found"),
        ("traversal.hea", "plain file name"),
        ("absolute.hea", "plain file name"),
        ("absurd-nsig.hea", "signals"),
        ("format-999.hea", "format '999'"),
        ("no-val.mat", "no variable 'val'"),
        ("struct-val.mat", "struct"),
        ("complex-val.mat", "complex"),
        ("v73.mat", r"v7\.3"),
        ("non-utf8.csv", "UTF-8"),
        ("ragged.csv", "ragged"),
        ("nan.npy", "NaN"),
        ("object.npy", "object"),
        ("huge-shape.npy", "declares shape"),
        ("short.csv", "minimum"),
        ("3d.npy", "shape"),
        ("orphan.dat", r"\.hea header"),
        ("header-only.csv", "^[^(]*header row but no samples$"),
        ("whitespace.csv", "^[^(]*holds no samples$"),
        ("nul.csv", "text"),
    ],
)
def test_malformed_file_messages_say_what_is_wrong(tmp_path, name, reason):
    path = tmp_path / name
    MALFORMED[name](path)
    with pytest.raises(RecordError, match=reason):
        read_record(path, fs=None if path.suffix == ".hea" else 300)


@pytest.mark.parametrize("name", ["huge-length.hea", "huge-shape.npy", "huge-dims.mat"])
def test_headers_claiming_huge_sizes_allocate_nothing(tmp_path, name):
    path = tmp_path / name
    MALFORMED[name](path)
    with peak_memory() as peak:
        with pytest.raises(RecordError):
            read_record(path, fs=300)
    assert peak[0] < 16 * 2**20


@pytest.mark.parametrize("fs", [0, -1, float("nan"), float("inf"), "300"])
def test_invalid_fs_argument_is_refused_before_reading(tmp_path, fs):
    np.save(tmp_path / "x.npy", np.zeros(900, np.float32))
    with pytest.raises(RecordError, match=r"invalid sampling rate .*\(fs\)") as err:
        read_record(tmp_path / "x.npy", fs=fs)
    assert "x.npy" in str(err.value)


class _Payload:
    """Unpickling this creates the folder `marker`: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_hostile_npy_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(RecordError, match="object") as err:
        read_record(path, fs=300)
    assert "evil.npy" in str(err.value) and not marker.exists()
    np.load(path, allow_pickle=True)  # the payload is real: loading it with pickles allowed runs it
    assert marker.exists()


def test_keyboard_interrupt_is_not_swallowed(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros(900, np.float32))

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "frombuffer", interrupt)  # called as the samples are read
    with pytest.raises(KeyboardInterrupt):
        read_record(tmp_path / "x.npy", fs=300)


# --------------------------------------------------------------------------- folders and labels


def test_find_records_with_index_lists_exactly_the_indexed(cinc2017_dir, tmp_path, caplog):
    _copy_record(cinc2017_dir, "A00001", tmp_path)
    _copy_record(cinc2017_dir, "A00002", tmp_path)  # present but not listed
    (tmp_path / "sub").mkdir()
    _copy_record(cinc2017_dir, "A00003", tmp_path / "sub")
    np.save(tmp_path / "arr.npy", np.zeros(900, np.float32))
    (tmp_path / "RECORDS").write_text("A00001\nsub/A00003\narr\nmissing\n../escape\n/etc/passwd\n\n")
    with caplog.at_level(logging.WARNING, logger="ecgrhythm.records"):
        found = find_records([tmp_path])
    assert found == [tmp_path / "A00001.hea", tmp_path / "sub" / "A00003.hea", tmp_path / "arr.npy", tmp_path / "missing.hea"]
    assert "../escape" in caplog.text and "/etc/passwd" in caplog.text
    with pytest.raises(RecordError, match="not found") as err:
        read_record(found[-1])
    assert "missing.hea" in str(err.value)


def test_find_records_without_index(cinc2017_dir, tmp_path, caplog):
    _copy_record(cinc2017_dir, "A00002", tmp_path)
    _copy_record(cinc2017_dir, "A00001", tmp_path)
    shutil.copyfile(cinc2017_dir / "A00003.mat", tmp_path / "bare.mat")
    with open(tmp_path / "z.NPY", "wb") as f:
        np.save(f, np.zeros(900, np.float32))
    (tmp_path / "y.csv").write_text("0.1\n" * 900)
    for name in ("REFERENCE.csv", "notes.txt", ".hidden.npy", "A00004.dat"):
        (tmp_path / name).write_text("x")
    (tmp_path / "folder.npy").mkdir()
    (tmp_path / "gone.csv").symlink_to(tmp_path / "nowhere.csv")
    (tmp_path / "loop.hea").symlink_to(tmp_path / "loop.hea")
    (tmp_path / "other").mkdir()
    with caplog.at_level(logging.WARNING, logger="ecgrhythm.records.discovery"):
        expected = ["A00001.hea", "A00002.hea", "bare.mat", "y.csv", "z.NPY"]
        assert [p.name for p in find_records([tmp_path])] == expected
    skipped = sorted(r.getMessage().split(": skipped ")[1] for r in caplog.records)
    assert skipped == [
        "'folder.npy', named like a record but a folder",
        "'gone.csv', named like a record but a broken link or a loop of links",
        "'loop.hea', named like a record but a broken link or a loop of links",
    ], "entries named like records that are none are named; others (a folder 'other', notes.txt) pass quietly"
    extra = tmp_path / "A00002.hea"
    assert find_records([extra, tmp_path / "nope.csv"]) == [extra, tmp_path / "nope.csv"]
    assert find_records([tmp_path / "A00001", tmp_path / "nope"]) == [tmp_path / "A00001.hea", tmp_path / "nope"]  # a bare WFDB name


def test_a_bare_wfdb_record_name_reads_its_header(cinc2017_dir, tmp_path):
    bare = read_record(cinc2017_dir / "A00005")
    whole = read_record(cinc2017_dir / "A00005.hea")
    np.testing.assert_array_equal(bare.signal, whole.signal)
    assert (bare.record_name, bare.fs, bare.sig_name) == ("A00005", 300.0, ("ECG",))
    with pytest.raises(RecordError) as err:
        read_record(tmp_path / "A00005")  # no such file, and no A00005.hea beside it
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'A00005'}: not found") and "A00005.hea" in message and ".hea, .mat, .csv" in message
    with pytest.raises(RecordError, match="file 'A00005.mat' not found"):
        read_record(tmp_path / "A00005.mat")


def test_find_records_on_the_cinc2017_folder_follows_its_index(cinc2017_dir):
    listed = [line.strip() for line in (cinc2017_dir / "RECORDS").read_text().splitlines() if line.strip()]
    found = find_records([cinc2017_dir])
    assert [p.name for p in found] == [f"{name}.hea" for name in listed]


def test_read_reference_real_and_malformed(cinc2017_dir, tmp_path):
    rows = [line.split(",") for line in (cinc2017_dir / "REFERENCE.csv").read_text().splitlines() if line.strip()]
    labels = read_reference(cinc2017_dir / "REFERENCE.csv")
    assert labels == {name: label for name, label in rows} and set(labels.values()) <= {"N", "A", "O", "~"}
    (tmp_path / "bom.csv").write_bytes("\ufeffA1,N\nA2,A\n".encode("utf-8"))
    assert read_reference(tmp_path / "bom.csv") == {"A1": "N", "A2": "A"}
    cases = {"three.csv": "A1,N\nA2,A,x\n", "nolabel.csv": "A1,\n"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "latin1.csv").write_bytes(b"A1,\xe9\n")
    for name, reason in (("three.csv", "line 2"), ("nolabel.csv", "line 1"), ("latin1.csv", "UTF-8"), ("absent.csv", "not found")):
        with pytest.raises(RecordError, match=reason) as err:
            read_reference(tmp_path / name)
        assert name in str(err.value)


# --------------------------------------------------------------------------- property-based


def _check_outcome(path: Path, fs=300.0):
    """A reader either returns a valid record or raises RecordError naming the file."""
    try:
        record = read_record(path, fs=fs)
    except RecordError as exc:
        assert path.name in str(exc)
        return None
    assert isinstance(record, EcgRecord)
    assert record.signal.dtype == np.float32 and record.signal.ndim == 2 and 1 <= record.n_leads <= 64
    assert np.isfinite(record.signal).all() and record.duration_s >= 2.0
    return record


def _valid_bytes() -> dict[str, bytes]:
    """Bytes of one small valid file per format, to mutate."""
    rng = np.random.default_rng(0)
    npy, mat4, mat5 = io.BytesIO(), io.BytesIO(), io.BytesIO()
    np.save(npy, rng.normal(size=(700, 2)).astype(np.float32))
    scipy.io.savemat(mat4, {"val": (rng.normal(size=(1, 700)) * 100).astype(np.int16)}, format="4")
    scipy.io.savemat(mat5, {"val": (rng.normal(size=(2, 700)) * 100).astype(np.int16)}, do_compression=True)
    csv_text = "I,II\n" + "".join(f"{a:.3f},{b:.3f}\n" for a, b in rng.normal(size=(700, 2)))
    return {".npy": npy.getvalue(), ".mat": mat4.getvalue(), ".MAT": mat5.getvalue(), ".csv": csv_text.encode()}


VALID = _valid_bytes()


@st.composite
def _mutated(draw, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(suffix=st.sampled_from([".hea", ".mat", ".csv", ".npy"]), data=st.binary(max_size=3000))
def test_arbitrary_bytes_give_a_record_or_record_error(tmp_path, suffix, data):
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / f"fuzz{suffix}"  # a fresh folder per example
    path.write_bytes(data)
    _check_outcome(path)


@FUZZ
@given(st.data())
def test_mutated_valid_files_give_a_record_or_record_error(tmp_path, data):
    suffix = data.draw(st.sampled_from(sorted(VALID)))
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / f"mutated{suffix}"
    path.write_bytes(data.draw(_mutated(VALID[suffix])))
    _check_outcome(path)


_TOKENS = {  # the first token of each field is valid
    "n_sig": ["1", "2", "0", "99999", "x", "²"],
    "fs": ["300", "300/1(0)", "0", "-5", "nan", "inf", "1e-300", "abc", "3e2"],
    "len": ["900", "450", "0", "901", "10000000000", "x", ""],
    "file": ["r.dat", "R.DAT", "../r.dat", "/etc/passwd", "missing.dat", "r.hea"],
    "fmt": ["16", "212", "16+24", "16x2", "999", "0", "8", "80", "16+999999", "310", "516"],
    "gain": ["200", "0", "inf", "1000/mV", "200(0)/uV", "-200", "abc"],
}


@FUZZ
@given(
    st.fixed_dictionaries({k: st.one_of(st.just(v[0]), st.sampled_from(v)) for k, v in _TOKENS.items()}),
    st.one_of(st.sampled_from([1800, 3600, 1350, 1824]), st.integers(0, 4000)),
)
def test_generated_wfdb_headers_give_a_record_or_record_error(tmp_path, tokens, dat_size):
    (tmp_path / "r.dat").write_bytes(np.random.default_rng(dat_size).bytes(dat_size))
    n_sig = int(tokens["n_sig"]) if tokens["n_sig"] in ("1", "2") else 1
    lines = [f"r {tokens['n_sig']} {tokens['fs']} {tokens['len']}"]
    lines += [f"{tokens['file']} {tokens['fmt']} {tokens['gain']} 16 0 0 0 0 L{i}" for i in range(n_sig)]
    path = tmp_path / "r.hea"
    path.write_text("\n".join(lines) + "\n# Dx: 1\n")
    _check_outcome(path, fs=None)


def test_a_wfdb_header_with_a_base_date_and_time_gives_the_start_time(tmp_path, cpsc2021_dir):
    import datetime

    from ecgrhythm.records.long_records import open_long_record

    for f in cpsc2021_dir.glob("data_101_6.*"):
        shutil.copy(f, tmp_path)
    header = tmp_path / "data_101_6.hea"
    assert read_record(header).start_time is None  # the sample's headers give no base time
    lines = header.read_text().splitlines()
    header.write_text("\n".join([lines[0] + " 23:59:30 06/12/2020", *lines[1:]]) + "\n")
    start = datetime.datetime(2020, 12, 6, 23, 59, 30)
    assert read_record(tmp_path / "data_101_6").start_time == start
    with open_long_record(header) as stream:  # the piecewise reader says the same
        assert stream.start_time == start
