"""Admission to classification: the bounded queue, the deadline per request and the cost estimate, over real HTTP."""

from __future__ import annotations

import threading

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

from ecgrhythm.service.app import background_server, create_app  # noqa: E402

DEADLINE_S = 2.0


def _upload(cinc2017_dir, name="A00001"):
    return [("files", (f"{name}{s}", (cinc2017_dir / f"{name}{s}").read_bytes())) for s in (".hea", ".mat")]


def _wait_for(condition, tries=2000):
    for _ in range(tries):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("timed out")


def test_a_record_too_long_for_the_deadline_is_refused_at_once(tiny_model_dir, cinc2017_dir, monkeypatch):
    # A 30 s record at the tiny model's 100 Hz is 3000 samples, and 9000 at its own 300 Hz, each a sixteenth of one: at 1 ms a
    # sample it would take 3.6 s, over a 2 s deadline.
    app = create_app(tiny_model_dir, token="", examples_dir=None, deadline_s=DEADLINE_S, seconds_per_sample=1e-3)
    with background_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        calls = []
        monkeypatch.setattr(app.state.service.classifier, "predict_prepared", lambda *a, **k: calls.append(1))
        r = client.post("/v1/classify", files=_upload(cinc2017_dir))
    assert r.status_code == 413 and calls == []
    detail = r.json()["detail"]
    assert detail.startswith("A00001.hea: 0.5 minutes of signal would take about 4 s") and "2 s per request (--deadline)" in detail


def test_a_record_at_a_high_rate_counts_its_own_samples(tiny_model_dir, cinc2017_dir, monkeypatch, tmp_path):
    """A record's cost grows with its samples at its own rate (read and resampled there), not only at the model's: A00001
    at 30 kHz is 3000 samples at the tiny model's 100 Hz (0.3 s at 0.1 ms each) but 900,000 of its own (5.9 s in all)."""
    from ecgrhythm.records import read_record

    fast = tmp_path / "fast.npy"
    np.save(fast, np.repeat(read_record(cinc2017_dir / "A00001.hea").signal, 100, axis=0))
    app = create_app(tiny_model_dir, token="", examples_dir=None, deadline_s=DEADLINE_S, seconds_per_sample=1e-4)
    with background_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        calls = []
        monkeypatch.setattr(app.state.service.classifier, "predict_prepared", lambda *a, **k: calls.append(1))
        r = client.post("/v1/classify", files=[("files", ("fast.npy", fast.read_bytes()))], data={"fs": "30000"})
    assert r.status_code == 413 and calls == []
    assert r.json()["detail"].startswith("fast.npy: 0.5 minutes of signal would take about 6 s")


def test_a_full_queue_answers_503_and_work_stops_at_its_deadline(tiny_model_dir, cinc2017_dir, monkeypatch):
    app = create_app(tiny_model_dir, token="", examples_dir=cinc2017_dir, max_concurrent=1, max_queue=1, deadline_s=DEADLINE_S)
    with background_server(app) as url:
        service = app.state.service
        entered, release = threading.Event(), threading.Event()
        original_classify, original_predict = service.classify_path, service.classifier.predict_prepared

        def holding(path, fs, **kwargs):  # the first request holds the one slot, deaf to its deadline
            entered.set()
            release.wait(60)
            return original_classify(path, fs, **kwargs)

        monkeypatch.setattr(service, "classify_path", holding)
        answers = {}

        def send(key, call):
            with httpx.Client(base_url=url, timeout=60) as c:
                answers[key] = call(c)

        first = threading.Thread(target=send, args=("first", lambda c: c.post("/v1/classify", files=_upload(cinc2017_dir))))
        first.start()
        assert entered.wait(60)
        second = threading.Thread(target=send, args=("second", lambda c: c.get("/v1/examples/A00001")))
        second.start()
        with httpx.Client(base_url=url, timeout=60) as client:
            _wait_for(lambda: app.state.work.waiting == 1)
            third = client.post("/v1/classify", files=_upload(cinc2017_dir, "A00002"))
            health = client.get("/health")  # never queued
            second.join(60)
            release.set()
            first.join(60)
            monkeypatch.setattr(service, "classify_path", original_classify)

            def stuck(signals, **kwargs):  # now a network call hangs past the request's deadline
                release.wait(60)
                return original_predict(signals, **kwargs)

            release.clear()
            monkeypatch.setattr(service.classifier, "predict_prepared", stuck)
            late = client.post("/v1/classify", files=_upload(cinc2017_dir))
            release.set()
    assert health.status_code == 200
    assert third.status_code == 503 and third.headers["retry-after"] == "1" and "--max-queue" in third.json()["detail"]
    waited = answers["second"]
    assert waited.status_code == 503 and waited.headers["retry-after"] == "1" and "waited 2 s for its turn" in waited.json()["detail"]
    assert answers["first"].status_code == 503 and "deadline" in answers["first"].json()["detail"]  # too late to start its work
    assert late.status_code == 504 and "--deadline" in late.json()["detail"]


def test_a_compressed_upload_cannot_decode_past_the_record_limit(tiny_model_dir, cinc2017_dir, monkeypatch, tmp_path):
    """A small compressed .mat expands to its samples: past `max_record_bytes` it is refused before they are decoded,
    with the option that raises the limit; the same record under the limit is classified."""
    from scipy.io import savemat

    from ecgrhythm.records import read_record

    val = np.tile(np.round(read_record(cinc2017_dir / "A00001.hea").signal[:, 0] * 1000).astype(np.int16), 40)[None]
    path = tmp_path / "long.mat"
    savemat(path, {"val": val}, do_compression=True)  # 1,440,000 bytes as float32 from about 30 kB
    assert path.stat().st_size < 100_000
    for limit, expected in ((2**21, 200), (2**20, 422)):
        app = create_app(tiny_model_dir, token="", examples_dir=None, max_record_bytes=limit)
        with background_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            r = client.post("/v1/classify", files=[("files", ("long.mat", path.read_bytes()))], data={"fs": "300"})
        assert r.status_code == expected, r.text
    assert "more than the limit of 1048576 bytes (raise the server's --max-record-mb" in r.json()["detail"]
