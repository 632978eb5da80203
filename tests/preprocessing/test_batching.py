import numpy as np
import pytest

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.preprocessing.batching import WindowSequence, bucket_for, bucket_lengths, inference_batches, pad_batch
from ecgrhythm.preprocessing.pipeline import preprocess
from ecgrhythm.records import find_records, read_record


@pytest.fixture(scope="module")
def real_signals(cinc2017_dir):
    paths = find_records([cinc2017_dir])[:24]
    return [preprocess(read_record(p), PreprocessConfig(fs=150.0)) for p in paths]


def test_bucket_lengths_are_multiples_of_downsampling():
    buckets = bucket_lengths(150.0, 64)
    assert all(b % 64 == 0 for b in buckets)
    assert list(buckets) == sorted(buckets)
    # 30 s at 150 Hz = 4500 samples -> 71 * 64 = 4544
    assert bucket_for(4500, buckets) == 4544
    assert bucket_for(1, buckets) == buckets[0]
    assert bucket_for(10**7, buckets) == buckets[-1]


def test_pad_batch_pads_post_and_masks_true_lengths(real_signals):
    signals = real_signals[:3]
    length = max(len(s) for s in signals) + 100
    x, mask = pad_batch(signals, length, batch_size=5)
    assert x.shape == (5, length, 1) and mask.shape == (5, length) and mask.dtype == bool
    for i, s in enumerate(signals):
        assert mask[i].sum() == len(s)
        np.testing.assert_array_equal(x[i, : len(s)], s)
        assert not x[i, len(s) :].any()
    assert not mask[3:].any() and not x[3:].any()


def test_window_sequence_is_seeded_and_full(real_signals):
    labels = np.arange(len(real_signals)) % 4
    kwargs = dict(window=1472, batch_size=5, seed=3)
    a, b = WindowSequence(real_signals, labels, **kwargs), WindowSequence(real_signals, labels, **kwargs)
    assert len(a) == len(real_signals) // 5
    xa, ya = a[0]
    xb, yb = b[0]
    np.testing.assert_array_equal(xa["signal"], xb["signal"])
    np.testing.assert_array_equal(ya, yb)
    assert xa["signal"].shape == (5, 1472, 1) and xa["mask"].shape == (5, 1472)
    b.set_epoch(1)
    assert not np.array_equal(a.order, b.order) or not np.array_equal(a.starts, b.starts)
    # each window is a contiguous piece of its record
    for row, i in enumerate(a.order[:5]):
        start = a.starts[i]
        np.testing.assert_array_equal(xa["signal"][row, :, 0], real_signals[i][start : start + 1472, 0])


def test_window_sequence_pads_short_records():
    short = [np.ones((300, 1), np.float32), np.ones((2000, 1), np.float32)]
    seq = WindowSequence(short, [0, 1], window=1024, batch_size=2, sample_weight=[1.0, 2.0], seed=0)
    inputs, y, w = seq[0]
    by_label = dict(zip(y.tolist(), range(2)))
    assert inputs["mask"][by_label[0]].sum() == 300
    assert inputs["mask"][by_label[1]].sum() == 1024
    assert sorted(w.tolist()) == [1.0, 2.0]


def test_window_sequence_takes_a_record_as_long_as_the_window_or_a_little_shorter_whole(real_signals):
    from ecgrhythm.preprocessing.pipeline import crop_or_pad

    window = 4544  # 30 s at 150 Hz (4,500 samples) rounded up to a multiple of 64
    exact, short = crop_or_pad(real_signals[0], window, window), crop_or_pad(real_signals[1], 4500, 4500)
    seq = WindowSequence([exact, short], [0, 1], window=window, batch_size=2, seed=3)
    for epoch in range(3):
        seq.set_epoch(epoch)
        inputs, y = seq[0]
        for row, label in enumerate(y.tolist()):
            signal = (exact, short)[label]
            np.testing.assert_array_equal(inputs["signal"][row, : len(signal)], signal)
            assert inputs["mask"][row].sum() == len(signal) and inputs["mask"][row, : len(signal)].all()


def test_the_row_blocks_of_the_processes_make_up_the_batch_of_one_process(real_signals):
    labels, weights = np.arange(len(real_signals)) % 4, np.linspace(0.5, 2.0, len(real_signals))
    kwargs = dict(window=1472, batch_size=6, sample_weight=weights, seed=3, epoch=2, augment=("scale", "noise"), fs=150.0)
    whole = WindowSequence(real_signals, labels, **kwargs)
    blocks = [WindowSequence(real_signals, labels, rows=(i, 3), **kwargs) for i in range(3)]
    assert [len(b) for b in blocks] == [len(whole)] * 3
    for index in (0, len(whole) - 1):
        (x, y, w), parts = whole[index], [b[index] for b in blocks]
        assert all(len(part[1]) == 2 for part in parts)
        for key in ("signal", "mask"):
            np.testing.assert_array_equal(np.concatenate([part[0][key] for part in parts]), x[key])
        np.testing.assert_array_equal(np.concatenate([part[1] for part in parts]), y)
        np.testing.assert_array_equal(np.concatenate([part[2] for part in parts]), w)
    with pytest.raises(ValueError, match="rows"):
        WindowSequence(real_signals, labels, rows=(3, 3), **kwargs)


def test_inference_batches_cover_every_signal_once(real_signals):
    buckets = bucket_lengths(150.0, 64)
    seen = []
    for idx, x, mask in inference_batches(real_signals, buckets, batch_size=8):
        assert x.shape[0] == 8 and x.shape[1] in buckets
        for row, i in enumerate(idx):
            assert mask[row].sum() == len(real_signals[i])
        seen.extend(idx)
    assert sorted(seen) == list(range(len(real_signals)))
