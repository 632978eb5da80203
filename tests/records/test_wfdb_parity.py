"""`read_record` of real WFDB records gives what `wfdb.rdrecord` reads directly, with one parse of the header."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
import wfdb.io.record

from ecgrhythm.records import read_record


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


def test_a_record_is_read_with_one_parse_of_its_header(cinc2017_dir, monkeypatch):
    calls = []
    parse = wfdb.io.record.rdheader

    def counted(*args, **kwargs):
        calls.append(args[0])
        return parse(*args, **kwargs)

    monkeypatch.setattr(wfdb.io.record, "rdheader", counted)  # what wfdb.rdrecord calls
    monkeypatch.setattr(wfdb, "rdheader", counted)
    read_record(cinc2017_dir / "A00001.hea")
    assert len(calls) == 1
