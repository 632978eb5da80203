"""Studies: the length strategies, the depth procedure, and a study that records, resumes and reports on real records."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("optuna")

from ecgrhythm.cli import main  # noqa: E402
from ecgrhythm.records import read_record, read_reference  # noqa: E402
from ecgrhythm.studies import (  # noqa: E402
    Budget,
    Variant,
    _normalised,
    _Strategy,
    advised_length,
    chosen_depth,
    crop_or_pad,
    depth_plan,
    depth_variant,
    discarded_share,
    load_study_data,
    resample_to,
    run_study,
    study_rows,
    summarise,
    window_starts,
    write_report,
)

PER_CLASS = {"N": 30, "A": 14, "O": 20, "~": 8}
TINY = Budget(epochs=1, train_records=40, val_fraction=0.3, batch_size=16)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory, cinc2017_dir):
    """72 real CinC 2017 records (all four classes), linked into a folder with their REFERENCE.csv rows."""
    folder = tmp_path_factory.mktemp("cinc2017-small")
    reference = read_reference(cinc2017_dir / "REFERENCE.csv")
    wanted = {c: n for c, n in PER_CLASS.items()}
    rows = []
    for name, label in sorted(reference.items()):
        if wanted.get(label, 0) > 0:
            wanted[label] -= 1
            rows.append(f"{name},{label}")
            for suffix in (".hea", ".mat"):
                (folder / f"{name}{suffix}").symlink_to(cinc2017_dir / f"{name}{suffix}")
    (folder / "REFERENCE.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def small_data(small_folder):
    return load_study_data(small_folder, TINY)


def test_crop_pad_keeps_the_first_30_s_and_pads_with_zeros(cinc2017_dir):
    long = read_record(cinc2017_dir / "A00001.hea").signal  # 9,000 samples at 300 Hz
    kept, length = advised_length(300.0, 64)
    assert (kept, length) == (9000, 9024)
    out = crop_or_pad(long, kept, length)
    np.testing.assert_array_equal(out[:9000], long[:9000])
    assert out.shape == (9024, 1) and not out[9000:].any()
    short = long[:4000]
    padded = crop_or_pad(short, kept, length)
    np.testing.assert_array_equal(padded[:4000], short)
    assert not padded[4000:].any()


def test_resample_to_gives_one_length_and_keeps_the_shape(cinc2017_dir):
    signal = read_record(cinc2017_dir / "A00001.hea").signal
    out = resample_to(signal, 4544)
    assert out.shape == (4544, 1) and out.dtype == np.float32
    # a halved rate keeps the low-frequency content: compare with every other sample
    assert np.corrcoef(resample_to(signal, 4500)[:, 0], signal[::2, 0])[0, 1] > 0.95


def test_windows_cover_the_whole_record():
    assert window_starts(100, 100, 50) == [0]
    assert window_starts(50, 100, 50) == [0]
    assert window_starts(260, 100, 50) == [0, 50, 100, 150, 160]
    for n in (101, 199, 1000, 3001):
        starts = window_starts(n, 100, 50)
        assert starts[0] == 0 and starts[-1] + 100 == n
        assert all(b - a <= 50 for a, b in zip(starts, starts[1:]))


def test_discarded_share():
    out = discarded_share([9000, 18000, 6000], 300.0)
    assert out == {"share_of_signal": round(9000 / 33000, 4), "share_of_records_cut": round(1 / 3, 4)}


def test_windows_strategy_averages_window_predictions(small_data):
    """The windows strategy's record probability is the mean over its windows, padded records included."""

    class Echo:  # a stand-in network: the probability of class 0 is the window's mean
        output = type("Shape", (), {"shape": (None, 2)})()

        def predict_on_batch(self, inputs):
            m = np.asarray(inputs["signal"]).mean(axis=(1, 2))
            return np.stack([m, 1 - m], axis=1)

    strategy = _Strategy("windows", small_data.fs, 64, 20.0)
    signals = [small_data.signals[i] for i in range(3)]
    probs = strategy.predict(Echo(), signals)
    for s, p in zip(signals, probs):
        s = np.concatenate([s, np.zeros((max(0, strategy.window - len(s)), 1), np.float32)])
        means = [s[a : a + strategy.window].mean() for a in window_starts(len(s), strategy.window, strategy.window // 2)]
        assert p[0] == pytest.approx(np.mean(means), rel=1e-4, abs=1e-6)


def test_global_normalization_uses_training_records_only(small_data):
    signals = _normalised(small_data, Variant("global", {}, normalization="global"))
    train = np.concatenate([signals[i] for i in small_data.train_idx])
    assert abs(train.mean()) < 1e-3 and train.std() == pytest.approx(1.0, abs=1e-3)
    val = np.concatenate([signals[i] for i in small_data.val_idx])
    assert abs(val.std() - 1.0) > 1e-3  # one scale for all, not fitted to the validation records


def test_depth_plan_adds_layers_while_the_score_improves():
    one, two, three = (depth_variant(n).name for n in (1, 2, 3))
    assert [v.name for v in depth_plan({}, 0.01)] == [one]
    assert [v.name for v in depth_plan({one: 0.70}, 0.01)] == [one, two]
    assert [v.name for v in depth_plan({one: 0.70, two: 0.75}, 0.01)] == [one, two, three]
    means = {one: 0.70, two: 0.75, three: 0.755}  # the third layer gains less than the margin
    plan = depth_plan(means, 0.01)
    assert chosen_depth(means, 0.01) == 2
    stage2 = [v for v in plan if v.name not in means]
    assert {v.model.lstm_layers for v in stage2} == {2}
    assert {(v.model.lstm_units, v.model.bidirectional) for v in stage2} == {(32, True), (128, True), (64, False)}
    means.update({v.name: 0.7 for v in stage2})
    stage3 = [v for v in depth_plan(means, 0.01) if v.name not in means]
    assert {v.model.lstm_layers for v in stage3} == {2, 0}
    assert len({v.model.conv_filters for v in stage3}) == 3
    # a second layer that does not help stops the adding at one
    assert chosen_depth({one: 0.70, two: 0.705}, 0.01) == 1


def test_study_records_resumes_and_reports(small_folder, small_data, tmp_path):
    store = tmp_path / "store.db"
    seen = []
    kwargs = dict(storage=store, budget=TINY, seeds=(0,), variants=["bucket_mask", "windows"], data=small_data,
                  on_run=lambda v, s, m: seen.append((v.name, s, m["val_cinc_score"])))
    assert run_study("length", small_folder, max_runs=1, **kwargs) == 1  # interrupted after one run
    assert run_study("length", small_folder, **kwargs) == 1  # resumes with the other
    assert run_study("length", small_folder, **kwargs) == 0  # nothing left
    assert [(name, seed) for name, seed, _ in seen] == [("bucket_mask", 0), ("windows", 0)]

    rows, setup = study_rows("length", store)
    assert [(r["variant"], r["seed"], r["val_cinc_score"]) for r in rows] == seen
    assert setup["n_train"] == len(small_data.train_idx) and setup["budget"]["epochs"] == 1
    for r in rows:
        assert 0 <= r["val_cinc_score"] <= 1 and r["parameters"] > 0 and r["inference_records_per_s"] > 0

    assert main(["study", "length", "--store", str(store), "--output", str(tmp_path / "report"), "--note", "shared the CPU with a training"]) == 0
    paths = write_report("length", tmp_path / "report", store, min_seeds=1)
    assert "## Notes\n\n- shared the CPU with a training" in paths["md"].read_text()
    with open(paths["csv"], newline="") as f:
        written = list(csv.DictReader(f))
    assert [(r["variant"], float(r["val_cinc_score"])) for r in written] == [(n, s) for n, _, s in seen]
    text = paths["md"].read_text()
    assert "bucket_mask" in text and "windows" in text and "## Answer" in text
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with pytest.raises(ValueError, match="other settings"):
        run_study("length", small_folder, **{**kwargs, "budget": Budget(epochs=2, train_records=40, val_fraction=0.3, batch_size=16)})


def test_same_seed_gives_the_same_run(small_folder, small_data, tmp_path):
    """A fixed-input strategy end to end, twice in two stores: the same measurements' scores."""
    scores = []
    for store in ("a.db", "b.db"):
        run_study("length", small_folder, storage=tmp_path / store, budget=TINY, seeds=(3,), variants=["crop_pad"], data=small_data,
                  on_run=lambda v, s, m: scores.append((m["val_cinc_score"], m["final_loss"], m["parameters"])))
    assert len(scores) == 2 and scores[0] == scores[1]


def test_bad_settings_fail_before_anything_is_recorded(small_folder, small_data, tmp_path):
    store = tmp_path / "store.db"
    with pytest.raises(ValueError, match="epochs"):
        Budget(epochs=0)
    with pytest.raises(ValueError, match="margin"):
        run_study("depth", small_folder, storage=store, budget=TINY, margin=-0.1, data=small_data)
    with pytest.raises(ValueError, match="unknown depth variants"):
        run_study("depth", small_folder, storage=store, budget=TINY, variants=["9xLSTM"], data=small_data)
    assert not store.exists()


def test_cli_study_report_and_errors(small_folder, tmp_path, capsys):
    store, out = tmp_path / "store.db", tmp_path / "out"
    assert main(["study", "length", "--report-only", "--store", str(store), "--output", str(out)]) == 2
    assert "no recorded runs" in capsys.readouterr().err
    code = main(["study", "normalization", "--data", str(small_folder), "--store", str(store), "--output", str(out),
                 "--variants", "zscore/raw,nonsense", "--epochs", "1", "--train-records", "40", "--seeds", "0"])
    assert code == 2 and "nonsense" in capsys.readouterr().err


def test_summary_pairs_runs_by_seed_with_the_reference():
    rows = [{"variant": v, "seed": seed, "val_cinc_score": score, "parameters": 1, "config": "{}", "f1_N": 0, "f1_A": 0, "f1_O": 0, "f1_~": 0,
             "seconds_per_epoch": 1.0, "inference_records_per_s": 1.0}
            for v, scores in {"ref": [0.50, 0.60, 0.55], "worse": [0.45, 0.56, 0.49]}.items() for seed, score in enumerate(scores)]
    summary = {s["variant"]: s for s in summarise(rows, "ref")}
    assert summary["worse"]["delta"] == pytest.approx(-0.05)
    from scipy.stats import ttest_rel

    assert summary["worse"]["p"] == pytest.approx(ttest_rel([0.45, 0.56, 0.49], [0.50, 0.60, 0.55]).pvalue)
    assert np.isnan(summary["ref"]["delta"])
    assert summary["ref"]["sd"] == pytest.approx(np.std([0.50, 0.60, 0.55], ddof=1))
