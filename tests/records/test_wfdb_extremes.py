"""WFDB records at the edges: missing samples in short and long records, a high rate over a sparse file, signal files
linked out of the record's folder. Real records copied into tmp_path and altered."""

from __future__ import annotations

import shutil
import tracemalloc

import numpy as np
import pytest

from ecgrhythm.records import RecordError, read_record
from ecgrhythm.records.long_records import open_long_record, should_stream

MISSING = -32768  # format 16's invalid-sample value


@pytest.fixture(scope="module")
def holter(cpsc2021_dir):
    """`(header text, int16 samples (n, 2))` of a real 2-lead 200 Hz record (112 s)."""
    header = (cpsc2021_dir / "data_101_6.hea").read_text()
    samples = np.fromfile(cpsc2021_dir / "data_101_6.dat", dtype="<i2").reshape(-1, 2)
    return header, samples


def _write(folder, header: str, samples: np.ndarray):
    """The record `data_101_6` in `folder` with `samples`, its header's length set to match."""
    folder.mkdir(exist_ok=True)
    lines = header.splitlines()
    lines[0] = " ".join([*lines[0].split()[:3], str(len(samples))])
    (folder / "data_101_6.hea").write_text("\n".join(lines) + "\n")
    samples.astype("<i2").tofile(folder / "data_101_6.dat")
    return folder / "data_101_6.hea"


def _with_gaps(samples: np.ndarray) -> np.ndarray:
    holed = samples.copy()
    holed[1000:1100, 1] = MISSING  # half a second of the second lead
    holed[5000, 0] = MISSING  # one sample of the first
    return holed


def test_missing_samples_are_filled_not_fatal_in_a_short_record(tmp_path, holter):
    header, samples = holter
    clean = read_record(_write(tmp_path / "clean", header, samples)).signal
    filled = read_record(_write(tmp_path / "holed", header, _with_gaps(samples))).signal
    assert np.isfinite(filled).all()
    np.testing.assert_array_equal(np.delete(filled, 5000, axis=0)[:, 0], np.delete(clean, 5000, axis=0)[:, 0])
    assert filled[5000, 0] == pytest.approx((clean[4999, 0] + clean[5001, 0]) / 2)
    np.testing.assert_allclose(filled[1000:1100, 1], np.linspace(clean[999, 1], clean[1100, 1], 102)[1:-1], rtol=1e-5, atol=1e-6)


def test_missing_samples_follow_the_same_rule_in_a_long_streamed_record(tmp_path, holter):
    header, samples = holter
    short = read_record(_write(tmp_path / "short", header, _with_gaps(samples))).signal
    hours = np.tile(samples, (2 * 3600 * 200 // len(samples) + 1, 1))  # 2 h, read in pieces
    hours[: len(samples)] = _with_gaps(samples)
    hours[-3000:, 1] = MISSING  # the last 15 s of the second lead: never read when the first is used
    path = _write(tmp_path / "long", header, hours)
    assert should_stream(path)
    with open_long_record(path) as stream:
        np.testing.assert_array_equal(stream.read(0, len(samples)), short)  # both leads, gaps filled alike
        assert np.isfinite(stream.read(len(hours) - 4000, len(hours))).all()
        np.testing.assert_array_equal(stream.read(0, len(samples), [0]), short[:, :1])


def test_high_rate_over_a_sparse_file_is_refused_before_allocation(tmp_path):
    n = 55 * 60 * 100_000  # 55 min at 100 kHz: under the hour, far over what a whole read may hold
    (tmp_path / "big.hea").write_text(f"big 1 100000 {n}\nbig.dat 16 1000/mV 16 0 0 0 0 ECG\n")
    with open(tmp_path / "big.dat", "wb") as f:
        f.truncate(2 * n)  # sparse: 660 MB declared, none on disk
    tracemalloc.start()
    try:
        with pytest.raises(RecordError, match="reading the record whole takes 330000000 samples of 1 signals"):
            read_record(tmp_path / "big.hea")
        assert should_stream(tmp_path / "big.hea")  # classify and episodes read it in pieces
        with open_long_record(tmp_path / "big.hea") as stream:
            tracemalloc.reset_peak()
            piece = stream.read(0, 20_000_000)  # 200 s at 100 kHz: 80 MB as float32
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert piece.shape == (20_000_000, 1) and not piece.any()
    assert peak < 80e6 + 150e6  # the piece and one bounded part's temporaries, not 20 bytes a sample


def test_signal_file_linked_outside_the_folder_is_refused(tmp_path, cinc2017_dir):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(cinc2017_dir / "A00001.mat", outside / "A00001.mat")  # the right size: only the link betrays it
    record = tmp_path / "record"
    record.mkdir()
    shutil.copy(cinc2017_dir / "A00001.hea", record / "A00001.hea")
    (record / "A00001.mat").symlink_to(outside / "A00001.mat")
    with pytest.raises(RecordError, match="'A00001.mat' is a link to .*/elsewhere/.*, outside the record's folder"):
        read_record(record / "A00001.hea")


def test_links_within_the_folder_or_to_a_linked_pair_are_read(tmp_path, cinc2017_dir):
    expected = read_record(cinc2017_dir / "A00001.hea").signal
    inside = tmp_path / "inside"
    (inside / "store").mkdir(parents=True)
    shutil.copy(cinc2017_dir / "A00001.hea", inside / "A00001.hea")
    shutil.copy(cinc2017_dir / "A00001.mat", inside / "store" / "A00001.mat")
    (inside / "A00001.mat").symlink_to(inside / "store" / "A00001.mat")
    np.testing.assert_array_equal(read_record(inside / "A00001.hea").signal, expected)
    pair = tmp_path / "pair"
    pair.mkdir()
    for suffix in (".hea", ".mat"):
        (pair / f"A00001{suffix}").symlink_to(cinc2017_dir / f"A00001{suffix}")
    np.testing.assert_array_equal(read_record(pair / "A00001.hea").signal, expected)


def test_lead_names_from_a_header_are_cut_and_made_printable(tmp_path, holter):
    header, samples = holter
    lines = header.splitlines()
    lines[1] = " ".join(lines[1].split()[:8] + ["V" * 5000])  # a 5,000-character name
    lines[2] = " ".join(lines[2].split()[:8] + ["II\x1b[2J distal\x07"])  # a terminal escape and a bell
    path = _write(tmp_path / "names", "\n".join(lines), samples)
    expected = ("V" * 64, "II [2J distal")
    assert read_record(path).sig_name == expected
    with open_long_record(path) as stream:  # a long record read in pieces names its leads alike
        assert stream.sig_name == expected
