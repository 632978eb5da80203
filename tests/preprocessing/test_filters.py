"""The shared filter designs: scipy's Butterworth design, made once per setting, which no caller can change."""

import numpy as np
from scipy.signal import butter, sosfiltfilt

from ecgrhythm.preprocessing.filters import butterworth_sos, zero_phase, zero_phase_lead
from ecgrhythm.records import read_record


def test_designs_are_scipys_and_a_caller_cannot_change_them():
    sos = butterworth_sos(300.0, 0.5, 40.0)
    np.testing.assert_array_equal(sos, butter(3, [0.5, 40.0], btype="bandpass", fs=300.0, output="sos"))
    np.testing.assert_array_equal(butterworth_sos(150.0, 0, 40.0), butter(3, 40.0, btype="lowpass", fs=150.0, output="sos"))
    sos[0, 0] = 1.0
    assert butterworth_sos(300.0, 0.5, 40.0)[0, 0] != 1.0


def test_zero_phase_filters_a_real_record_as_sosfiltfilt_does(cinc2017_dir):
    x = read_record(cinc2017_dir / "A00001.hea").signal.astype(np.float64)
    sos = butterworth_sos(300.0, 0.5, 40.0)
    np.testing.assert_array_equal(zero_phase(x, sos), sosfiltfilt(sos, x, axis=0, padlen=3 * (2 * len(sos) + 1)))
    np.testing.assert_array_equal(zero_phase(x[:, 0], sos), zero_phase(x, sos)[:, 0])


def test_zero_phase_lead_is_sosfiltfilt_to_the_last_bit_on_real_leads(cinc2017_dir):
    for name in ("A00001", "A00004", "A00056"):
        x = read_record(cinc2017_dir / f"{name}.hea").signal[:, 0].astype(np.float64)
        for low, high, order, fs in ((5.0, 30.0, 2, 300.0), (0.5, 40.0, 3, 300.0), (5.0, 30.0, 2, 150.0)):
            sos = butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
            np.testing.assert_array_equal(zero_phase_lead(x, fs, low, high, order), sosfiltfilt(sos, x), err_msg=name)
            np.testing.assert_array_equal(zero_phase_lead(x[:3000], fs, low, high, order), sosfiltfilt(sos, x[:3000]))
