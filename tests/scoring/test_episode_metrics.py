"""CPSC 2021 scoring against hand-worked records, rhythm annotations of real records, and the folder evaluation."""

import csv
import json
import shutil

import numpy as np
import pytest

from ecgrhythm.episodes.annotations import read_rhythm_annotations
from ecgrhythm.records import RecordError
from ecgrhythm.scoring.episodes import af_burden, af_seconds, boundary_hits, cpsc2021_record_score, endpoint_ranges, episode_overlaps, predicted_class

# A paroxysmal record of 2000 samples: 5 sinus beats, the (AFIB mark (index 5), 7 AF beats, the (N mark (index 13), 7 sinus beats.
PAROXYSMAL = [100, 200, 300, 400, 500, 570, 600, 680, 790, 850, 960, 1030, 1150, 1180, 1250, 1350, 1450, 1550, 1650, 1750, 1850]
# A persistent record of 1000 samples: (AFIB at 0, 9 beats, (N at the last sample.
PERSISTENT = [0, 30, 130, 250, 330, 460, 560, 700, 790, 900, 999]


def _score(endpoints, truth=PAROXYSMAL, n=2000, starts=(5,), ends=(13,), true_class=2):
    return cpsc2021_record_score(np.array(endpoints).reshape(-1, 2), n, np.array(truth), np.array(starts), np.array(ends), true_class)["score"]


def test_the_score_of_a_hand_worked_paroxysmal_record():
    # onset ranges: [500, 680) scores 1 (last sinus beat to second AF beat), [400, 500) and [680, 790) 0.5;
    # end ranges: [1030, 1250) scores 1 (second-last AF beat to first sinus beat), [960, 1030) and [1250, 1350) 0.5.
    onset, end = endpoint_ranges(PAROXYSMAL, [5], [13], 2, 2000)
    assert sorted(onset) == [(400, 500, 0.5), (500, 680, 1.0), (680, 790, 0.5)]
    assert sorted(end) == [(960, 1030, 0.5), (1030, 1250, 1.0), (1250, 1350, 0.5)]
    assert _score([[600, 1150]]) == 3.0  # class right (1) + onset and end within a beat (1 + 1)
    assert _score([[450, 1300]]) == 2.0  # two beats off each: 0.5 + 0.5
    assert _score([[600, 800], [900, 1150]]) == 2.0  # 1 + (1 + 0 + 0 + 1) * 1 / 2 predicted episodes
    assert _score([[300, 1500]]) == 1.0  # class right, endpoints too far
    assert _score([]) == -1.0  # paroxysmal called non-AF
    assert _score([[0, 1999]]) == 0.0  # called persistent: class 0, and neither endpoint scores


def test_the_score_of_hand_worked_persistent_and_non_af_records():
    persistent = {"truth": PERSISTENT, "n": 1000, "starts": (0,), "ends": (10,), "true_class": 1}
    assert _score([[0, 999]], **persistent) == 3.0
    assert _score([[0, 750]], **persistent) == 1.5  # paroxysmal (0) + onset 1 + end in [700, 790) 0.5
    assert _score([[200, 999]], **persistent) == 1.5  # onset in [130, 250): 0.5
    non_af = {"truth": [50, 150, 250], "n": 400, "starts": (), "ends": (), "true_class": 0}
    assert _score([], **non_af) == 1.0
    assert _score([[100, 200]], **non_af) == -0.5
    assert _score([[0, 399]], **non_af) == -1.0
    assert predicted_class(np.zeros((0, 2)), 10) == 0 and predicted_class([[0, 9]], 10) == 1 and predicted_class([[0, 8]], 10) == 2


