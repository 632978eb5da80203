"""The lead of a long multi-lead record chosen per stretch for its episodes (`ecgrhythm.episodes.leads`), on real records."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

from ecgrhythm.episodes.files import write_episodes
from ecgrhythm.episodes.finder import record_episodes
from ecgrhythm.episodes.leads import LeadEpisodes, PlannedLead, find_episodes, lead_plan
from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.records import EcgRecord, read_record


@pytest.fixture(scope="module")
def shipped():
    return RhythmClassifier.load()


@pytest.fixture(scope="module")
def record(cpsc2021_dir):
    return read_record(cpsc2021_dir / "data_101_8.hea")  # 121 s, leads I and II, paroxysmal AF


def test_a_record_with_a_clean_lead_keeps_it_throughout(shipped, record):
    plan = lead_plan(shipped, record, stretch_s=30.0)
    assert plan.single and plan.name == "I" and len(plan.columns) == 4
    found = find_episodes(shipped, record, stretch_s=30.0)
    assert not isinstance(found, LeadEpisodes) and found == record_episodes(shipped, record)  # the finder's, unchanged
    assert lead_plan(shipped, record, "II") is None  # a lead asked for is taken throughout


def test_a_lead_that_comes_loose_is_replaced_from_that_stretch_on(shipped, record):
    signal = record.signal.copy()
    cut = round(60 * record.fs)
    signal[cut:, 0] = 0.0  # lead I disconnected after 60 s
    loose = dataclasses.replace(record, signal=signal)
    plan = lead_plan(shipped, loose, stretch_s=30.0)
    assert plan.columns == (0, 0, 1, 1) and plan.name == "I/II"
    assert plan.stretches() == ((0.0, 60.0, "I"), (60.0, loose.duration_s, "II"))
    stitched = PlannedLead(loose, plan).read(0, loose.n_samples)
    np.testing.assert_array_equal(stitched[:, 0], np.concatenate([signal[:cut, 0], signal[cut:, 1]]))
    found = find_episodes(shipped, loose, stretch_s=30.0)
    alone = record_episodes(shipped, EcgRecord(stitched, loose.fs, ("I/II",), loose.record_name))  # the finder on that one lead
    assert isinstance(found, LeadEpisodes) and found.lead == "I/II" and found.episodes == alone.episodes
    assert found.lead_stretches == plan.stretches()
    out = io.StringIO()
    write_episodes([found], out)
    rows = [line.split(",") for line in out.getvalue().splitlines()[1:]]
    assert [r[1] for r in rows] == [found.episode_lead(e) for e in found.episodes]
    assert {r[1] for r in rows if float(r[3]) <= 60} <= {"I"} and {r[1] for r in rows if float(r[2]) >= 60} <= {"II"}
    from ecgrhythm.episodes.plot import ecg_window, plot_episodes

    start_s, stop_s, _ = ecg_window(found)
    shown = found.lead_between(start_s, stop_s)
    title = plot_episodes(found, loose).axes[1].get_title(loc="left")  # the ECG shown is of the lead used there
    assert f"s of lead {shown} at" in title and shown in ("I", "II")
