"""Hostile `.mat`, `.npy`, `.csv` and EDF files found by the reader audit: each gives a RecordError naming the file,
never a crash, a runaway allocation or a warning on standard error."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.io
from memory import peak_memory

from ecgrhythm.records import RecordError, csv_reader, find_records, mat_reader, npy_reader, read_record, record_path

V5_HEADER = b"MATLAB 5.0 MAT-file".ljust(116) + b"\0" * 8 + b"\x00\x01IM"


@pytest.fixture(scope="module")
def a00001(cinc2017_dir):
    """The int16 samples of CinC 2017 record A00001 `(1, 9000)` and its record read at 300 Hz."""
    return scipy.io.loadmat(cinc2017_dir / "A00001.mat")["val"], read_record(cinc2017_dir / "A00001.mat", fs=300)


def _v5_val(val: np.ndarray, data_type: int = 3, data: bytes | None = None) -> bytes:
    """A v5 file holding int16 `val` (uncompressed), its samples' sub-element tagged `data_type` and holding `data`."""

    def element(kind: int, payload: bytes) -> bytes:
        return struct.pack("<II", kind, len(payload)) + payload + b"\0" * (-len(payload) % 8)

    data = val.astype("<i2").tobytes(order="F") if data is None else data
    body = element(6, struct.pack("<II", 10, 0)) + element(5, struct.pack("<2i", *val.shape)) + element(1, b"val") + element(data_type, data)
    return V5_HEADER + struct.pack("<II", 14, len(body)) + body


