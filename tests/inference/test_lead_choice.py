"""Lead choice for single-lead models (hand-made records; a real 2-lead record is in test_inference)."""

import numpy as np
import pytest

from ecgrhythm.preprocessing.leads import choose_lead, input_columns, lead_index
from ecgrhythm.records import EcgRecord, RecordError


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
