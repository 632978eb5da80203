"""The shared filter designs: scipy's Butterworth design, made once per setting, which no caller can change."""

import numpy as np
from scipy.signal import butter, sosfiltfilt

from ecgrhythm.preprocessing.filters import butterworth_sos, zero_phase
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