def test_mat_samples_tagged_with_an_unknown_data_type_are_refused_where_scipy_crashed(tmp_path, a00001):
    val, record = a00001
    (tmp_path / "ok.mat").write_bytes(_v5_val(val))
    np.testing.assert_array_equal(read_record(tmp_path / "ok.mat", fs=300).signal, record.signal)
    # Tag 99 (or 0, 19, 20, 255) made scipy 1.17 segfault, killing a whole batch: run it in a child process.
    (tmp_path / "bad.mat").write_bytes(_v5_val(val, data_type=99))
    code = "import sys, ecgrhythm\ntry: ecgrhythm.read_record(sys.argv[1], fs=300)\nexcept ecgrhythm.RecordError as e: print(e)"
    child = subprocess.run([sys.executable, "-c", code, str(tmp_path / "bad.mat")], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert "bad.mat: not a readable MATLAB .mat file ('val' stores its samples as MATLAB data type 99, not a number)" in child.stdout
    (tmp_path / "short.mat").write_bytes(_v5_val(val, data=b"\0" * 10))
    with pytest.raises(RecordError, match=r"short\.mat: 'val' of shape \(1, 9000\) needs 18000 bytes of samples but its data holds 10"):
        read_record(tmp_path / "short.mat", fs=300)
    scipy.io.savemat(tmp_path / "complex.mat", {"val": val * 1j})
    with pytest.raises(RecordError, match=r"complex\.mat: 'val' is a complex double array; expected real numbers"):
        read_record(tmp_path / "complex.mat", fs=300)


def test_a_v4_file_is_walked_without_listing_every_variable(tmp_path, cinc2017_dir, a00001):
    _, record = a00001
    original = (cinc2017_dir / "A00001.mat").read_bytes()  # CinC 2017 files are MATLAB v4
    one = struct.pack("<5i", 0, 1, 1, 0, 2) + b"x\0" + b"\0" * 8  # a 1 x 1 double named x
    (tmp_path / "many.mat").write_bytes(one * 20_000 + original)
    with peak_memory() as peak:
        read = read_record(tmp_path / "many.mat", fs=300)
    np.testing.assert_array_equal(read.signal, record.signal)
    assert peak[0] < 2 << 20  # scipy's whosmat listed all 20,000 variables first
    (tmp_path / "cut.mat").write_bytes(original[:200])
    with pytest.raises(RecordError, match=r"cut\.mat: 'val' of shape \(1, 9000\) ends at byte 18024 but the file holds 200 \(truncated"):
        read_record(tmp_path / "cut.mat", fs=300)
    (tmp_path / "vax.mat").write_bytes(struct.pack("<i", 2030) + original[4:])  # VAX D-float: scipy warned and read garbage
    with pytest.raises(RecordError, match=r"vax\.mat: not a readable MATLAB .mat file \(the v4 variable at byte 0 has a damaged header\)"):
        read_record(tmp_path / "vax.mat", fs=300)


def test_a_v5_file_of_many_variables_keeps_only_val_and_five_names(tmp_path, a00001):
    val, record = a00001
    one = _v5_val(np.zeros((1, 1), np.int16))[len(V5_HEADER) :].replace(b"val", b"xyz")  # a 1 x 1 int16 named xyz
    (tmp_path / "many.mat").write_bytes(V5_HEADER + one * 20_000 + _v5_val(val)[len(V5_HEADER) :])
    with peak_memory() as peak:
        read = read_record(tmp_path / "many.mat", fs=300)
    np.testing.assert_array_equal(read.signal, record.signal)
    assert peak[0] < 2 << 20  # each of the 20,000 variables was kept as it was walked
    (tmp_path / "none.mat").write_bytes(V5_HEADER + one * 20_000)
    with pytest.raises(RecordError, match=r"none\.mat: the \.mat file has no variable 'val' \(it holds 'xyz', 'xyz', 'xyz', 'xyz', 'xyz'\)"):
        read_record(tmp_path / "none.mat", fs=300)


def test_a_mat_file_that_shrinks_while_read_is_an_error_not_a_crash(tmp_path, cinc2017_dir, monkeypatch):
    path = tmp_path / "shrinks.mat"
    path.write_bytes((cinc2017_dir / "A00001.mat").read_bytes())
    real_check = mat_reader.check_length

    def shrink_then_check(*args, **kwargs):  # runs after the header is read, before the samples are
        path.write_bytes(path.read_bytes()[:1000])
        return real_check(*args, **kwargs)

    monkeypatch.setattr(mat_reader, "check_length", shrink_then_check)
    with pytest.raises(RecordError, match=r"shrinks\.mat: not a readable MATLAB \.mat file"):  # a memory map died of SIGBUS
        read_record(path, fs=300)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<i2", "<f2"])
@pytest.mark.parametrize("leads_first", [False, True])
def test_npy_of_any_layout_reads_like_numpy(tmp_path, cinc2021_dir, dtype, order, leads_first):
    signal = read_record(sorted(cinc2021_dir.glob("*.hea"))[0]).signal[:, :3]
    array = np.asarray(signal.T if leads_first else signal, dtype=dtype, order=order)
    np.save(tmp_path / "x.npy", array)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = read_record(tmp_path / "x.npy", fs=500)
    np.testing.assert_array_equal(read.signal, signal.astype(dtype).astype(np.float32))


def test_npy_header_claiming_4_gib_is_refused_before_reading_it(tmp_path):
    path = tmp_path / "claim.npy"
    path.write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{" * 100)
    with (
        peak_memory() as peak,
        pytest.raises(RecordError, match=r"claim\.npy: not a valid \.npy file \(its header claims 4294967280 bytes; numpy writes at most 10000\)"),
    ):
        read_record(path, fs=300)
    assert peak[0] < 1 << 20  # numpy read the claimed 4 GiB before it checked the length


def test_sparse_npy_whose_signal_would_pass_the_memory_limit_is_refused_before_allocation(tmp_path, monkeypatch):
    path = tmp_path / "sparse.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|i1", "fortran_order": False, "shape": (150_000_000,)})
        f.truncate(f.tell() + 150_000_000)  # sparse: 150 MB declared as int8, none on disk; 600 MB as float32
    with peak_memory() as peak, pytest.raises(RecordError, match=r"sparse\.npy: .*600000000 bytes as float32, more than the limit"):
        read_record(path, fs=2000)  # 20.8 h at 2 kHz: within the length limit
    assert peak[0] < 1 << 20
    monkeypatch.setenv("ECGRHYTHM_MAX_DECODED_MB", "0.5")  # the limit follows the environment
    np.save(path, np.zeros((200_000, 1), np.int8))
    with pytest.raises(RecordError, match="800000 bytes as float32"):
        read_record(path, fs=300)


