"""Lead choice for single-lead models: by name on hand-made records, by signal quality on real ones (a real 2-lead record is also in test_inference)."""

import numpy as np
import pytest

from ecgrhythm.preprocessing.leads import choose_lead, chosen_lead, input_columns, lead_index
from ecgrhythm.preprocessing.quality import CHECK_S, CLEAR, lead_quality
from ecgrhythm.records import EcgRecord, RecordError, read_record


def _record(names):
    signal = np.stack([np.full(600, i, dtype=np.float32) for i in range(len(names))], axis=1)
    return EcgRecord(signal, 100.0, tuple(names), "rec")


def test_default_is_the_models_lead_then_lead_i_then_the_first():
    assert lead_index(("II", " i ", "V1"), None) == 1
    assert lead_index(("II", "I", "V1"), None, default="v1") == 2
    assert lead_index(("II", "I"), None, default="aVR") == 1
    assert lead_index(("MLII", "V5"), None) == 0


def test_a_lead_by_name_or_index():
    record = _record(["I", "II", "V1"])
    one, name = choose_lead(record, "v1", 1)
    assert name == "V1" and one.sig_name == ("V1",) and (one.signal == 2).all() and one.record_name == "rec"
    assert choose_lead(record, 1, 1)[1] == choose_lead(record, "1", 1)[1] == "II"
    with pytest.raises(
        RecordError, match=r"rec: no lead 3: the record has \['I', 'II', 'V1'\]; the `lead` argument takes one of these names or an index from 0 to 2"
    ):
        choose_lead(record, 3, 1)
    with pytest.raises(RecordError, match="no lead 'aVF'"):
        choose_lead(record, "aVF", 1)


def test_single_lead_records_and_multi_lead_models():
    single = _record(["ECG"])
    assert choose_lead(single, None, 1) == (single, "ECG")
    assert choose_lead(single, 0, 1) == (single, "ECG")
    record = _record(["I", "II"])
    assert choose_lead(record, None, 2) == (record, None)  # a multi-lead model takes the record as it is
    with pytest.raises(ValueError, match="`lead`: the model takes 2 leads"):
        choose_lead(record, "I", 2)
    assert choose_lead(record, None, 1, model_leads=("II",))[1] == "II"


@pytest.mark.parametrize("lead", ["²", "٣", "9" * 5000])
def test_lead_values_that_look_like_digits_get_the_usual_error(lead):
    with pytest.raises(RecordError, match="no lead"):
        choose_lead(_record(["I", "II"]), lead, 1)


def test_the_columns_a_model_takes_and_the_one_lead_count_check():
    names = ("I", "II", "V1")
    assert input_columns(names, "v1", 1) == ([2], "V1") and input_columns(names, None, 1, model_leads=("II",)) == ([1], "II")
    assert input_columns(names, None, 3) == ([0, 1, 2], None)
    assert input_columns(names, None, 2, model_leads=("V1", "I")) == ([2, 0], None)  # in the model's order
    with pytest.raises(RecordError, match=r"rec: the record has 3 leads \(I, II, V1\) but the model takes 2; classify records with 2 lead"):
        input_columns(names, None, 2, source="rec")
    with pytest.raises(RecordError, match=r"missing leads \['aVF'\]"):
        input_columns(names, None, 2, model_leads=("I", "aVF"))
    with pytest.raises(ValueError, match="`lead`: the model takes 2 leads"):
        input_columns(names, "I", 2)


# The best lead on real records: lead I damaged as a lead is in practice (ISSUE #34, item 3).
DAMAGES = ("zeros", "disconnected", "noise")


