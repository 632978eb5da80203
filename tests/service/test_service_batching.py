"""The batcher: concurrent requests' signals share network calls, and each request gets its own rows back."""

from __future__ import annotations

import contextlib
import threading
import time

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
def onnx_clf(onnx_file):
    """The same model on onnxruntime, which runs concurrent calls (several runners); Keras' predict_on_batch does not."""
    return RhythmClassifier.load(onnx_file)


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


def test_two_runners_run_turns_at_once_and_each_request_gets_its_rows_in_order(onnx_clf, prepared, monkeypatch):
    signals = [s for record in prepared for s in record]  # 12 signals: three turns of 4
    original, running, most = onnx_clf.predict_prepared, [0], [0]
    lock = threading.Lock()

    def slow_first_turn(batch, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            if batch[0] is signals[0]:
                threading.Event().wait(0.5)  # the first turn ends after the second: its rows come back last
            return original(batch, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(onnx_clf, "predict_prepared", slow_first_turn)
    batcher = Batcher(onnx_clf, window_s=0.001, max_batch=4, runners=2).start()
    try:
        rows = batcher.predict(signals, calibrated=False, ticket=Ticket(60))
    finally:
        batcher.close()
    assert batcher.calls == 3 and most[0] == 2
    np.testing.assert_allclose(rows, original(signals, calibrated=False), rtol=0, atol=1e-6)


def test_a_runner_does_not_wait_for_a_request_another_runner_is_serving(onnx_clf, prepared, monkeypatch):
    original, release = onnx_clf.predict_prepared, threading.Event()
    first = prepared[0][0]

    def held(batch, **kwargs):
        if any(s is first for s in batch):
            release.wait(60)  # the first request's call runs until the second request has its rows
        return original(batch, **kwargs)

    monkeypatch.setattr(onnx_clf, "predict_prepared", held)
    batcher = Batcher(onnx_clf, window_s=30, max_batch=64, runners=2).start()
    try:
        with batcher.member():
            one = threading.Thread(target=batcher.predict, args=(prepared[0],), kwargs={"ticket": Ticket(120)})
            one.start()
            while batcher.calls == 0 and not batcher._in_flight:
                threading.Event().wait(0.01)
            with batcher.member():  # both requests at work; the first is being served
                start = time.monotonic()
                rows = batcher.predict(prepared[1], ticket=Ticket(120))
                waited = time.monotonic() - start
            release.set()
            one.join(60)
    finally:
        release.set()
        batcher.close()
    assert waited < 15  # not the 30 s window: the other request at work cannot send a call while it is served
    np.testing.assert_allclose(rows, original(prepared[1]), rtol=0, atol=1e-6)


def test_idle_runners_share_the_waiting_requests_and_a_request_alone_is_one_call(onnx_clf, prepared, monkeypatch):
    original, sizes = onnx_clf.predict_prepared, []

    def counted(batch, **kwargs):
        sizes.append(len(batch))
        return original(batch, **kwargs)

    monkeypatch.setattr(onnx_clf, "predict_prepared", counted)
    batcher = Batcher(onnx_clf, window_s=60, max_batch=64, runners=2).start()
    signals = prepared[0]
    try:
        alone = batcher.predict(signals, calibrated=False, ticket=Ticket(60))
        assert sizes == [len(signals)]  # not cut in two for the idle runner: the same call as with one runner
        sizes.clear()

        def request():  # a request at work, as the service counts one: the window ends once every member has sent its call
            with batcher.member():
                return batcher.predict(signals, calibrated=False, ticket=Ticket(60))

        results, errors = _in_threads([request] * 2)
    finally:
        batcher.close()
    assert errors == [] and sizes == [len(signals)] * 2  # one request each: the first runner took half the signals waiting
    expected = original(signals, calibrated=False)
    for rows in (alone, *results):
        np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-6)


def test_a_keras_model_runs_its_calls_one_at_a_time(clf):
    from ecgrhythm.service.classify import Service
    from ecgrhythm.service.limits import Limits

    service = Service(None, None, clf, Limits(network_runners=2))
    service.load()
    try:
        assert len(service.batcher._threads) == 1  # Keras' predict_on_batch is not thread-safe
    finally:
        service.close()
