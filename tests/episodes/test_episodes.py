"""Episodes: the HMM on hand-made probabilities, boundaries on beats, streaming windows, and real records end to end."""

import csv
import shutil
from itertools import pairwise

import numpy as np
import pytest

from ecgrhythm import cli
from ecgrhythm.episodes.boundaries import _change_beat, af_segments, smooth_af
from ecgrhythm.episodes.finder import EpisodeParams, record_episodes
from ecgrhythm.episodes.windows import WindowProbabilities, collect_windows, iter_window_probabilities, prepare_windows
from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.records import EcgRecord, RecordError, read_record

PARAMS = EpisodeParams()


@pytest.fixture(scope="module")
def shipped():
    return RhythmClassifier.load()


def _windows(p_af, hop=2.0, window=10.0):
    p_af = np.asarray(p_af, dtype=float)
    starts = np.arange(len(p_af)) * hop
    probs = np.stack([1 - p_af, p_af], axis=1)
    return WindowProbabilities(starts, starts + window, probs, ["N", "A"], float(starts[-1] + window))


def test_the_hmm_ignores_a_lone_window_and_keeps_a_sustained_run():
    lone = np.full(40, 0.02)
    lone[20] = 0.97
    assert (smooth_af(lone, PARAMS) < 0.5).all()
    run = np.full(40, 0.02)
    run[15:25] = 0.9
    post = smooth_af(run, PARAMS)
    assert (post[15:25] > 0.5).all() and (post[:14] < 0.5).all() and (post[26:] < 0.5).all()
    # a short dip inside AF does not split the episode
    dip = np.full(40, 0.95)
    dip[20] = 0.1
    assert (smooth_af(dip, PARAMS) > 0.5).all()
    # no evidence either way stays undecided; the posterior is symmetric in AF / non-AF
    np.testing.assert_allclose(smooth_af(np.full(10, 0.5), PARAMS), 0.5)
    np.testing.assert_allclose(smooth_af(1 - run, PARAMS), 1 - post, atol=1e-9)


def _smooth_af_on_arrays(p_af, params):
    """smooth_af as it was written on numpy's arrays of two: the reference of its recursions on Python floats."""
    import math

    p = np.clip(np.asarray(p_af, dtype=float), 1e-6, 1 - 1e-6)
    n = len(p)
    evidence = params.emission_scale * (np.log(p) - np.log1p(-p)) + params.emission_bias
    log_e = np.stack([-np.logaddexp(0, evidence), -np.logaddexp(0, -evidence)], axis=1)
    stay, switch = math.log1p(-params.switch_prob), math.log(params.switch_prob)
    trans = np.array([[stay, switch], [switch, stay]])
    fwd, bwd = np.empty((n, 2)), np.zeros((n, 2))
    fwd[0] = log_e[0] + math.log(0.5)
    for t in range(1, n):
        fwd[t] = log_e[t] + np.logaddexp(fwd[t - 1, 0] + trans[0], fwd[t - 1, 1] + trans[1])
    for t in range(n - 2, -1, -1):
        nxt = bwd[t + 1] + log_e[t + 1]
        bwd[t] = np.logaddexp(trans[:, 0] + nxt[0], trans[:, 1] + nxt[1])
    post = fwd + bwd
    return 1.0 / (1.0 + np.exp(post[:, 0] - post[:, 1]))


def test_the_hmm_gives_the_numbers_of_its_recursions_on_arrays(shipped, cpsc2021_dir):
    record = read_record(cpsc2021_dir / "data_101_6.hea")
    windows = collect_windows(iter_window_probabilities(shipped, [record.signal[:, 0]], record.fs, lead="I"), shipped.classes_, record.duration_s)
    rng = np.random.default_rng(0)
    sequences = [windows.af_probability(), rng.random(3000), rng.random(3000) ** 12, 1 - rng.random(3000) ** 12, np.full(50, 0.5), [0.3]]
    for params in (
        PARAMS,
        EpisodeParams(switch_prob=0.3, emission_scale=3.0, emission_bias=-2.0),
        EpisodeParams(switch_prob=1e-9, emission_scale=0.01),
    ):
        for p in sequences:
            np.testing.assert_array_equal(smooth_af(p, params), _smooth_af_on_arrays(p, params))


def test_segments_cover_the_signal_and_change_where_the_probability_crosses_half():
    p = [0.0, 0.0, 0.2, 0.8, 1.0, 1.0, 1.0, 0.1, 0.0, 0.0]
    w = _windows(p)
    segments = af_segments(w, smooth_af(np.array(p), EpisodeParams(switch_prob=0.2)))
    assert [s[2] for s in segments] == [False, True, False]
    assert segments[0][0] == 0.0 and segments[-1][1] == w.duration_s == 28.0
    assert all(a[1] == b[0] for a, b in pairwise(segments))
    # centres 9 and 11 with 0.2 and 0.8: halfway crossing at 10; centres 17 and 19 with 1.0 and 0.1: at 17 + 2 * 0.5 / 0.9
    assert segments[1][0] == pytest.approx(10.0) and segments[1][1] == pytest.approx(17 + 2 * 0.5 / 0.9)


