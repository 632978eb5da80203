"""Lead quality (the beat template-matching index) and the best lead, on real leads and leads damaged by hand."""

import numpy as np
import pytest

from ecgrhythm.preprocessing.quality import CHECK_S, CLEAR, MARGIN, USABLE, beat_matrix, best_lead, lead_quality, likeness, stream_head
from ecgrhythm.records import open_wfdb, read_record


@pytest.fixture(scope="module")
def sample_records(cpsc2021_dir, cinc2021_dir):
    """The 18 cpsc2021 and 50 cinc2021 sample records, whose lead I set `USABLE`."""
    return [read_record(h) for h in sorted(cpsc2021_dir.glob("*.hea")) + sorted(cinc2021_dir.glob("*.hea"))]


def test_real_leads_score_as_usable_and_noise_flat_and_steps_do_not(sample_records):
    assert len(sample_records) == 68
    for k, record in enumerate(sample_records):
        x = record.signal[:, 0]
        assert lead_quality(x, record.fs) >= USABLE, record.record_name
        noise = np.random.default_rng(k).normal(0.0, x.std(), len(x))
        assert lead_quality(noise, record.fs) < USABLE, record.record_name
        step = np.zeros(len(x))
        step[len(x) // 3 :] = 1.0
        assert lead_quality(step, record.fs) == lead_quality(np.zeros(len(x)), record.fs) == 0.0


def test_af_scores_as_high_as_sinus_rhythm(cinc2017_dir):
    af, normal = (read_record(cinc2017_dir / f"{name}.hea") for name in ("A00004", "A00001"))  # labelled A and N
    assert lead_quality(af.signal[:, 0], af.fs) > 0.9 and lead_quality(normal.signal[:, 0], normal.fs) > 0.9


def test_a_lead_dead_for_a_stretch_scores_by_the_blocks_it_is_alive(cinc2017_dir):
    record = read_record(cinc2017_dir / "A00004.hea")  # 30 s at 300 Hz: 15 blocks of 2 s
    x = record.signal[:, 0].astype(np.float64)
    x[int(16 * record.fs) :] = x[int(16 * record.fs)]  # flat (or pinned at a rail) from 16 s: 8 blocks of 15 left alive
    beats, template, _ = beat_matrix(x, record.fs)
    assert lead_quality(x, record.fs) == pytest.approx(likeness(beats, template) * 8 / 15)
    assert lead_quality(x * 1e-3, record.fs) == 0.0  # every block moves less than 0.02 mV: flat


def test_the_preferred_lead_is_kept_unless_unusable_and_clearly_beaten(cinc2021_dir):
    record = read_record(cinc2021_dir / "JS20000.hea")  # leads II and III score poorly here, aVR well
    scores = dict(zip(record.sig_name, (lead_quality(record.signal[:, k], record.fs) for k in range(record.n_leads))))
    assert USABLE <= scores["I"] < CLEAR and scores["III"] < USABLE <= scores["II"] < CLEAR <= scores["aVR"]
    column = record.sig_name.index
    assert best_lead(record.signal, record.fs, column("I")) == column("I")  # usable: kept, though aVR is better
    flat_i = record.signal.copy()
    flat_i[:, 0] = 0.0
    assert best_lead(flat_i, record.fs, 0) == column("aVR")  # the first lead of the record scoring CLEAR, not lead II
    pair = record.signal[:, [column("III"), column("II")]]  # III unusable, II better but by less than MARGIN
    assert scores["II"] - scores["III"] < MARGIN and best_lead(pair, record.fs, 0) == 0
    noise_pair = np.stack([np.zeros(record.n_samples), np.random.default_rng(0).normal(0, 0.1, record.n_samples)], axis=1)
    assert best_lead(noise_pair, record.fs, 0) == 0  # nothing clearly better: kept


def test_a_stream_gives_the_first_minutes_of_the_record_read_whole(cpsc2021_dir):
    header = cpsc2021_dir / "data_21_8.hea"  # 518 s
    whole = read_record(header)
    with open_wfdb(header) as stream:
        head = stream_head(stream)
    assert head.shape == (int(CHECK_S * whole.fs), 2)
    np.testing.assert_array_equal(head, whole.signal[: len(head)])


def test_a_streams_head_is_bounded_in_samples_whatever_the_rate():
    from ecgrhythm.preprocessing.quality import HEAD_VALUES, stream_head

    class Stream:  # 55 minutes of 4 leads at 100 kHz, as a header may claim
        fs, n_samples, sig_name = 100_000.0, 330_000_000, ("I", "II", "III", "V1")

        def read(self, start, stop, channels=None):
            return np.zeros((stop - start, 4), np.float32)

    assert len(stream_head(Stream())) == HEAD_VALUES // 4  # not CHECK_S * fs = 18 million samples per lead
