import numpy as np
import pytest

from ecgrhythm.config import PreprocessConfig, TrainConfig
from ecgrhythm.preprocessing.augmentation import AUGMENTATIONS, augment_batch
from ecgrhythm.preprocessing.batching import WindowSequence, pad_batch
from ecgrhythm.preprocessing.pipeline import preprocess
from ecgrhythm.records import read_record

FS = 100.0


@pytest.fixture(scope="module")
def batch(cinc2017_dir):
    """Three real records at 100 Hz, z-scored, padded to 40 s: one longer than that, two shorter (9 s and 30 s)."""
    config = PreprocessConfig(fs=FS)
    signals = [preprocess(read_record(cinc2017_dir / f"{n}.hea"), config) for n in ("A00005", "A00001", "A00006")]
    return pad_batch(signals, 4000)


@pytest.mark.parametrize("kinds", [(name,) for name in AUGMENTATIONS] + [AUGMENTATIONS])
def test_augmentations_keep_shapes_dtypes_and_zero_padding(batch, kinds):
    x, mask = batch
    y, m = augment_batch(x.copy(), mask.copy(), kinds, fs=FS, rng=np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32 and m.shape == mask.shape and m.dtype == bool
    assert np.all(y[~m] == 0)
    for row in m:  # real samples stay a prefix of each row
        n = int(row.sum())
        assert row[:n].all() and not row[n:].any()
    if "stretch" not in kinds:
        np.testing.assert_array_equal(m, mask)
    assert not np.array_equal(y, x)


def test_sign_inversion_and_scaling_change_only_sign_and_size(batch):
    x, mask = batch
    y, _ = augment_batch(x, mask, ("flip",), fs=FS, rng=np.random.default_rng(3))
    signs = [np.sign(np.sum(a * b)) for a, b in zip(y, x)]
    assert set(signs) <= {-1.0, 1.0} and all(np.allclose(np.abs(a), np.abs(b)) for a, b in zip(y, x))
    z, _ = augment_batch(x, mask, ("scale",), fs=FS, rng=np.random.default_rng(3))
    ratios = [np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(z, x)]
    assert all(0.8 <= r <= 1.25 for r in ratios)


def test_stretch_moves_the_end_of_the_real_samples_with_the_mask(batch):
    x, mask = batch
    y, m = augment_batch(x, mask, ("stretch",), fs=FS, rng=np.random.default_rng(1))
    before, after = mask.sum(axis=1), m.sum(axis=1)
    assert after[0] == before[0] == 4000  # a full row stays full (the stretched record is cut at the window)
    assert np.all(np.abs(after[1:] / before[1:] - 1) <= 0.1 + 1e-3) and not np.array_equal(after[1:], before[1:])


def test_the_same_seed_gives_the_same_batches_and_unknown_names_are_refused(batch, cinc2017_dir):
    x, mask = batch
    first = augment_batch(x, mask, AUGMENTATIONS, fs=FS, rng=np.random.default_rng(7))
    again = augment_batch(x, mask, AUGMENTATIONS, fs=FS, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(first[0], again[0])
    with pytest.raises(ValueError, match="`kinds`"):
        augment_batch(x, mask, ("mirror",), fs=FS, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="`augment`"):
        TrainConfig(augment=("mirror",))


def test_window_sequence_augments_reproducibly_by_epoch_and_batch(batch):
    x, mask = batch
    signals = [row[: int(n)] for row, n in zip(x, mask.sum(axis=1))]
    make = lambda augment: WindowSequence(signals, np.arange(3), window=1000, batch_size=3, seed=4, augment=augment, fs=FS)  # noqa: E731
    plain, one, two = make(()), make(("flip", "noise")), make(("flip", "noise"))
    for seq in (plain, one, two):
        seq.set_epoch(2)
    assert not np.array_equal(plain[0][0]["signal"], one[0][0]["signal"])
    np.testing.assert_array_equal(one[0][0]["signal"], two[0][0]["signal"])  # a resumed run sees the same batch
    np.testing.assert_array_equal(one[0][0]["mask"], plain[0][0]["mask"])
    with pytest.raises(ValueError, match="`fs`"):
        WindowSequence(signals, np.arange(3), window=1000, batch_size=3, augment=("flip",))


@pytest.fixture(scope="module")
def rr_batch(cinc2017_dir):
    """The records of `batch` with their RR channel (the last of 2 channels), padded to 40 s."""
    config = PreprocessConfig(fs=FS, rr_channel=True)
    signals = [preprocess(read_record(cinc2017_dir / f"{n}.hea"), config) for n in ("A00005", "A00001", "A00006")]
    return pad_batch(signals, 4000)


@pytest.mark.parametrize("kind", ["flip", "scale", "noise", "wander"])
def test_waveform_augmentations_leave_the_rr_channel_alone(rr_batch, batch, kind):
    x, mask = rr_batch
    y, m = augment_batch(x.copy(), mask.copy(), (kind,), fs=FS, rng=np.random.default_rng(3), interval_channels=1)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(m, mask)
    np.testing.assert_array_equal(y[:, :, 1], x[:, :, 1])
    assert not np.array_equal(y[:, :, 0], x[:, :, 0])
    # the lead gets exactly what it gets in a batch without the RR channel, from the same draws
    alone, _ = augment_batch(batch[0].copy(), batch[1].copy(), (kind,), fs=FS, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(y[:, :, :1], alone)


def test_stretch_stretches_the_rr_channel_in_time_and_scales_its_intervals(rr_batch):
    x, mask = rr_batch
    y, m = augment_batch(x, mask, ("stretch",), fs=FS, rng=np.random.default_rng(1), interval_channels=1)
    factors = np.random.default_rng(1).uniform(0.9, 1.1, size=len(x))  # the draws of the stretch
    for i, factor in enumerate(factors):
        n, k = int(mask[i].sum()), int(m[i].sum())
        rr_in, rr_out = x[i, :n, 1], y[i, :k, 1]
        assert rr_out.max() == pytest.approx(factor * rr_in.max(), rel=1e-5) and rr_out.min() >= factor * rr_in.min() * (1 - 1e-5)
        if k < len(mask[i]):  # not cut at the window: the stretched length follows the factor
            assert k == round(n * factor)
    assert np.all(y[~m] == 0)


def test_interval_channels_must_leave_a_lead(rr_batch):
    x, mask = rr_batch
    for bad in (2, -1):
        with pytest.raises(ValueError, match="`interval_channels`"):
            augment_batch(x, mask, ("flip",), fs=FS, rng=np.random.default_rng(0), interval_channels=bad)