def test_npy_that_changes_size_while_read_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "grows.npy"
    np.save(path, np.zeros((30_000, 2), np.float32))
    real_check = npy_reader.check_length

    def cut_then_check(*args, **kwargs):  # runs after the size is checked, before the samples are read
        path.write_bytes(path.read_bytes()[:-4096])
        return real_check(*args, **kwargs)

    monkeypatch.setattr(npy_reader, "check_length", cut_then_check)
    with pytest.raises(RecordError, match=r"grows\.npy: the file changed size while it was read"):  # a memory map died of SIGBUS
        read_record(path, fs=300)


def test_csv_rows_are_bounded_by_the_memory_limit_and_24_hours(tmp_path, monkeypatch, a00001):
    _, record = a00001
    path = tmp_path / "a.csv"
    np.savetxt(path, record.signal, fmt="%.4f")
    long = tmp_path / "long.csv"
    long.write_text("0.1\n" * (24 * 3600 * 20 + 2))  # a sample more than 24 h at 20 Hz: 1,728,002 rows, 13.8 MB as float64
    monkeypatch.setenv("ECGRHYTHM_MAX_DECODED_MB", "0.05")  # 52428 bytes: 4369 numbers of 12 bytes
    with pytest.raises(RecordError, match=r"a\.csv: the file holds more than 4369 rows of 1 column\(s\), .* limit of 52428 bytes"):
        read_record(path, fs=300)
    with peak_memory() as peak:
        with pytest.raises(RecordError, match=r"long\.csv: the file holds more than 4369 rows"):
            read_record(long, fs=20)
    assert peak[0] < 5 << 20  # parsing stopped at the limit, not at the end of the file
    monkeypatch.delenv("ECGRHYTHM_MAX_DECODED_MB")
    np.testing.assert_array_equal(read_record(path, fs=300).signal, record.signal)
    with pytest.raises(RecordError, match=r"long\.csv: the file holds more than 1728001 rows, over 24 h at 20 Hz"):
        read_record(long, fs=20)
    with pytest.raises(RecordError, match=r"long\.csv: the file has no time column and so no sampling rate"):
        read_record(long)  # said before any of it is parsed


def test_csv_time_columns_of_infinite_or_absurd_times_are_refused_by_name(tmp_path):
    rows = [f"{i / 300},0.1" for i in range(900)]
    (tmp_path / "inf.csv").write_text("time,I\n" + "\n".join(rows + ["inf,0.1"]) + "\n")
    with pytest.raises(RecordError, match=r"inf\.csv: the time column holds inf at row 901, not a finite time"):
        read_record(tmp_path / "inf.csv")
    (tmp_path / "slow.csv").write_text("time,I\n" + "\n".join(f"{i * 1e300},0.1" for i in range(900)) + "\n")
    with pytest.raises(RecordError, match=r"slow\.csv: invalid sampling rate 0 Hz: .* it is what the time column's step gives"):
        read_record(tmp_path / "slow.csv")


def test_csv_parse_errors_are_one_short_line(tmp_path):
    (tmp_path / "text.csv").write_text("0.1\n" * 100 + "x" * 60_000 + "\n" + "0.1\n" * 100)
    with pytest.raises(RecordError, match=r"text\.csv: the CSV file holds text, .*at row 100") as err:
        read_record(tmp_path / "text.csv", fs=300)
    assert len(str(err.value)) < 400
    assert csv_reader.MAX_LINE_BYTES > 60_000  # the line itself was within the limit
    (tmp_path / "ragged.csv").write_text("0.1,0.2\n" * 100 + "0.1\n" + "0.1,0.2\n" * 1000)
    with pytest.raises(RecordError, match=r"ragged\.csv: .*\(the number of columns changed from 2 to 1 at row 101\)$"):
        read_record(tmp_path / "ragged.csv", fs=300)  # numpy's advice to use `usecols` is not for our users


def test_csv_of_numbers_beyond_float32_is_refused_without_runtime_warnings(tmp_path):
    (tmp_path / "big.csv").write_text("1e308\n" * 900)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RecordError, match=r"big\.csv: 900 of 900 samples are NaN, infinite or beyond float32 range"):
            read_record(tmp_path / "big.csv", fs=300)


