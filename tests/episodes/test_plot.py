"""The picture of a record's rhythm: a strip of its episodes over the whole record, and a few seconds of ECG.

The episodes drawn are the annotated ones of real cpsc2021 records (their `.atr` files), so no model runs here.
"""

import dataclasses
import datetime
import io

import numpy as np
import pytest
from PIL import Image

import ecgrhythm
from ecgrhythm.episodes.annotations import read_rhythm_annotations
from ecgrhythm.episodes.finder import Episode, RecordEpisodes
from ecgrhythm.episodes.plot import ECG_BEFORE_S, ecg_window, plot_episodes, time_ticks, write_plot
from ecgrhythm.records import RecordError, open_wfdb, read_record
from ecgrhythm.records.long_records import STREAM_ABOVE_S
from ecgrhythm.records.wfdb_reader import WfdbStream


def annotated(header, lead="I") -> RecordEpisodes:
    """The record's annotated rhythm as episodes: AF where the `.atr` file says, `N` elsewhere."""
    notes = read_rhythm_annotations(header)
    duration = notes.n_samples / notes.fs
    episodes, at = [], 0.0
    for a, b in notes.af_intervals() / notes.fs:
        if a > at:
            episodes.append(Episode(at, float(a), "N", 0.9))
        episodes.append(Episode(float(a), float(b), "A", 0.9))
        at = float(b)
    if at < duration:
        episodes.append(Episode(at, duration, "N", 0.9))
    return RecordEpisodes(notes.record_name, lead, notes.fs, notes.n_samples, episodes)


def drawn_ecg(fig):
    """`(times, mV)` of the ECG trace of a picture (its second axes' longest line; the others mark AF onsets)."""
    line = max(fig.axes[1].lines, key=lambda line: len(line.get_xdata()))
    return line.get_xdata(), line.get_ydata()


def test_a_paroxysmal_record_gives_a_small_png_with_its_burden_and_the_ecg_at_the_longest_af_onset(cpsc2021_dir, tmp_path):
    header = cpsc2021_dir / "data_92_19.hea"  # 6 min, two annotated AF episodes
    found = annotated(header)
    longest = max(found.af_episodes(), key=lambda e: e.end_s - e.start_s)
    out = tmp_path / "picture.png"
    fig = plot_episodes(found, header, out)
    png = out.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and 10_000 < len(png) < 150_000
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (1600, 700)
    n_af = len(found.af_episodes())
    assert fig.get_suptitle().startswith(f"data_92_19: paroxysmal AF, AF burden {100 * found.af_burden:.1f} % in {n_af} episodes (longest ")
    assert "; lead I; 6 min 02 s" in fig.get_suptitle()
    times, mv = drawn_ecg(fig)
    assert times[0] == pytest.approx(longest.start_s - ECG_BEFORE_S, abs=1 / found.fs)
    assert times[-1] - times[0] == pytest.approx(8.0, abs=2 / found.fs)
    assert 0.3 < np.ptp(mv) < 10  # millivolts of a real ECG, baseline removed for display
    assert abs(np.median(mv)) < 0.3
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["atrial fibrillation (A)", "normal rhythm (N)"]


def test_a_record_in_memory_an_open_stream_and_a_path_give_the_same_ecg(cpsc2021_dir):
    header = cpsc2021_dir / "data_101_6.hea"
    found = annotated(header, lead="II")
    from_path = drawn_ecg(plot_episodes(found, header))
    from_record = drawn_ecg(plot_episodes(found, read_record(header)))
    with open_wfdb(header) as stream:
        from_stream = drawn_ecg(plot_episodes(found, stream))
    for other in (from_record, from_stream):
        np.testing.assert_array_equal(other[0], from_path[0])
        np.testing.assert_allclose(other[1], from_path[1], atol=1e-5)
    assert "lead II" in plot_episodes(found, header).axes[1].get_title(loc="left")


