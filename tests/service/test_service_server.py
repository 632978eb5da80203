"""`ecgrhythm serve`: two worker processes on one port, each answering /health and a classification; the upload limit option."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_workers_start_answer_and_stop(cinc2017_dir, tmp_path):
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.inference.streaming import classify_files

    port, log = _free_port(), tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.path.abspath("src"), os.environ.get("PYTHONPATH")] if p)}
    command = [sys.executable, "-m", "ecgrhythm.cli", "serve", "--workers", "2", "--port", str(port), "--max-concurrent", "2"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        record = [cinc2017_dir / "A00004.hea", cinc2017_dir / "A00004.mat"]
        answer = httpx.post(f"{url}/v1/classify", files=[("files", (p.name, Path(p).read_bytes())) for p in record], timeout=60)
        assert answer.status_code == 200, answer.text
        expected, _ = classify_files(RhythmClassifier.load(), record[:1])
        assert answer.json()["label"] == expected.labels[0]
        assert max(abs(answer.json()["probabilities"][c] - p) for c, p in zip(expected.classes, expected.probabilities[0])) < 1e-6
        while log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)  # both workers up: each loaded the model itself
        workers = set(re.findall(r"Started server process \[(\d+)\]", log.read_text()))
        assert len(workers) == 2 and str(server.pid) not in workers
    finally:
        server.terminate()  # SIGTERM: the parent stops its workers, then itself
        assert server.wait(timeout=60) == 0, log.read_text()
    assert "Stopping parent process" in log.read_text()


def test_serve_takes_max_upload_mb(monkeypatch, capsys):
    import ecgrhythm.service.server as service
    from ecgrhythm.cli import main

    seen = {}
    monkeypatch.setattr(service, "serve", lambda *args, **kwargs: seen.update(kwargs))
    assert main(["serve", "--max-upload-mb", "200"]) == 0
    assert seen["max_upload_bytes"] == 200 * 2**20
    assert main(["serve"]) == 0 and seen["max_upload_bytes"] == 20 * 2**20
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--max-upload-mb", "0"])
    assert exit_info.value.code == 2 and "--max-upload-mb: expected a positive number of MiB, got '0'" in capsys.readouterr().err


def test_serve_runs_a_network_call_per_core_on_one_thread_each(monkeypatch):
    import ecgrhythm.service.server as server

    seen = []

    class Server:  # uvicorn's server, stopped before it listens
        def __init__(self, config):
            self.app = config.app

        def run(self):
            session = self.app.state.service.classifier.backend_.session
            seen.append((self.app.state.limits.network_runners, os.environ["OMP_NUM_THREADS"], session.get_session_options().intra_op_num_threads))

    monkeypatch.setattr(server.uvicorn, "Server", Server)
    monkeypatch.setattr(server, "cpu_count", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # restored after the test
    server.serve(port=0, backend="onnx")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # set by whoever starts the server: its threads per call, and the runners follow
    server.serve(port=0, backend="onnx", max_batch=32)
    server.serve(port=0, backend="onnx", network_runners=3)
    assert seen == [(2, "1", 1), (1, "2", 2), (3, "2", 2)]