def test_a_change_lands_on_the_first_irregular_beat():
    regular, irregular = [160] * 12, [100, 210, 130, 190, 95, 220, 140, 200, 110, 180, 125, 215]
    peaks = np.cumsum(regular + irregular)  # the first irregular interval runs from beat 11 to beat 12
    t = peaks[11] / 200 + 1.0  # the windows put the onset a second late
    assert _change_beat(peaks, True, t, 200.0, PARAMS) == 11  # AF from peaks[11]
    peaks = np.cumsum(irregular + regular)  # the last irregular interval ends at beat 11
    assert _change_beat(peaks, False, peaks[10] / 200, 200.0, PARAMS) == 12  # AF to peaks[12 - 1]
    assert _change_beat(peaks[:3], True, 1.0, 200.0, PARAMS) is None


def test_streamed_windows_equal_whole_signal_windows(shipped, cpsc2021_dir):
    record = read_record(cpsc2021_dir / "data_92_12.hea")
    signal = record.signal[:, 0]

    def windows(pieces):
        return collect_windows(iter_window_probabilities(shipped, pieces, record.fs, lead="I"), shipped.classes_, record.duration_s)

    whole = windows([signal])
    streamed = windows(signal[i : i + 777] for i in range(0, len(signal), 777))
    n = len(signal) / record.fs  # 48.9 s: windows every 4 s, at 0, 4, ..., 36 s, and one ending at the end
    np.testing.assert_allclose(whole.starts_s, [*range(0, 37, 4), n - 10.0])
    np.testing.assert_allclose(whole.ends_s[-1], n)
    np.testing.assert_array_equal(streamed.starts_s, whole.starts_s)
    np.testing.assert_allclose(streamed.probabilities, whole.probabilities, atol=1e-5)
    short = windows([signal[:1200]])  # 6 s: one window
    assert short.starts_s.tolist() == [0.0] and short.ends_s.tolist() == [6.0]


def test_windows_are_prepared_together_as_each_one_alone(shipped, cpsc2021_dir, cinc2017_dir, tiny_rr_model_dir):
    """A batch of windows prepared at once gives, bit for bit, what `prepare` gives each window as a record of its own;
    a window that is no valid record fails as before, named."""
    rr_model = RhythmClassifier.load(tiny_rr_model_dir)  # an RR channel: its windows are prepared one by one
    for path, lead in ((cpsc2021_dir / "data_101_6.hea", 0), (cpsc2021_dir / "data_21_7.hea", 1), (cinc2017_dir / "A00004.hea", 0)):
        record = read_record(path)
        n, hop = round(10 * record.fs), round(2 * record.fs)
        windows = [(a, a + n, record.signal[a : a + n, lead]) for a in range(0, record.n_samples - n + 1, hop)]
        for clf in (shipped, rr_model):
            prepared = prepare_windows(clf, windows, record.fs, "I")
            for (_, _, samples), got in zip(windows, prepared, strict=True):
                alone = clf.prepare(EcgRecord(np.ascontiguousarray(samples[:, None]), record.fs, ("I",), "window"))
                assert got.dtype == np.float32
                np.testing.assert_array_equal(got, alone)
    spoilt = [(w[0], w[1], w[2].copy()) for w in windows[:4]]
    spoilt[2][2][7] = np.nan
    with pytest.raises(RecordError, match="window 4.0-14.0 s"):  # the third of A00004 (300 Hz)
        prepare_windows(shipped, spoilt, record.fs, "I")


def test_windows_take_the_networks_own_probabilities_not_the_record_calibration(shipped, cpsc2021_dir, tmp_path):
    """The shipped folder's calibration (class prior and temperature, fitted on whole records) is left out of episode windows:
    a copy without it gives the same windows."""
    from ecgrhythm.networks.saving import set_calibration

    assert np.any(np.asarray(shipped.temperature_) != 1.0) and shipped.class_prior_ is not None
    plain_dir = tmp_path / "plain"
    shutil.copytree(shipped.model_dir_, plain_dir)
    set_calibration(plain_dir, 1.0)
    plain = RhythmClassifier.load(plain_dir)
    record = read_record(cpsc2021_dir / "data_92_12.hea")
    signal = record.signal[:, 0]

    def windows(clf):
        return collect_windows(iter_window_probabilities(clf, [signal], record.fs, lead="I"), clf.classes_, record.duration_s).probabilities

    np.testing.assert_allclose(windows(shipped), windows(plain), atol=1e-6)
    prepared = shipped.prepare(record)
    assert not np.allclose(shipped.predict_prepared([prepared]), plain.predict_prepared([prepared]))  # whole records are scaled