def test_a_long_record_is_read_only_around_the_seconds_shown(cpsc2021_dir, tmp_path, monkeypatch):
    import wfdb

    record = read_record(cpsc2021_dir / "data_101_6.hea")
    n = int(1.05 * STREAM_ABOVE_S * record.fs)  # over an hour: the finder streams it, so the picture must too
    tiled = np.resize(record.signal[:, 0], n).astype(np.float64)[:, None]
    wfdb.wrsamp("long", fs=record.fs, units=["mV"], sig_name=["I"], p_signal=tiled, fmt=["16"], write_dir=str(tmp_path))
    af_from = 2000.0
    found = RecordEpisodes("long", "I", record.fs, n, [Episode(0, af_from, "N", 0.9), Episode(af_from, n / record.fs, "A", 0.9)])
    reads = []
    original = WfdbStream.read

    def spy(self, start, stop, channels=None, **kwargs):
        reads.append((start, stop))
        return original(self, start, stop, channels, **kwargs)

    monkeypatch.setattr(WfdbStream, "read", spy)
    fig = plot_episodes(found, tmp_path / "long.hea")
    assert len(reads) == 1 and reads[0][1] - reads[0][0] <= 12 * record.fs  # 8 s shown and 2 s each side for the filter
    assert drawn_ecg(fig)[0][0] == pytest.approx(af_from - ECG_BEFORE_S)
    assert fig.axes[0].get_xlabel() == "time from the start of the recording (h:mm)"


def test_clock_times_when_the_record_has_a_start_time_else_time_from_its_start(cpsc2021_dir):
    record = read_record(cpsc2021_dir / "data_101_6.hea")  # 1 min 52 s
    found = annotated(cpsc2021_dir / "data_101_6.hea")
    elapsed = plot_episodes(found, record).axes[0]
    assert [t.get_text() for t in elapsed.get_xticklabels()] == ["0:00", "0:15", "0:30", "0:45", "1:00", "1:15", "1:30", "1:45"]
    assert elapsed.get_xlabel() == "time from the start of the recording (m:ss)"

    started = dataclasses.replace(record, start_time=datetime.datetime(2024, 3, 1, 23, 59, 10))
    clock = plot_episodes(found, started).axes[0]
    labels = [t.get_text() for t in clock.get_xticklabels()]
    assert labels == ["23:59:15", "23:59:30", "23:59:45", "02 Mar 00:00:00", "00:00:15", "00:00:30", "00:00:45", "00:01:00"]
    assert clock.get_xticks()[0] == pytest.approx(5.0)  # 23:59:15 is 5 s after the start
    assert clock.get_xlabel() == "clock time (the recording started 2024-03-01 23:59:10)"


def test_an_edf_file_gives_clock_times_from_its_header(cpsc2021_dir, tmp_path):
    import warnings

    from pyedflib import highlevel

    record = read_record(cpsc2021_dir / "data_101_6.hea")
    n = record.n_samples // 200 * 200  # whole seconds in EDF data records
    headers = [highlevel.make_signal_header(name, "uV", 200, -10_000, 10_000, -32768, 32767) for name in record.sig_name]
    path = tmp_path / "holter.edf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyedflib's notes on rounding the physical range
        signals = [record.signal[:n, i].astype(np.float64) * 1000 for i in range(record.n_leads)]
        highlevel.write_edf(str(path), signals, headers, highlevel.make_header(startdate=datetime.datetime(2021, 3, 4, 22, 11, 12)))
    found = RecordEpisodes("holter", "I", 200.0, n, [Episode(0, 30, "N", 0.9), Episode(30, n / 200, "A", 0.9)])
    fig = plot_episodes(found, path)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:3] == ["22:11:15", "22:11:30", "22:11:45"]
    assert fig.axes[0].get_xlabel() == "clock time (the recording started 2021-03-04 22:11:12)"
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()][:2] == ["22:11:40", "22:11:41"]  # 2 s before the AF onset at 30 s


def test_time_ticks_fall_on_round_times_at_most_max_ticks():
    positions, labels, name = time_ticks(0, 24 * 3600, datetime.datetime(2024, 5, 6, 8, 20, 0))
    assert labels[:3] == ["09:00", "12:00", "15:00"] and labels[5] == "07 May 00:00" and len(labels) <= 10
    assert positions[0] == 40 * 60
    positions, labels, name = time_ticks(0, 26 * 3600)
    assert labels[:3] == ["0:00", "3:00", "6:00"] and name.endswith("(h:mm)")
    positions, labels, name = time_ticks(5 * 3600 + 3.5, 5 * 3600 + 11.5, max_ticks=12)
    assert labels[0] == "5:00:04" and len(labels) == 8 and name.endswith("(h:mm:ss)")