def test_burden_overlaps_and_boundary_hits():
    assert af_burden([[0, 250], [500, 750]], 1000) == 0.5 and af_burden(np.zeros((0, 2)), 1000) == 0.0
    assert episode_overlaps([[0, 100], [200, 300], [400, 500]], [[50, 60], [290, 410], [600, 700]]) == (3, 2)
    assert boundary_hits([100, 200], [105, 106, 400], tolerance=10) == 1  # one prediction per truth point
    assert boundary_hits([100, 110], [105], tolerance=10) == 1


def test_real_annotations_and_the_truth_scoring_the_maximum(cpsc2021_dir):
    ann = read_rhythm_annotations(cpsc2021_dir / "data_101_6.hea")
    assert ann.class_name == "paroxysmal" and len(ann.af_starts) == len(ann.af_ends) == 4 and ann.fs == 200.0
    intervals = ann.af_intervals()
    assert (np.diff(intervals, axis=1) > 0).all() and (intervals[1:, 0] > intervals[:-1, 1]).all()
    # Answering the annotated episodes scores 1 (class) + 2 per episode.
    score = cpsc2021_record_score(intervals, ann.n_samples, ann.samples, ann.af_starts, ann.af_ends, ann.record_class)
    assert score["score"] == 1 + 2 * 4
    persistent = read_rhythm_annotations(cpsc2021_dir / "data_84_1")
    assert persistent.class_name == "persistent" and persistent.af_intervals().tolist() == [[0, persistent.n_samples - 1]]
    assert read_rhythm_annotations(cpsc2021_dir / "data_21_7.hea").af_intervals().shape == (0, 2)


def test_a_record_without_annotations_is_a_clear_error(cinc2017_dir):
    with pytest.raises(RecordError, match=r"A00001\.atr.*no \.atr annotation file"):
        read_rhythm_annotations(cinc2017_dir / "A00001.hea")