def _damaged(record, column: int, damage: str):
    """`record` with lead `column` replaced by zeros, a flat line with one step (a lead coming off), or white noise of its scale."""
    signal = record.signal.copy()
    x = signal[:, column]
    if damage == "zeros":
        signal[:, column] = 0.0
    elif damage == "disconnected":
        signal[:, column] = x[0]
        signal[len(x) // 3 :, column] = x[0] + 1.0
    else:
        signal[:, column] = np.random.default_rng(column).normal(0.0, x.std(), len(x))
    return EcgRecord(signal, record.fs, record.sig_name, record.record_name)


@pytest.fixture(scope="module")
def two_sets(cpsc2021_dir, cinc2021_dir):
    """Every cpsc2021 sample record (leads I and II) and 20 of the 50 cinc2021 records (12 leads)."""
    records = [read_record(h) for h in sorted(cpsc2021_dir.glob("*.hea"))]
    records += [read_record(h) for h in sorted(cinc2021_dir.glob("*.hea"))[::2][:20]]
    assert len(records) == 38 and all(r.sig_name[0] == "I" for r in records)
    return records


def test_clean_records_keep_lead_i(two_sets):
    for record in two_sets:
        one, name = choose_lead(record, None, 1)
        assert name == "I", record.record_name
        np.testing.assert_array_equal(one.signal[:, 0], record.signal[:, 0])


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_lead_i_gives_way_to_a_clean_lead(two_sets, damage):
    for record in two_sets:
        damaged = _damaged(record, 0, damage)
        one, name = choose_lead(damaged, None, 1)
        assert name != "I", (record.record_name, damage)
        if record.n_leads == 2:
            assert name == "II"
        column = record.sig_name.index(name)
        assert lead_quality(record.signal[:, column], record.fs) >= CLEAR
        np.testing.assert_array_equal(one.signal[:, 0], record.signal[:, column])  # the clean lead, as it was
        assert input_columns(damaged.sig_name, None, 1, signal=damaged.signal, fs=damaged.fs) == ([column], name)
        for lead in ("I", 0):  # a lead named by the caller is taken, whatever it holds
            assert choose_lead(damaged, lead, 1)[1] == "I"


def test_the_first_minutes_choose_as_the_whole_record(cpsc2021_dir):
    record = read_record(cpsc2021_dir / "data_21_8.hea")  # 518 s: read in pieces, its first CHECK_S seconds decide
    n = int(CHECK_S * record.fs)
    for damage in DAMAGES:
        damaged = _damaged(record, 0, damage)
        head = damaged.signal[:n]
        assert input_columns(damaged.sig_name, None, 1, signal=head, fs=damaged.fs) == ([1], "II")
        assert choose_lead(damaged, None, 1)[1] == "II"
        later = EcgRecord(np.concatenate([record.signal[:n], damaged.signal[n:]]), record.fs, record.sig_name, "later")
        assert choose_lead(later, None, 1)[1] == "I"  # damaged after the first minutes only: not looked at
    multi = input_columns(record.sig_name, None, 2, signal=_damaged(record, 0, "zeros").signal, fs=record.fs)
    assert multi == ([0, 1], None)  # a multi-lead model takes every lead


def test_the_samples_must_fit_the_leads():
    signal = np.zeros((600, 2), np.float32)
    with pytest.raises(ValueError, match=r"Invalid argument `fs`: .*Received: fs=None"):
        chosen_lead(("I", "II"), None, 1, signal=signal)
    with pytest.raises(
        ValueError, match=r"Invalid argument `signal`: expected an array \(n_samples, 3\), one column per lead of \['I', 'II', 'V1'\]"
    ):
        chosen_lead(("I", "II", "V1"), None, 1, signal=signal, fs=100.0)


def test_a_damaged_record_is_classified_as_its_clean_lead_alone(clf, two_sets):
    chosen = [r for r in two_sets if r.duration_s < 60]  # the 10 s cinc2021 records and the two shortest cpsc2021 ones
    assert len(chosen) == 22
    for damage in DAMAGES:
        damaged = [_damaged(r, 0, damage) for r in chosen]
        leads = [clf.choose_lead(d) for d in damaged]
        alone = [choose_lead(r, name, 1)[0] for r, (_, name) in zip(chosen, leads)]  # the clean record's lead, named
        got = clf.predict_records([one for one, _ in leads])
        expected = clf.predict_records(alone)
        assert got.labels == expected.labels
        np.testing.assert_array_equal(got.probabilities, expected.probabilities)
        as_lead_i = clf.predict_prepared([clf.prepare(d, lead="I") for d in damaged])  # what lead I alone, damaged, would give
        assert not np.allclose(as_lead_i, got.probabilities)


def test_a_streamed_record_takes_the_lead_a_whole_read_takes(tmp_path, cpsc2021_dir, clf):
    """A record read in pieces gets the lead chosen by quality from its first minutes, as when read whole."""
    import wfdb

    from ecgrhythm.inference.long_records import stream_columns
    from ecgrhythm.records.long_records import open_long_record

    record = read_record(cpsc2021_dir / "data_101_6.hea")
    damaged = record.signal.copy()
    damaged[:, 0] = 0.0  # lead I disconnected
    wfdb.wrsamp(
        "damaged", fs=record.fs, units=["mV", "mV"], sig_name=list(record.sig_name), p_signal=damaged, fmt=["16", "16"], write_dir=str(tmp_path)
    )
    whole, _ = clf.input_columns(record.sig_name, signal=damaged, fs=record.fs)
    with open_long_record(tmp_path / "damaged.hea") as stream:
        assert stream_columns(clf, stream) == (whole, "II") and whole == [1]
        assert stream_columns(clf, stream, "I") == ([0], "I")  # a lead asked for is taken as it is