def test_mat_samples_a_tiny_gain_takes_beyond_float32_are_refused_without_runtime_warnings(tmp_path, a00001):
    val, _ = a00001
    scipy.io.savemat(tmp_path / "v.mat", {"val": val})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RecordError, match=r"v\.mat: \d+ of 9000 samples are NaN, infinite or beyond float32 range"):
            read_record(tmp_path / "v.mat", fs=300, mat_gain=1e-45)


def test_edf_annotations_in_latin_1_read_without_a_warning(tmp_path, a00001):
    from pyedflib import highlevel

    _, record = a00001
    path = tmp_path / "latin.edf"
    header = highlevel.make_header()
    header["annotations"] = [[1.0, -1, "Mxller"]]
    signal_header = highlevel.make_signal_header("ECG", "uV", 300, -10_000, 10_000, -32768, 32767)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        highlevel.write_edf(str(path), [record.signal[:, 0].astype(np.float64) * 1000], [signal_header], header)
    path.write_bytes(path.read_bytes().replace(b"Mxller", "Müller".encode("latin-1")))  # not UTF-8: pyedflib warned
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = read_record(path)
    assert read.annotations[0].text == "Müller" and np.abs(read.signal - record.signal).max() < 1e-3


@pytest.mark.parametrize("suffix", [".mat", ".npy", ".csv"])
def test_a_fifo_is_refused_without_opening_it(tmp_path, suffix):
    import os

    os.mkfifo(tmp_path / f"pipe{suffix}")
    with pytest.raises(RecordError, match=rf"pipe\{suffix}: file 'pipe\{suffix}' is not a regular file"):
        read_record(tmp_path / f"pipe{suffix}", fs=300)


def test_a_records_index_line_of_any_length_costs_no_more_than_a_name(tmp_path, cinc2017_dir, caplog):
    for name in ("A00001.hea", "A00001.mat", "A00002.hea", "A00002.mat"):
        shutil.copy(cinc2017_dir / name, tmp_path / name)
    (tmp_path / "RECORDS").write_text("A00001\nA00002\n")
    expected = find_records([tmp_path])
    (tmp_path / "RECORDS").write_text("A00001\n" + "x" * 30_000_000 + "\nA00002\n")  # one 30 MB line
    with peak_memory() as peak:
        found = find_records([tmp_path])
    assert found == expected == [tmp_path / "A00001.hea", tmp_path / "A00002.hea"]
    assert peak[0] < 2 << 20  # the line was read whole: 30 MB
    assert "RECORDS line 2: skipped 'xxxxxxxx" in caplog.text and "x" * 100 not in caplog.text


def test_a_loop_of_links_is_a_broken_link_before_anything_resolves_it(tmp_path):
    (tmp_path / "a.csv").symlink_to(tmp_path / "b.csv")
    (tmp_path / "b.csv").symlink_to(tmp_path / "a.csv")
    for call in (lambda: record_path(tmp_path / "a.csv"), lambda: read_record(tmp_path / "a.csv", fs=300)):
        with pytest.raises(RecordError, match=r"a\.csv: file 'a\.csv' is a broken symbolic link \(.*a loop of links\)"):
            call()  # the CLI resolved the path it returned: RuntimeError('Symlink loop') ended the whole run
    assert find_records([tmp_path]) == []


def test_a_csv_with_old_mac_line_ends_is_read_not_taken_for_one_long_line(tmp_path, a00001):
    _, record = a00001
    text = "I\r" + "\r".join(f"{v:.4f}" for v in record.signal[:, 0]) + "\r"  # 9000 rows, 70 kB: once "line 1 is longer"
    (tmp_path / "mac.csv").write_bytes(text.encode())
    np.testing.assert_allclose(read_record(tmp_path / "mac.csv", fs=300).signal, record.signal, atol=5e-5)
    (tmp_path / "long.csv").write_bytes(b"0.1,0.2\r\n" * 10 + b"1" * 70_000 + b"\r\n")
    with pytest.raises(RecordError, match=r"long\.csv: line 11 is longer than 65536 bytes"):  # CR LF ends one line, not two
        read_record(tmp_path / "long.csv", fs=300)