def test_a_record_without_af_shows_its_first_seconds_and_af_from_the_start_has_no_onset(cpsc2021_dir):
    header = cpsc2021_dir / "data_21_7.hea"
    found = annotated(header)
    assert not found.af_episodes()
    fig = plot_episodes(found, header)
    assert drawn_ecg(fig)[0][0] == 0.0 and "at the start of the record (no AF found)" in fig.axes[1].get_title(loc="left")
    assert fig.get_suptitle().startswith("data_21_7: no AF found, AF burden 0.0 % in 0 episodes;")

    persistent = annotated(cpsc2021_dir / "data_84_1.hea")
    assert persistent.af_episodes()[0].start_s == 0 and persistent.af_burden > 0.99  # AF from the first sample
    assert ecg_window(persistent) == (0.0, 8.0, "the start of the longest AF episode (AF from the record's start)")
    assert not [t for t in plot_episodes(persistent, cpsc2021_dir / "data_84_1.hea").axes[1].texts if t.get_text() == "AF onset"]


def test_noisy_stretches_are_shaded_and_named_in_the_legend(cpsc2021_dir):
    header = cpsc2021_dir / "data_101_6.hea"
    duration = annotated(header).duration_s
    found = RecordEpisodes("data_101_6", "I", 200.0, 22355, [Episode(0, 40, "~", 0.8), Episode(40, 70, "A", 0.9), Episode(70, duration, "O", 0.7)])
    strip = plot_episodes(found, header).axes[0]
    assert [t.get_text() for t in strip.get_legend().get_texts()] == ["atrial fibrillation (A)", "other rhythm (O)", "too noisy to judge (~)"]
    hatched = [c for c in strip.collections if c.get_hatch()]
    assert len(hatched) == 1 and hatched[0].get_paths()  # the one ~ stretch


def test_the_wrong_record_or_a_missing_lead_is_refused_by_name(cpsc2021_dir):
    found = annotated(cpsc2021_dir / "data_101_6.hea")
    with pytest.raises(RecordError, match=r"data_101_8.*24244 samples at 200 Hz, but the episodes are of 'data_101_6'"):
        plot_episodes(found, cpsc2021_dir / "data_101_8.hea")
    with pytest.raises(RecordError, match="no lead 'V1'"):
        plot_episodes(dataclasses.replace(found, lead="V1"), cpsc2021_dir / "data_101_6.hea")
    with pytest.raises(ValueError, match="ecg_s"):
        plot_episodes(found, cpsc2021_dir / "data_101_6.hea", ecg_s=100)


def test_write_plot_names_the_file_after_the_record_and_never_replaces_a_file_it_did_not_draw(cpsc2021_dir, tmp_path):
    header = cpsc2021_dir / "data_101_6.hea"
    found = annotated(header)
    folder = tmp_path / "pictures"
    first = write_plot(found, header, folder)
    assert first == folder / "data_101_6.png" and first.read_bytes().startswith(b"\x89PNG")
    assert write_plot(found, header, folder, taken={"data_101_6.png"}) == folder / "data_101_6-2.png"
    first.write_bytes(b"old")  # not a picture of ours any more
    with pytest.raises(RecordError, match=f"data_101_6.png exists in {folder} and is not a picture ecgrhythm drew"):
        write_plot(found, header, folder)
    assert first.read_bytes() == b"old"
    again = folder / "data_101_6-2.png"
    assert write_plot(found, read_record(header), folder, taken={"data_101_6.png"}) == again  # ours: replaced
    assert write_plot(dataclasses.replace(found, record_name="../up"), header, folder) == folder / ".._up.png"  # a name, never a path


def test_the_python_call_is_on_the_package_face(cpsc2021_dir, tmp_path):
    record = read_record(cpsc2021_dir / "data_101_6.hea")
    fig = ecgrhythm.plot_episodes(annotated(cpsc2021_dir / "data_101_6.hea"), record, tmp_path / "x.png")
    assert (tmp_path / "x.png").stat().st_size > 10_000 and len(fig.axes) == 2
    assert "plot_episodes" in ecgrhythm.__all__