# Records whose class the shipped model's episode network gets right (paroxysmal, persistent, non-AF); it misses
# the AF of data_92_4 and finds AF in data_35_4 and data_35_6 (the model card lists the sample's records).
@pytest.mark.parametrize("name", ["data_101_8", "data_84_1", "data_21_7"])
def test_episodes_cover_a_real_record_exactly(shipped, cpsc2021_dir, name):
    from ecgrhythm.episodes.annotations import read_rhythm_annotations
    from ecgrhythm.scoring.episodes import af_burden

    record = read_record(cpsc2021_dir / f"{name}.hea")
    result = record_episodes(shipped, record)
    truth = read_rhythm_annotations(cpsc2021_dir / f"{name}.hea")
    eps = result.episodes
    assert result.lead == "I" and eps[0].start_s == 0.0 and eps[-1].end_s == pytest.approx(record.duration_s)
    assert all(a.end_s == b.start_s and a.label != b.label for a, b in pairwise(eps))
    assert all(e.end_s > e.start_s and e.label in shipped.classes_ and 0 <= e.probability <= 1 for e in eps)
    assert result.record_class == truth.class_name
    if name == "data_101_8":  # AF from 18.2 to 71.1 s and from 95.5 to 119.5 s: both found, each change within the
        # stretch searched for its beat, and the AF burden within 5 points
        np.testing.assert_allclose(result.af_endpoints() / record.fs, truth.af_intervals() / record.fs, atol=PARAMS.refine_s)
        assert abs(result.af_burden - af_burden(truth.af_intervals(), truth.n_samples)) < 0.05


def test_episodes_command_writes_contiguous_rows_and_a_summary(tmp_path, cpsc2021_dir, capsys, monkeypatch):
    monkeypatch.setenv(cli.CACHE_ENV, "off")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("data_101_8", "data_84_1"):
        for suffix in (".hea", ".dat"):
            shutil.copy(cpsc2021_dir / f"{name}{suffix}", folder)
    (folder / "broken.hea").write_text("broken 2 200 9000\nbroken.dat 16 1000 16 0 0 0 0 I\nbroken.dat 16 1000 16 0 0 0 0 II\n")
    out, summary = tmp_path / "episodes.csv", tmp_path / "summary.csv"
    assert cli.main(["episodes", str(folder), "--output", str(out), "--summary", str(summary)]) == 1
    captured = capsys.readouterr()
    assert "broken.hea" in captured.err and "Traceback" not in captured.err and "2 records" in captured.err
    rows = list(csv.DictReader(out.open()))
    for name in ("data_101_8", "data_84_1"):
        mine = [r for r in rows if r["record"] == name]
        duration = read_record(folder / f"{name}.hea").duration_s
        assert float(mine[0]["start_s"]) == 0 and float(mine[-1]["end_s"]) == pytest.approx(duration, abs=1e-3)
        assert all(a["end_s"] == b["start_s"] for a, b in pairwise(mine))
        assert {r["lead"] for r in mine} == {"I"}
    table = {r["record"]: r for r in csv.DictReader(summary.open())}
    assert table["data_84_1"]["record_class"] == "persistent" and float(table["data_84_1"]["af_burden"]) == 1.0
    assert table["data_101_8"]["record_class"] == "paroxysmal" and table["data_101_8"]["af_episodes"] == "2"
    assert 50 < float(table["data_101_8"]["longest_af_s"]) < 56  # AF from 18.3 to 71.1 s
    assert cli.main(["episodes", str(folder / "data_101_8.hea"), "-o", str(out), "--lead", "V5"]) == 1
    assert "no lead 'V5'" in capsys.readouterr().err


def test_episodes_never_writes_over_an_input_or_twice_to_one_file(tmp_path, cpsc2021_dir, capsys, monkeypatch):
    monkeypatch.setenv(cli.CACHE_ENV, "off")
    for suffix in (".hea", ".dat"):
        shutil.copy(cpsc2021_dir / f"data_92_12{suffix}", tmp_path)
    signal = tmp_path / "data_92_12.dat"
    before = signal.read_bytes()
    assert cli.main(["episodes", str(tmp_path / "data_92_12.hea"), "--output", str(signal)]) == 2
    assert cli.main(["episodes", str(tmp_path / "data_92_12.hea"), "-o", str(tmp_path / "e.csv"), "--summary", str(signal)]) == 2
    assert "--summary" in capsys.readouterr().err and signal.read_bytes() == before
    same = tmp_path / "x.csv"
    assert cli.main(["episodes", str(tmp_path / "data_92_12.hea"), "-o", str(same), "--summary", str(same)]) == 2
    assert "two different file names" in capsys.readouterr().err and not same.exists()
