"""The rate and unit check from the signal itself, on real records at their true rate and at wrong ones."""

import csv
import warnings

import numpy as np
import pytest

from ecgrhythm.preprocessing import plausibility
from ecgrhythm.preprocessing.plausibility import STAGES_S, ImplausibleRecordWarning, check_signal, warn_if_implausible
from ecgrhythm.records import read_record

# A01519 (AF, 151 bpm when read at 500 Hz) and A00161 (O) are records whose wrong rates the check catches and
# whose true rate it names; at a wrong rate most records are not caught (see the module's docstring).
CAUGHT_AT_500, CAUGHT_AT_150 = "A01519", "A00161"


def _cinc2017(cinc2017_dir, name):
    return read_record(cinc2017_dir / f"{name}.hea")


def _every_240th(cinc2017_dir):
    with open(cinc2017_dir / "REFERENCE.csv", newline="") as f:
        return [name for name, _ in sorted(csv.reader(f))][::240]


def test_real_records_at_their_true_rate_raise_no_warning(cinc2017_dir, cpsc2021_dir, cinc2021_dir):
    records = [_cinc2017(cinc2017_dir, n) for n in _every_240th(cinc2017_dir)]
    records += [read_record(h) for h in sorted(cpsc2021_dir.glob("*.hea"))]
    records += [read_record(h) for h in sorted(cinc2021_dir.glob("*.hea"))]
    assert len(records) == 31 + 18 + 50 and {r.fs for r in records} == {300.0, 200.0, 500.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImplausibleRecordWarning)
        for record in records:
            found = warn_if_implausible(record.signal, record.fs, record.record_name)
            assert found.ok, (record.record_name, found)


def test_a_noisy_record_is_undetermined_not_flagged(cinc2017_dir):
    noisy = _cinc2017(cinc2017_dir, "A00056")  # class ~: the beats do not look alike
    for fs in (150, 300, 500):
        found = check_signal(noisy.signal, fs, quick=False)
        assert found.ok and found.heart_rate_bpm is None and found.r_amplitude > 0
        # its QRS envelope repeats regularly enough for the quick look, which settles it at 300 and 500 Hz
        assert check_signal(noisy.signal, fs).ok


def test_the_quick_look_settles_a_regular_record_without_beats(cinc2017_dir):
    record = _cinc2017(cinc2017_dir, "A00001")
    quick, beats = check_signal(record.signal, 300), check_signal(record.signal, 300, quick=False)
    assert quick.ok and quick.r_width_ms is None and beats.r_width_ms is not None
    assert quick.heart_rate_bpm == pytest.approx(beats.heart_rate_bpm, rel=0.05)


def test_the_quick_look_settles_an_irregular_record_from_its_envelope_peaks(cinc2017_dir, monkeypatch):
    record = _cinc2017(cinc2017_dir, "A00004")  # AF: its QRS envelope does not repeat, its peaks give the rate
    quick, beats = check_signal(record.signal, 300), check_signal(record.signal, 300, quick=False)
    assert quick.ok and quick.r_width_ms is None
    assert quick.heart_rate_bpm == pytest.approx(beats.heart_rate_bpm, rel=0.05)
    monkeypatch.setattr(plausibility, "QUICK_PEAK_MIN_COUNT", 10**6)  # the peaks cannot settle it: the beats decide
    assert check_signal(record.signal, 300).r_width_ms is not None


@pytest.mark.parametrize(("name", "wrong_fs"), [(CAUGHT_AT_500, 500), (CAUGHT_AT_150, 150)])
def test_a_wrong_rate_is_named_with_the_true_one(cinc2017_dir, name, wrong_fs):
    record = _cinc2017(cinc2017_dir, name)
    assert check_signal(record.signal, 300).ok
    with pytest.warns(ImplausibleRecordWarning, match=rf"{name}: implausible record at fs={wrong_fs} Hz: .*looks like 300 Hz") as caught:
        found = warn_if_implausible(record.signal, wrong_fs, name)
    assert found.plausible_fs == 300 and caught[0].message.source == name


def test_the_heart_rate_scales_with_the_rate_given(cinc2017_dir):
    record = _cinc2017(cinc2017_dir, "A01347")  # normal rhythm: its rate in the first 10 s is that of the whole record
    at_500 = check_signal(record.signal, 500).heart_rate_bpm
    assert at_500 * 300 / 500 == pytest.approx(check_signal(record.signal, 300).heart_rate_bpm, rel=0.02)


def test_a_rate_far_off_is_caught_on_a_typical_record(cinc2017_dir):
    record = _cinc2017(cinc2017_dir, "A00001")
    at_1000 = check_signal(record.signal, 1000)
    assert "heart rate 263 bpm" in at_1000.problems[0] and at_1000.plausible_fs == 300


def test_units_off_by_a_thousand_are_named(cinc2017_dir):
    record = _cinc2017(cinc2017_dir, "A00004")
    assert check_signal(record.signal, 300).unit_hint is None
    with pytest.warns(ImplausibleRecordWarning, match="unit looks like uV"):
        found = warn_if_implausible(record.signal * 1000, 300, "A00004")
    # the quick look settles A00004 in mV (AF: from its envelope's peaks), so the amplitude to compare is the beats'
    assert found.r_amplitude == pytest.approx(1000 * check_signal(record.signal, 300, quick=False).r_amplitude) and found.plausible_fs is None
    assert check_signal(record.signal / 1000, 300).unit_hint == "V"


def test_the_warning_becomes_an_error_with_the_standard_filter(cinc2017_dir):
    record = _cinc2017(cinc2017_dir, CAUGHT_AT_500)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImplausibleRecordWarning)
        with pytest.raises(ImplausibleRecordWarning, match="looks like 300 Hz"):
            warn_if_implausible(record.signal, 500, "x")


def test_only_the_first_minutes_are_checked_and_edge_cases_say_nothing():
    assert check_signal(np.zeros(3000), 300).ok  # flat: nothing to measure
    assert check_signal(np.zeros(3000), 300).r_amplitude is None
    rng = np.random.default_rng(0)
    assert check_signal(rng.normal(0, 0.3, 9000), 300).heart_rate_bpm is None  # white noise: undetermined


def test_a_longer_stretch_is_measured_only_when_the_first_cannot_tell(cpsc2021_dir):
    record = read_record(cpsc2021_dir / "data_101_6.hea")
    lead = np.asarray(record.signal[: int(120 * record.fs), 0], dtype=np.float64)
    first = STAGES_S[0]
    assert check_signal(lead, record.fs).heart_rate_bpm == check_signal(lead, record.fs, stages=(first,)).heart_rate_bpm
    disconnected_start = lead.copy()
    disconnected_start[: int((first + 5) * record.fs)] = 0.0  # no beats in the first stretch: undetermined there
    assert check_signal(disconnected_start, record.fs, stages=(first,)).heart_rate_bpm is None
    found = check_signal(disconnected_start, record.fs)
    assert found.ok and 40 < found.heart_rate_bpm < 150
