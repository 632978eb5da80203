"""The batcher: concurrent requests' signals share network calls, and each request gets its own rows back."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.records import read_record
from ecgrhythm.service.batching import Batcher
from ecgrhythm.service.work import ClientGone, Ticket


@pytest.fixture(scope="module")
def clf(tiny_model_dir):
    return RhythmClassifier.load(tiny_model_dir)


@pytest.fixture(scope="module")
def prepared(clf, cinc2017_dir):
    """Whole records and their 10 s windows, prepared, for three real CinC 2017 records."""
    out = []
    for name in ("A00001", "A00002", "A00004"):
        signal = clf.prepare(read_record(cinc2017_dir / f"{name}.hea"))
        out.append([signal, *(signal[i : i + 1000] for i in range(0, len(signal) - 999, 1000))])
    return out


def _in_threads(fns):
    results, errors = [None] * len(fns), []

    def run(i):
        try:
            results[i] = fns[i]()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, errors


def test_concurrent_calls_share_one_network_call_and_get_their_own_rows(clf, prepared):
    # A long window: the batcher waits until each of the three requests at work has sent its call.
    batcher = Batcher(clf, window_s=60, max_batch=64).start()
    try:
        with contextlib.ExitStack() as members:
            for _ in prepared:
                members.enter_context(batcher.member())
            fns = [lambda s=signals: batcher.predict(s, calibrated=False, ticket=Ticket(60)) for signals in prepared]
            results, errors = _in_threads(fns)
    finally:
        batcher.close()
    assert errors == [] and batcher.calls == 1
    for signals, rows in zip(prepared, results):
        np.testing.assert_allclose(rows, clf.predict_prepared(signals, calibrated=False), rtol=0, atol=1e-6)


def test_a_call_over_the_batch_bound_is_served_in_turns_and_options_are_kept_apart(clf, prepared):
    signals = [s for record in prepared for s in record]  # 12 signals
    batcher = Batcher(clf, window_s=0.001, max_batch=5).start()
    try:
        calibrated = batcher.predict(signals, ticket=Ticket(60))
        one_network = batcher.predict(signals[:2], calibrated=False, networks=1, ticket=Ticket(60))
    finally:
        batcher.close()
    assert batcher.calls == 3 + 1
    np.testing.assert_allclose(calibrated, clf.predict_prepared(signals), rtol=0, atol=1e-6)
    np.testing.assert_allclose(one_network, clf.predict_prepared(signals[:2], calibrated=False, networks=1), rtol=0, atol=1e-6)


def test_a_request_whose_client_left_stops_between_turns(clf, prepared, monkeypatch):
    signals = [s for record in prepared for s in record]
    ticket = Ticket(60)
    original, sizes = clf.predict_prepared, []

    def counted(batch, **kwargs):
        sizes.append(len(batch))
        ticket.cancelled.set()  # the client leaves during the first turn
        return original(batch, **kwargs)

    monkeypatch.setattr(clf, "predict_prepared", counted)
    batcher = Batcher(clf, window_s=0.001, max_batch=4).start()
    try:
        with pytest.raises(ClientGone):
            batcher.predict(signals, ticket=ticket)
        assert sizes == [4]  # the other two turns were never run
        with pytest.raises(ValueError, match="signals"):  # one request's bad input fails that request alone
            batcher.predict([np.zeros((100, 7), np.float32)], ticket=Ticket(60))
    finally:
        batcher.close()
