"""Hostile and loose inputs the readers refuse before they allocate or misread (issue 10: items 1, 10, 11, 12)."""

from __future__ import annotations

import logging
import re
import shutil
import struct
import time
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
import scipy.io

from ecgrhythm.records import RecordError, find_records, read_record, read_reference

# --------------------------------------------------------------------------- a MATLAB v5 writer (element by element)

_MI_INT8, _MI_UINT8, _MI_INT16, _MI_INT32, _MI_UINT32, _MI_DOUBLE, _MI_MATRIX, _MI_COMPRESSED = 1, 2, 3, 5, 6, 9, 14, 15
_MX = {"double": (6, _MI_DOUBLE, 8), "uint8": (9, _MI_UINT8, 1), "int16": (10, _MI_INT16, 2)}


def _pad8(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 8)


def _matrix_head(name: str, kind: str, dims) -> tuple[bytes, int]:
    """The start of a miMATRIX element up to its data, and the data's byte count (data then follows, padded to 8)."""
    mx_class, mi_type, itemsize = _MX[kind]
    n_bytes = int(np.prod(dims)) * itemsize
    flags = struct.pack("<IIII", _MI_UINT32, 8, mx_class, 0)
    dims_el = struct.pack("<II", _MI_INT32, 4 * len(dims)) + _pad8(struct.pack(f"<{len(dims)}i", *dims))
    encoded = name.encode()
    name_el = (
        struct.pack("<I", (len(encoded) << 16) | _MI_INT8) + encoded.ljust(4, b"\0")
        if len(encoded) <= 4
        else struct.pack("<II", _MI_INT8, len(encoded)) + _pad8(encoded)
    )
    body = flags + dims_el + name_el + struct.pack("<II", mi_type, n_bytes)
    total = len(body) + n_bytes + (-n_bytes % 8)
    return struct.pack("<II", _MI_MATRIX, total) + body, n_bytes


def _compressed(name, kind, dims, chunks) -> bytes:
    """A miCOMPRESSED element holding the variable; `chunks` yields its data bytes (streamed through zlib)."""
    head, n_bytes = _matrix_head(name, kind, dims)
    z = zlib.compressobj(1)
    parts, written = [z.compress(head)], 0
    for chunk in chunks:
        parts.append(z.compress(chunk))
        written += len(chunk)
    assert written == n_bytes
    parts += [z.compress(b"\0" * (-n_bytes % 8)), z.flush()]
    data = b"".join(parts)
    return struct.pack("<II", _MI_COMPRESSED, len(data)) + data


def _plain(name, kind, array) -> bytes:
    head, n_bytes = _matrix_head(name, kind, array.shape)
    data = np.asarray(array, dtype=f"<{np.dtype(kind).str[1:]}").tobytes(order="F")
    return head + _pad8(data)


def _mat_v5(path, *elements):
    path.write_bytes(b"MATLAB 5.0 MAT-file, written element by element".ljust(116, b" ") + b"\0" * 8 + b"\x00\x01IM" + b"".join(elements))


def _zeros(n_bytes: int, chunk: int = 1 << 20):
    block = bytes(chunk)
    for start in range(0, n_bytes, chunk):
        yield block[: min(chunk, n_bytes - start)]


def _raw_val(cinc2017_dir, name="A00001"):
    return scipy.io.loadmat(cinc2017_dir / f"{name}.mat")["val"]