def test_evaluate_episodes_on_the_real_cpsc2021_sample(tmp_path, cpsc2021_dir, capsys, monkeypatch):
    from ecgrhythm import cli

    monkeypatch.setenv(cli.CACHE_ENV, "off")
    assert cli.main(["evaluate", "--task", "episodes", "--data", str(cpsc2021_dir), "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "episodes.json").read_text())
    assert report["overall"]["n_records"] == 18 and len(report["records"]) == 18
    assert report["overall"]["cpsc2021_score"] >= 1.5  # the floor (2.0 when fitted)
    # Below the 12 points of plain 10 s windows (the episodes issue's baseline). The network the settings were
    # fitted with here had 1.0 %; the shipped model's episode network, not fitted here, 4.3 % (models/cinc2017/MODEL_CARD.md).
    assert report["overall"]["burden_error"] < 0.12
    assert {r["lead"] for r in report["records"]} == {"I"}
    assert f"CPSC 2021 score {report['overall']['cpsc2021_score']:.3f}" in out and "data_92_19" in out
    assert (tmp_path / "episodes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the episodes scored are those `ecgrhythm episodes` writes (the record-level rule's), record by record
    assert cli.main(["episodes", str(cpsc2021_dir), "--output", str(tmp_path / "e.csv"), "--summary", str(tmp_path / "s.csv")]) == 0
    with open(tmp_path / "s.csv", newline="") as f:
        written = {row["record"]: row for row in csv.DictReader(f)}
    for scored in report["records"]:
        row = written[scored["record"]]
        assert float(row["af_burden"]) == pytest.approx(scored["predicted_burden"], abs=1e-4), scored["record"]
        assert row["record_class"] == scored["predicted_class"] and int(row["af_episodes"]) == scored["predicted_episodes"]


def test_damaged_annotations_fail_their_record_and_the_evaluation_exits_1(tmp_path, cpsc2021_dir, capsys, monkeypatch):
    from ecgrhythm import cli
    from ecgrhythm.episodes.annotations import read_rhythm_annotations
    from ecgrhythm.records import RecordError

    monkeypatch.setenv(cli.CACHE_ENV, "off")
    for name in ("data_8_4", "data_21_7"):
        for suffix in (".hea", ".dat", ".atr"):
            shutil.copy(cpsc2021_dir / f"{name}{suffix}", tmp_path)
    (tmp_path / "data_8_4.atr").write_bytes(b"")
    with pytest.raises(RecordError, match="no annotations|cannot read"):
        read_rhythm_annotations(tmp_path / "data_8_4.hea")
    header = (tmp_path / "data_21_7.hea").read_text().splitlines()
    (tmp_path / "nolen.hea").write_text("\n".join([" ".join(header[0].split()[:3]).replace("data_21_7", "nolen"), *header[1:]]) + "\n")
    for suffix in (".dat", ".atr"):
        shutil.copy(cpsc2021_dir / f"data_21_7{suffix}", tmp_path / f"nolen{suffix}")
    assert cli.main(["evaluate", "--task", "episodes", "--data", str(tmp_path), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "data_8_4" in err and "nolen" in err and "Traceback" not in err and "could not be scored" in err


def _official_ranges(loc, starts, ends, true_class, n):
    """The official scorer's score arrays (score_2021.py, `_gen_endpoint_score_range`), written out as arrays."""
    onset, offset = np.zeros(n), np.zeros(n)
    for s in starts:
        if true_class == 2:
            if max(s - 1, 0) == 0:
                onset[: loc[s + 2]] += 1
            elif max(s - 2, 0) == 0:
                onset[loc[s - 1] : loc[s + 2]] += 1
                onset[: loc[s - 1]] += 0.5
            else:
                onset[loc[s - 1] : loc[s + 2]] += 1
                onset[loc[s - 2] : loc[s - 1]] += 0.5
        else:
            onset[: loc[s + 2]] += 1
        onset[loc[s + 2] : loc[s + 3]] += 0.5
    for e in ends:
        last = len(loc) - 1
        if true_class == 2 and min(e + 1, last) == last:
            offset[loc[e - 2] :] += 1
        elif true_class == 2 and min(e + 2, last) == last:
            offset[loc[e - 2] : loc[e + 1]] += 1
            offset[loc[e + 1] :] += 0.5
        elif true_class == 2:
            offset[loc[e - 2] : loc[e + 1]] += 1
            offset[loc[e + 1] : min(loc[e + 2], n - 1)] += 0.5
        else:
            offset[loc[e - 2] :] += 1
        offset[loc[e - 3] : loc[e - 2]] += 0.5
    return onset, offset


@pytest.mark.parametrize("name", ["data_101_6", "data_101_9", "data_92_12", "data_92_4", "data_84_3", "data_8_4"])
def test_endpoint_ranges_equal_the_official_arrays_on_real_records(cpsc2021_dir, name):
    ann = read_rhythm_annotations(cpsc2021_dir / f"{name}.hea")
    official_onset, official_end = _official_ranges(ann.samples, ann.af_starts, ann.af_ends, ann.record_class, ann.n_samples)
    onset, end = endpoint_ranges(ann.samples, ann.af_starts, ann.af_ends, ann.record_class, ann.n_samples)
    x = np.arange(ann.n_samples)
    for ranges, official in ((onset, official_onset), (end, official_end)):
        mine = np.zeros(ann.n_samples)
        for lo, hi, v in ranges:
            mine[(x >= lo) & (x < hi)] += v
        np.testing.assert_array_equal(mine, official)


def test_af_seconds_count_whole_seconds_by_their_middle():
    # 10 s at 100 Hz; truth AF 2.0-6.0 s, prediction 3.0-8.0 s: seconds 2-5 true, 3-7 predicted
    assert af_seconds([[200, 600]], [[300, 800]], 1000, 100.0) == (3, 2, 1)
    assert af_seconds(np.zeros((0, 2)), np.zeros((0, 2)), 1000, 100.0) == (0, 0, 0)
    assert af_seconds([[0, 999]], np.zeros((0, 2)), 1000, 100.0) == (0, 0, 10)
