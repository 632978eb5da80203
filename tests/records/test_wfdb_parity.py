"""`read_record` of WFDB records gives what `wfdb.rdrecord` reads directly: plain records decoded without wfdb, the
others through it, with one more parse of the header."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb
import wfdb.io.record

from ecgrhythm.records import read_record
from ecgrhythm.records.wfdb_fields import RX_RECORD, RX_SIGNAL


def _headers(folder: Path, every: int = 1) -> list[Path]:
    return sorted(folder.glob("*.hea"))[::every]


def _same_as_wfdb(header: Path) -> None:
    record = read_record(header)
    direct = wfdb.rdrecord(str(header.with_suffix("")), physical=True, return_res=32)
    assert record.signal.dtype == np.float32
    np.testing.assert_array_equal(record.signal, direct.p_signal.astype(np.float32))
    assert record.fs == direct.fs
    assert list(record.sig_name) == list(direct.sig_name)
    assert list(record.comments) == list(direct.comments)


def test_cinc2017_records_read_as_wfdb_reads_them(cinc2017_dir):
    headers = _headers(cinc2017_dir, every=145)[:50]  # 50 records spread over the 7,249
    assert len(headers) == 50
    for header in headers:
        _same_as_wfdb(header)


@pytest.mark.parametrize("subset", ["cpsc2021_dir", "cinc2021_dir"])
def test_sample_records_read_as_wfdb_reads_them(subset, request):
    headers = _headers(request.getfixturevalue(subset))
    assert headers
    for header in headers:
        _same_as_wfdb(header)


def test_the_header_is_parsed_with_wfdbs_own_patterns():
    import wfdb.io.header

    for ours, theirs in ((RX_RECORD, wfdb.io.header.rx_record), (RX_SIGNAL, wfdb.io.header.rx_signal)):
        assert (ours.pattern, ours.flags) == (theirs.pattern, theirs.flags)


@pytest.mark.parametrize(
    "signal_line, record_line",
    [
        ("A00001.mat 16+24", "A00001 1 300 9000"),  # no gain (200), baseline (0) nor units (mV)
        ("A00001.mat 16+24 1000/uV 16 -41 -127 0 0", "A00001 1 300 9000 05:05:15.25 1/05/2000"),  # baseline: the ADC zero
        ("A00001.mat 16x1:3+24 500(7)/mV 16 0 -127 0 0 ECG lead", "A00001 1 300/1000 9000 15.5"),  # skew ignored
    ],
)
def test_plain_records_decoded_without_wfdb_read_as_wfdb_reads_them(signal_line, record_line, cinc2017_dir, tmp_path, monkeypatch):
    shutil.copy(cinc2017_dir / "A00001.mat", tmp_path)
    header = tmp_path / "A00001.hea"
    header.write_text(f"{record_line}\n{signal_line}\n# a comment\n")
    direct = wfdb.rdrecord(str(header.with_suffix("")), physical=True, return_res=32, ignore_skew=True)
    monkeypatch.setattr(wfdb, "rdrecord", None)  # a plain record never reaches wfdb
    record = read_record(header)
    np.testing.assert_array_equal(record.signal, direct.p_signal * (1e-3 if direct.units == ["uV"] else 1))
    assert record.sig_name == (direct.sig_name[0] or "lead1",) and record.comments == tuple(direct.comments)
    assert record.start_time == (direct.base_datetime if direct.base_date else None)


def test_other_records_are_read_by_wfdb_with_one_more_parse_of_the_header(tmp_path, monkeypatch):
    signal = np.stack([np.sin(np.arange(2000) / 40), np.cos(np.arange(2000) / 25)], axis=1)
    wfdb.wrsamp("rec212", fs=250, units=["mV"] * 2, sig_name=["I", "II"], p_signal=signal, fmt=["212"] * 2, write_dir=str(tmp_path))
    direct = wfdb.rdrecord(str(tmp_path / "rec212"), physical=True, return_res=32)
    calls = []
    parse = wfdb.io.record.rdheader

    def counted(*args, **kwargs):
        calls.append(args[0])
        return parse(*args, **kwargs)

    monkeypatch.setattr(wfdb.io.record, "rdheader", counted)  # what wfdb.rdrecord calls
    record = read_record(tmp_path / "rec212.hea")
    np.testing.assert_array_equal(record.signal, direct.p_signal)
    assert len(calls) == 1


def test_a_plain_record_is_read_without_importing_wfdb_or_pandas(cinc2017_dir):
    code = (
        "import json, sys; from ecgrhythm.records import read_record; "
        f"read_record({str(cinc2017_dir / 'A00001.hea')!r}); print(json.dumps([m in sys.modules for m in ('wfdb', 'pandas')]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout) == [False, False]


def test_a_plain_record_read_in_pieces_gives_wfdbs_ranged_reads_without_wfdb(cpsc2021_dir, cinc2017_dir, monkeypatch):
    from ecgrhythm.records import open_wfdb

    rng = np.random.default_rng(0)
    for header in [*_headers(cpsc2021_dir), cinc2017_dir / "A00004.hea"]:
        base = str(header.with_suffix(""))
        n = wfdb.rdheader(base).sig_len
        reads = [(0, n, None), (n - 1, n, None), (0, 1, [0])]
        for _ in range(6):
            a = int(rng.integers(0, n - 1))
            reads.append((a, int(min(n, a + rng.integers(1, 30_000))), [[0], [1], [0, 1], [1, 0], None][int(rng.integers(0, 5))]))
        expected = []
        for a, b, channels in reads:
            if channels is not None and max(channels) >= wfdb.rdheader(base).n_sig:
                channels = [0]
            direct = wfdb.rdrecord(base, physical=True, return_res=32, ignore_skew=True, sampfrom=a, sampto=b, channels=channels)
            expected.append((a, b, channels, direct.p_signal))
        with monkeypatch.context() as m, open_wfdb(header) as stream:
            m.setattr(wfdb, "rdrecord", None)  # a plain record is decoded without wfdb
            for a, b, channels, signal in expected:
                piece = stream.read(a, b, channels)
                assert piece.dtype == np.float32
                np.testing.assert_array_equal(piece, signal)