def _peak_while(call):
    """`(exception raised by call(), peak bytes traced meanwhile, seconds)`."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(RecordError) as err:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return err.value, peak, time.perf_counter() - start


# --------------------------------------------------------------------------- item 1: compressed data and long records


def test_compressed_v5_mat_written_element_by_element_reads_like_the_original(cinc2017_dir, tmp_path):
    val = _raw_val(cinc2017_dir)
    _mat_v5(
        tmp_path / "own.mat",
        _plain("other", "uint8", np.arange(64, dtype=np.uint8)[None]),
        _compressed("val", "int16", val.shape, [val.astype("<i2").tobytes(order="F")]),
    )
    scipy.io.savemat(tmp_path / "scipy.mat", {"val": val}, do_compression=True)
    expected = read_record(cinc2017_dir / "A00001.mat", fs=300).signal
    for name in ("own.mat", "scipy.mat"):
        np.testing.assert_array_equal(read_record(tmp_path / name, fs=300).signal, expected)


def test_mat_bomb_beside_an_incompressible_variable_is_refused_before_decoding(tmp_path):
    # 320 MB of zeros as doubles compress to about 1 MB; 3.5 MB of random bytes in a second variable used to raise the bound.
    n = 40_000_000
    noise = np.random.default_rng(0).integers(0, 256, (1, 3_500_000), dtype=np.uint8)
    path = tmp_path / "bomb.mat"
    _mat_v5(path, _plain("noise", "uint8", noise), _compressed("val", "double", (1, n), _zeros(8 * n)))
    assert path.stat().st_size < 6 << 20
    assert [v[0] for v in scipy.io.whosmat(path)] == ["noise", "val"]
    err, peak, seconds = _peak_while(lambda: read_record(path, fs=500))  # 22 h at 500 Hz: within the length limit
    assert "bomb.mat" in str(err) and "'val'" in err.reason and "decode to" in err.reason
    assert peak < 16 << 20 and seconds < 10


def test_mat_bomb_whose_tag_claims_more_compressed_bytes_than_the_file_holds_is_refused(tmp_path):
    # 320 MB of zeros as doubles compress to about 1 MB; a tag claiming 4 GB of compressed bytes used to raise the bound.
    n = 40_000_000
    element = _compressed("val", "double", (1, n), _zeros(8 * n))
    path = tmp_path / "liar.mat"
    _mat_v5(path, struct.pack("<II", _MI_COMPRESSED, 0xFFFFFFF0) + element[8:])
    assert path.stat().st_size < 2 << 20
    err, peak, seconds = _peak_while(lambda: read_record(path, fs=500))  # 22 h at 500 Hz: within the length limit
    assert "liar.mat" in str(err) and "'val'" in err.reason and "decode to" in err.reason
    assert peak < 16 << 20 and seconds < 10


def test_decoded_byte_cap_follows_the_environment(cinc2017_dir, tmp_path, monkeypatch):
    val = _raw_val(cinc2017_dir)  # 9000 samples: 36,000 bytes as float32
    path = tmp_path / "small.mat"
    scipy.io.savemat(path, {"val": val}, do_compression=True)
    monkeypatch.setenv("ECGRHYTHM_MAX_DECODED_MB", "0.05")
    assert read_record(path, fs=300).n_samples == val.size
    monkeypatch.setenv("ECGRHYTHM_MAX_DECODED_MB", "0.01")
    with pytest.raises(RecordError, match=r"limit of 10485 bytes \(set ECGRHYTHM_MAX_DECODED_MB") as err:
        read_record(path, fs=300)
    assert "small.mat" in str(err.value)
    monkeypatch.setenv("ECGRHYTHM_MAX_DECODED_MB", "lots")
    with pytest.raises(RecordError, match="ECGRHYTHM_MAX_DECODED_MB: expected a positive number"):
        read_record(path, fs=300)


def test_mat_length_limit_applies_from_the_dimensions(tmp_path):
    # The compressed element holds only the array's header: the dimensions alone must be enough to refuse it.
    head, _ = _matrix_head("val", "int16", (1, 2_000_000_000))
    data = zlib.compress(head)
    path = tmp_path / "long.mat"
    _mat_v5(path, struct.pack("<II", _MI_COMPRESSED, len(data)) + data)
    err, peak, _ = _peak_while(lambda: read_record(path, fs=20))
    assert "long.mat" in str(err) and "the maximum is 24 h" in err.reason and peak < 16 << 20


def test_flac_signal_file_bounded_in_bytes_before_wfdb_reads(tmp_path):
    (tmp_path / "r.dat").write_bytes(np.random.default_rng(1).bytes(1 << 20))
    (tmp_path / "r.hea").write_text("r 1 1000 20000000\nr.dat 516 200 16 0 0 0 0 I\n")  # 20M samples from 1 MiB: 160 MB decoded
    err, peak, _ = _peak_while(lambda: read_record(tmp_path / "r.hea"))
    assert "r.hea" in str(err) and "'r.dat'" in err.reason and "decode to 160000000 bytes" in err.reason
    assert peak < 8 << 20


def test_wfdb_length_limit_applies_from_the_header_before_reading(tmp_path, monkeypatch):
    import wfdb

    with open(tmp_path / "r.dat", "wb") as f:
        f.truncate(2 * 2_000_000)  # exactly what the header declares (sparse)
    (tmp_path / "r.hea").write_text("r 1 20 2000000\nr.dat 16 200 16 0 0 0 0 I\n")  # 27.8 h at 20 Hz

    def must_not_read(*args, **kwargs):
        raise AssertionError("the samples were read")

    monkeypatch.setattr(wfdb, "rdrecord", must_not_read)
    with pytest.raises(RecordError, match=r"27\.8 h long .* the maximum is 24 h") as err:
        read_record(tmp_path / "r.hea")
    assert "r.hea" in str(err.value)


# --------------------------------------------------------------------------- item 11: strict WFDB signal lines


def _wfdb_record(folder, signal_line: str):
    (folder / "r.dat").write_bytes((np.arange(900) % 100).astype("<i2").tobytes())
    (folder / "r.hea").write_text(f"r 1 300 900\n{signal_line}\n")
    return folder / "r.hea"


@pytest.mark.parametrize(
    "line, field",
    [
        ("r.dat 16+-10 1000/mV 16 0 0 0 0 I", "format field '16+-10'"),  # wfdb: offset '', gain -10
        ("r.dat 16 -200 16 0 0 0 0 I", "gain field '-200'"),
        ("r.dat 16 +200 16 0 0 0 0 I", "gain field '+200'"),
        ("r.dat 16 0 16 0 0 0 0 I", "ADC gain '0'"),
        ("r.dat 16x 200 16 0 0 0 0 I", "format field '16x'"),
        ("r.dat 16 200(0 16 0 0 0 0 I", "gain field '200(0'"),
        ("r.dat 16 200 16.5 0 0 0 0 I", "ADC resolution field '16.5'"),
        ("r.dat 16 200 16 0 0 0x 0 I", "checksum field '0x'"),
        ("r.dat 16 1000(99999999999999999999) 16 0 0 0 0 I", "baseline '99999999999999999999' is out of range"),
    ],
)
def test_loose_signal_lines_wfdb_accepts_are_refused(tmp_path, line, field):
    with pytest.raises(RecordError, match=re.escape(f"signal 1: the {field}")) as err:
        read_record(_wfdb_record(tmp_path, line))
    assert "r.hea" in str(err.value) and "fix the header" in err.value.reason


@pytest.mark.parametrize(
    "line, scale",
    [
        ("r.dat 16x1:0+0 200.0(0)/mV 16 0 0 0 0 lead I, a description", 1 / 200),
        ("r.dat 16 2e2/uV 12 0 -5 0 0", 1e-3 / 200),
        ("r.dat 16 400", 1 / 400),
        ("r.dat 16", 1 / 200),
    ],
)
def test_strict_signal_lines_in_every_spec_form_still_read(tmp_path, line, scale):
    record = read_record(_wfdb_record(tmp_path, line))
    np.testing.assert_allclose(record.signal[:, 0], (np.arange(900) % 100) * scale, rtol=1e-6)


# --------------------------------------------------------------------------- item 10: duplicate labels


def test_duplicate_record_in_reference_is_refused_naming_both_lines(cinc2017_dir, tmp_path):
    rows = (cinc2017_dir / "REFERENCE.csv").read_text().splitlines()[:5]
    name = rows[0].split(",")[0]
    (tmp_path / "REFERENCE.csv").write_text("\n".join(rows + [f"{name},A"]) + "\n")
    with pytest.raises(RecordError, match=f"lines 1 and 6 both label {name}: keep one row per record") as err:
        read_reference(tmp_path / "REFERENCE.csv")
    assert "REFERENCE.csv" in str(err.value)


# --------------------------------------------------------------------------- item 12: RECORDS entries


def _copy_record(source, name, dest):
    for suffix in (".hea", ".mat"):
        shutil.copyfile(source / f"{name}{suffix}", dest / f"{name}{suffix}")


def test_records_index_entries_linking_outside_the_folder_are_skipped(cinc2017_dir, tmp_path, caplog):
    folder, outside = tmp_path / "data", tmp_path / "outside"
    folder.mkdir(), outside.mkdir()
    _copy_record(cinc2017_dir, "A00001", folder)
    _copy_record(cinc2017_dir, "A00003", outside)
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    (folder / "linked.hea").symlink_to(outside / "A00003.hea")
    (folder / "alias.hea").symlink_to(folder / "A00001.hea")  # a link inside the folder is fine
    (folder / "RECORDS").write_text("A00001\nsub/A00003\nlinked\nalias\n")
    with caplog.at_level(logging.WARNING, logger="ecgrhythm.records"):
        found = find_records([folder])
    assert found == [folder / "A00001.hea", folder / "alias.hea"]
    assert "'sub/A00003', a symbolic link" in caplog.text and "'linked', a symbolic link" in caplog.text
    assert read_record(found[1]).signal.shape == read_record(found[0]).signal.shape


def test_records_index_names_are_echoed_cut_short(cinc2017_dir, tmp_path, caplog):
    _copy_record(cinc2017_dir, "A00001", tmp_path)
    long_relative, long_absolute = "ab/" * 1700 + "r", "/" + "z" * 5000
    (tmp_path / "RECORDS").write_text(f"A00001\n{long_relative}\n{long_absolute}\n")
    with caplog.at_level(logging.WARNING, logger="ecgrhythm.records"):
        found = find_records([tmp_path])
    assert found == [tmp_path / "A00001.hea"]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all(len(m) < len(str(tmp_path)) + 200 for m in messages)
    assert f"{long_relative[:80]}..." in messages[0] and f"{long_absolute[:80]}..." in messages[1]


def test_real_reference_files_have_no_duplicates(cinc2017_dir):
    assert len(read_reference(cinc2017_dir / "REFERENCE.csv")) == len((cinc2017_dir / "REFERENCE.csv").read_text().split())


def test_a_header_without_a_length_is_bounded_by_its_file_before_decoding(tmp_path):
    (tmp_path / "nolen.dat").write_bytes(np.zeros(3700 * 20, dtype="<i2").tobytes())  # 3,700 s at 20 Hz
    (tmp_path / "nolen.hea").write_text("nolen 1 20\nnolen.dat 16 200/mV 16 0 0 0 0 I\n")
    with pytest.raises(RecordError, match="declares no signal length.*1.0 h.*must declare its length"):
        read_record(tmp_path / "nolen.hea")
    (tmp_path / "nolen.dat").write_bytes(np.zeros(3500 * 20, dtype="<i2").tobytes())  # under the hour: read whole
    assert read_record(tmp_path / "nolen.hea").n_samples == 3500 * 20


def test_format_8_records_are_never_read_in_pieces(tmp_path):
    from ecgrhythm.records import reads_in_pieces
    from ecgrhythm.records.long_records import should_stream

    n = 2 * 3600 * 20  # 2 h at 20 Hz
    for fmt, dtype in (("8", "<i1"), ("16", "<i2")):
        (tmp_path / f"r{fmt}.dat").write_bytes(np.zeros(n, dtype=dtype).tobytes())
        (tmp_path / f"r{fmt}.hea").write_text(f"r{fmt} 1 20 {n}\nr{fmt}.dat {fmt} 200/mV 8 0 0 0 0 I\n")
    assert not reads_in_pieces(tmp_path / "r8.hea") and not should_stream(tmp_path / "r8.hea")  # wfdb restarts its running sum
    assert reads_in_pieces(tmp_path / "r16.hea") and should_stream(tmp_path / "r16.hea")


def test_a_gain_so_small_the_samples_overflow_is_refused_without_numpy_warnings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warning would be printed on stderr by the commands
        with pytest.raises(RecordError, match="r.hea"):
            read_record(_wfdb_record(tmp_path, "r.dat 16 1e-300/mV 16 0 0 0 0 I"))


@pytest.mark.parametrize("when", ["25:99:99 1/12/2000", "08:12:08 31/02/2000", "noon 1/12/2000"])
def test_a_base_time_or_date_that_is_none_is_refused_as_a_header_problem(cinc2017_dir, tmp_path, when):
    """A record line whose base time or date is no time of day or date: named as the header's, not as a signal read."""
    shutil.copyfile(cinc2017_dir / "A00005.mat", tmp_path / "A00005.mat")
    line, *rest = (cinc2017_dir / "A00005.hea").read_text().splitlines(keepends=True)
    assert line.split()[4:6] == ["08:12:08", "1/12/2000"], "the real record's own time and date, replaced below"
    (tmp_path / "A00005.hea").write_text(" ".join(line.split()[:4] + [when]) + "\n" + "".join(rest))
    with pytest.raises(RecordError, match=rf"A00005.hea: the header's base time and date '{when}' are not a time of day"):
        read_record(tmp_path / "A00005.hea")
    (tmp_path / "A00005.hea").write_text(line + "".join(rest))
    assert read_record(tmp_path / "A00005.hea").signal.shape == (18000, 1)
