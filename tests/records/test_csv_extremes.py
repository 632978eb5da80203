"""CSV records as spreadsheets and hostile files write them: decimal commas, endless lines, endless lead names."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from memory import peak_memory

from ecgrhythm.records import RecordError, read_record
from ecgrhythm.records.csv_reader import MAX_LINE_BYTES, MAX_NAME_CHARS


@pytest.fixture(scope="module")
def two_leads(cpsc2021_dir):
    """A real 2-lead record (200 Hz), its first 20 s, rounded as a 4-decimal export holds it."""
    record = read_record(cpsc2021_dir / "data_101_6.hea")
    return np.round(record.signal[:4000].astype(np.float64), 4)


def _decimal_comma(value: float) -> str:
    return f"{value:.4f}".replace(".", ",")


@pytest.mark.parametrize(("delimiter", "header"), [(";", "I;II\n"), (";", ""), ("\t", "Time (s)\tI\tII\n")])
def test_european_export_with_decimal_commas_is_read_right(tmp_path, two_leads, delimiter, header):
    timed = header.startswith("Time")
    rows = [[*([f"{i / 200:.3f}".replace(".", ",")] if timed else []), *map(_decimal_comma, row)] for i, row in enumerate(two_leads)]
    path = tmp_path / "export.csv"
    path.write_text(header + "".join(delimiter.join(r) + "\n" for r in rows), encoding="utf-8")
    record = read_record(path, fs=None if timed else 200)
    assert record.n_leads == 2 and record.fs == 200 and record.sig_name == (("I", "II") if header else ("lead1", "lead2"))
    np.testing.assert_allclose(record.signal, two_leads, atol=1e-6)


def test_one_column_of_decimal_commas_is_one_lead_not_two(tmp_path, two_leads):
    path = tmp_path / "lead.csv"
    path.write_text("".join(_decimal_comma(v) + "\n" for v in two_leads[:, 0]), encoding="utf-8")
    assert re.search(r"^-0,|,0\d", path.read_text(), re.M)  # tell-tales of a fraction: no integer is written -0 or 05
    record = read_record(path, fs=200)
    assert record.n_leads == 1
    np.testing.assert_allclose(record.signal[:, 0], two_leads[:, 0], atol=1e-6)
    named = tmp_path / "named.csv"
    named.write_text("ECG\n" + path.read_text(), encoding="utf-8")
    assert read_record(named, fs=200).sig_name == ("ECG",)


def test_two_columns_of_integers_stay_two_leads(tmp_path, two_leads):
    adc = np.round(two_leads * 200 + 1024).astype(int)  # ADC units with an offset: positive integers, no fraction
    path = tmp_path / "adc.csv"
    path.write_text("".join(f"{a},{b}\n" for a, b in adc), encoding="utf-8")
    record = read_record(path, fs=200)
    assert record.n_leads == 2
    np.testing.assert_array_equal(record.signal, adc.astype(np.float32))


def test_an_endless_line_is_refused_reading_a_bounded_piece(tmp_path, two_leads):
    path = tmp_path / "digits.csv"
    with open(path, "w") as f:
        f.write("".join(f"{v:.4f}\n" for v in two_leads[:100, 0]))
        f.write("7" * (8 << 20) + "\n")  # an 8 MB number on line 101
    with peak_memory() as peak:
        with pytest.raises(RecordError, match=rf"line 101 is longer than {MAX_LINE_BYTES} bytes"):
            read_record(path, fs=200)
    assert peak[0] < 4 << 20  # the line is never held whole


def test_lead_names_are_cut(tmp_path, two_leads):
    path = tmp_path / "names.csv"
    long = "I" + "x" * 5000
    path.write_text(f"{long},II\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in two_leads), encoding="utf-8")
    record = read_record(path, fs=200)
    assert record.sig_name == (long[:MAX_NAME_CHARS], "II")
    huge = tmp_path / "huge.csv"
    huge.write_text("A" * (MAX_LINE_BYTES + 1) + "\n" + "".join(f"{a:.4f}\n" for a in two_leads[:, 0]), encoding="utf-8")
    with pytest.raises(RecordError, match="line 1 is longer than") as info:
        read_record(huge, fs=200)
    assert "AAAA" not in str(info.value)


def test_blank_lines_between_rows_are_skipped_without_numpy_warning(tmp_path, two_leads):
    path = tmp_path / "windows.csv"  # Python's csv module writing in text mode on Windows ends rows in CR CR LF
    path.write_bytes(b"I,II\r\r\n" + "".join(f"{a:.4f},{b:.4f}\r\r\n" for a, b in two_leads).encode())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record = read_record(path, fs=200)
    assert record.sig_name == ("I", "II")
    np.testing.assert_allclose(record.signal, two_leads, atol=1e-6)


def test_a_csv_without_header_takes_the_memory_its_limit_counts(tmp_path, monkeypatch, cpsc2021_dir):
    """Telling whether a first column holds times took the differences of every column, 8 bytes a number more than the
    12 (parsed, then float32) that the row limit counts."""
    signal = np.tile(read_record(cpsc2021_dir / "data_101_6.hea").signal, (20, 1))  # 447,100 rows of 2 leads
    path = tmp_path / "long.csv"
    np.savetxt(path, signal, fmt="%.3f", delimiter=",")
    monkeypatch.setenv("ECGRHYTHM_MAX_DECODED_MB", str(signal.size * 12 * 1.01 / 2**20))  # numpy allocates the rows allowed
    with peak_memory() as peak:
        record = read_record(path, fs=200)
    assert record.signal.shape == signal.shape
    assert peak[0] < 13 * signal.size, f"{peak[0] / signal.size:.1f} bytes a number"
