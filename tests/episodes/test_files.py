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
