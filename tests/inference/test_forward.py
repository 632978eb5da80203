"""Running a network in bucketed batches: which buckets are used, and batching that never changes a prediction."""

import numpy as np

from ecgrhythm.inference.forward import _batch_buckets, predict_signals
from ecgrhythm.records import read_record


def test_merging_small_buckets():
    buckets = (100, 200, 300, 400)
    # 100: 3 signals (< 4) merge into 200; 200: 5 stay; 300: none; 400: 1 (largest in use) stays.
    assert _batch_buckets([50] * 3 + [150] * 5 + [400], buckets, min_count=4) == (200, 400)
    # Only small groups: everything rides in the largest bucket in use.
    assert _batch_buckets([50, 150, 250], buckets, min_count=4) == (300,)
    assert _batch_buckets([50] * 4, buckets, min_count=4) == (100,)
    assert _batch_buckets([], buckets, min_count=4) == buckets


def test_batched_prediction_equals_one_record_at_a_time(clf, paths):
    signals = [clf.prepare(read_record(p)) for p in paths]
    together = predict_signals(clf.model_, signals, clf.buckets_)  # all in the largest bucket in use
    alone = np.concatenate([predict_signals(clf.model_, [s], clf.buckets_) for s in signals])  # each in its own bucket
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-5)
