"""Episodes of record files: a bad file fails alone, and the CSVs hold one row per episode and per record."""

import csv

import pytest

from ecgrhythm.episodes.files import EPISODE_COLUMNS, SUMMARY_COLUMNS, iter_file_episodes, write_episodes, write_summary
from ecgrhythm.episodes.finder import RecordEpisodes
from ecgrhythm.inference.classifier import RhythmClassifier


@pytest.fixture(scope="module")
def shipped():
    return RhythmClassifier.load()


def test_a_bad_file_fails_alone_and_the_others_go_on(shipped, cinc2017_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,ECG\nnot,numbers\n")
    paths = [cinc2017_dir / "A00004.hea", bad, cinc2017_dir / "A00001.hea"]
    failed = []
    first, last = iter_file_episodes(shipped, paths, fs=300, on_failure=lambda path, reason: failed.append((path, reason)))
    assert [path for path, _ in failed] == [bad] and failed[0][1]
    assert isinstance(first, RecordEpisodes) and isinstance(last, RecordEpisodes)
    assert (first.record_name, last.record_name) == ("A00004", "A00001")
    assert first.af_burden > 0.5 > last.af_burden  # A00004 is labelled A, A00001 N

    write_episodes([first, last], tmp_path / "episodes.csv")
    write_summary([first, last], tmp_path / "summary.csv")
    with open(tmp_path / "episodes.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == EPISODE_COLUMNS and len(rows) == 1 + len(first.episodes) + len(last.episodes)
    with open(tmp_path / "summary.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == SUMMARY_COLUMNS and [r[0] for r in rows[1:]] == ["A00004", "A00001"]


def test_progress_reports_each_record_from_zero_to_its_length_and_csvs_go_to_open_files(shipped, cinc2017_dir, cpsc2021_dir):
    import io

    paths = [cinc2017_dir / "A00004", cpsc2021_dir / "data_101_6"]  # bare WFDB record names; 30 s and 111.775 s
    calls = []
    found = list(iter_file_episodes(shipped, paths, progress=lambda done, total: calls.append((round(done, 3), round(total, 3)))))
    assert [r.record_name for r in found] == ["A00004", "data_101_6"]
    assert calls == [(30.0, 30.0), (111.775, 111.775)]  # one piece each (pieces of 600 s)

    out = io.StringIO()
    write_summary(found, out)
    rows = out.getvalue().split("\n")
    assert rows[0] == ",".join(SUMMARY_COLUMNS) and rows[1].startswith("A00004,ECG,30.000,") and rows[-1] == ""
    assert "\r" not in out.getvalue()


def test_a_streamed_record_reports_its_pieces(shipped, cpsc2021_dir):
    from ecgrhythm.episodes.finder import record_episodes, stream_episodes
    from ecgrhythm.records import open_wfdb, read_record

    header = cpsc2021_dir / "data_101_6.hea"
    calls = []
    with open_wfdb(header) as stream:
        streamed = stream_episodes(shipped, stream, piece_s=30, progress=lambda done, total: calls.append(done))
    assert calls == pytest.approx([30.0, 60.0, 90.0, 111.775])
    assert streamed == record_episodes(shipped, read_record(header), piece_s=30)
