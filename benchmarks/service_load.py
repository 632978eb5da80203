"""Load test of the HTTP service on loopback: throughput and latency under concurrent uploads.

The server is `ecgrhythm.service.server.serve` in a child process on 127.0.0.1 (a free
port), started and stopped by this script, unless `--url` names a server that is
already running on a loopback address. `--concurrency` client threads upload one
record (`POST /v1/classify`, the `.hea` header with its signal file, or one file
with `--fs`) until `--requests` requests have been answered or `--max-seconds`
have passed, after `--warmup` untimed requests that compile the model's shapes.

Each client is one keep-alive connection of the standard library's `http.client` sending a multipart body built
once (:class:`Client`), so that the load generator, on the server's machine, takes little of its CPU. A client
told busy (503) waits 0.1 s and sends again; the share of such answers is reported, and a thread polls `/health`
every 0.1 s throughout, reporting its latency. `--server-src DIR` runs the server from another source tree (e.g.
`git archive` of an earlier commit), to compare in one run.

Prints one JSON line: throughput, latency percentiles (p50/p95/p99), the share answered 503, `/health`
latency, errors, the CPU time per request of the clients and of the server (the one this script started, or
`--server-pid`; Linux) and the machine; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/service_load.py --model models/cinc2017 --requests 200 --concurrency 8
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from _common import REPO, emit, fail, machine

# The server admits as many requests at once as the clients send (its --max-concurrent), so none is refused with 503.
SERVER_CODE = (
    "import sys; from ecgrhythm.service.server import serve; "
    "serve('127.0.0.1', int(sys.argv[1]), sys.argv[2] or None, sys.argv[3], max_concurrent=int(sys.argv[4]), "
    "**({'backend': sys.argv[5]} if sys.argv[5] else {}))"
)


def upload_files(record: Path) -> list[tuple[str, bytes]]:
    """The files to upload for `record`: a header with the `.mat`/`.dat` beside it, or the one file."""
    if record.suffix.lower() != ".hea":
        return [(record.name, record.read_bytes())]
    paths = [record, *(record.with_suffix(s) for s in (".mat", ".dat") if record.with_suffix(s).is_file())]
    return [(p.name, p.read_bytes()) for p in paths]


def multipart_body(files: list[tuple[str, bytes]], data: dict) -> tuple[bytes, str]:
    """The `multipart/form-data` body of the form (`files` repeated, then the fields of `data`) and its content type."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + content
        + b"\r\n"
        for name, content in files
    ]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode() for key, value in data.items()]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Client:
    """One keep-alive HTTP/1.1 connection to the server (reopened after an error or a `Connection: close`).

    The standard library's `http.client` with a body built once: the load generator runs on the server's machine,
    so it should take as little of its CPU as it can (httpx took about 8 ms a request there, this under 1 ms).
    """

    def __init__(self, url: str, headers: dict, timeout: float):
        parts = urlsplit(url)
        self.headers = headers
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
        """The response's status code (its body read and dropped); raises `OSError` or `http.client.HTTPException`."""
        try:
            self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()  # the next request opens a new connection
            raise

    def close(self) -> None:
        self.conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, token: str, log_path: Path, timeout: float, max_concurrent: int, src: str | None = None, backend: str | None = None):
    """Start `serve` in a child process (from the source tree `src` if given); returns `(process, base_url)` once `/health` answers."""
    port = free_port()
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE, str(port), model, token, str(max_concurrent), backend or ""],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        client = Client(url, {}, timeout=2)
        try:
            if client.request("GET", "/health") == 200:
                return proc, url
        except (OSError, http.client.HTTPException):
            pass
        finally:
            client.close()
        time.sleep(0.25)
    stop_server(proc)
    tail = log_path.read_text(errors="replace")[-2000:]
    fail(f"the server did not start within {timeout:g} s; its log ends:\n{tail}")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds (user and system) used so far by this process (`pid` None) or by the process `pid` (Linux's `/proc` only)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_loopback(url: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        fail(f"--url {url}: only servers on a loopback address (127.0.0.0/8, ::1, localhost) may be load-tested")
    if urlsplit(url).scheme != "http":
        fail(f"--url {url}: only http:// servers may be load-tested")
    return url.rstrip("/")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100) of sorted values."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def run_load(url: str, body: bytes, headers: dict, n_requests: int, concurrency: int, max_seconds: float, timeout: float, server_pid=None) -> dict:
    """Send `n_requests` uploads of `body` (with `headers`) from `concurrency` threads; returns the timings and the CPU used."""
    lock = threading.Lock()
    issued = busy = 0
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.monotonic() + max_seconds
    finished = threading.Event()
    health_ms: list[float] = []
    auth = {k: v for k, v in headers.items() if k == "Authorization"}

    def poll_health():
        client = Client(url, auth, timeout)
        while not finished.wait(0.1):
            start = time.perf_counter()
            with contextlib.suppress(OSError, http.client.HTTPException):
                client.request("GET", "/health")
            health_ms.append(1000 * (time.perf_counter() - start))
        client.close()

    def send():
        nonlocal issued, busy
        client = Client(url, headers, timeout)
        while True:
            with lock:
                if issued >= n_requests or time.monotonic() > stop_at:
                    client.close()
                    return
                issued += 1
            start = time.perf_counter()
            try:
                status = client.request("POST", "/v1/classify", body)
                outcome = "ok" if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
            elapsed = time.perf_counter() - start
            with lock:
                if outcome == "HTTP 503":
                    busy += 1
                elif outcome == "ok":
                    latencies.append(elapsed)
                else:
                    errors[outcome] = errors.get(outcome, 0) + 1
            if outcome == "HTTP 503":
                time.sleep(0.1)  # told busy: back off, then send again

    threads = [threading.Thread(target=send, daemon=True) for _ in range(concurrency)]
    poller = threading.Thread(target=poll_health, daemon=True)
    cpu = cpu_seconds(None), cpu_seconds(server_pid) if server_pid else None
    started = time.perf_counter()
    poller.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    finished.set()
    poller.join()
    client_cpu = cpu_seconds(None) - cpu[0]
    server_cpu = cpu_seconds(server_pid) - cpu[1] if cpu[1] is not None else None
    ms = sorted(1000 * x for x in latencies)
    health = sorted(health_ms)
    answered = len(latencies) + busy + sum(errors.values())
    return {
        "requests_sent": issued,
        "ok": len(latencies),
        "busy_503": busy,
        "busy_share": round(busy / issued, 4) if issued else None,
        "errors": errors,
        "health_ms": {"p50": round(percentile(health, 50), 2), "p99": round(percentile(health, 99), 2), "max": round(health[-1], 2)}
        if health
        else None,
        "stopped_by_time_limit": issued < n_requests,
        "wall_s": round(wall, 3),
        "throughput_rps": round(len(latencies) / wall, 3) if wall > 0 else None,
        "latency_ms": {
            "p50": round(percentile(ms, 50), 2),
            "p95": round(percentile(ms, 95), 2),
            "p99": round(percentile(ms, 99), 2),
            "mean": round(statistics.fmean(ms), 2),
            "min": round(ms[0], 2),
            "max": round(ms[-1], 2),
        }
        if ms
        else None,
        "cpu_ms_per_request": {
            "client": round(1000 * client_cpu / answered, 2) if answered else None,
            "server": round(1000 * server_cpu / answered, 2) if answered and server_cpu is not None else None,
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Prints one JSON line of results.")
    parser.add_argument("--model", help="model folder for the server this script starts (default: the shipped model)")
    parser.add_argument("--url", help="base URL of a running server on a loopback address instead of starting one")
    parser.add_argument("--server-pid", type=int, help="process id of the --url server, to report its CPU time per request (Linux)")
    parser.add_argument("--token", default="", help="bearer token (for --url servers that need one)")
    parser.add_argument(
        "--record",
        help="record to upload: a .hea header (sent with its signal files) or one .mat/.csv/.npy file (default: A00001 of the shared CinC 2017 data)",
    )
    parser.add_argument("--fs", type=float, help="sampling rate (Hz) sent with a record without a header")
    parser.add_argument("--requests", type=int, default=100, help="timed requests in all (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads sending at once (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests first, to compile the model (default %(default)s)")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop sending after this many seconds (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds a request may take (default %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=300, help="seconds to wait for the server to start (default %(default)s)")
    parser.add_argument("--backend", help="the server's --backend (auto, onnx, keras; default: the server's own default)")
    parser.add_argument("--server-src", help="run the server from this source tree (a `src` folder) instead of the installed package")
    parser.add_argument("--output", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 256 or args.warmup < 0 or args.max_seconds <= 0:
        fail("--requests must be 1..100000, --concurrency 1..256, --warmup >= 0 and --max-seconds > 0")

    from ecgrhythm.config import default_data_dir

    if args.record:
        record = Path(args.record)
    else:
        root = default_data_dir()
        if root is None:
            fail("no --record given and no shared data folder found (set ECGRHYTHM_DATA)")
        record = root / "cinc2017" / "A00001.hea"
    if not record.is_file():
        fail(f"--record {record}: file not found")
    if record.suffix.lower() != ".hea" and args.fs is None:
        fail(f"--record {record}: a file without a header needs --fs")
    files = upload_files(record)
    data = {"fs": str(args.fs)} if args.fs else {}
    body, content_type = multipart_body(files, data)
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {args.token}"} if args.token else {})}

    proc = None
    with tempfile.TemporaryDirectory(prefix="ecgrhythm-load-") as tmp:
        try:
            if args.url:
                url = check_loopback(args.url)
            else:
                proc, url = start_server(
                    args.model or "", args.token, Path(tmp) / "server.log", args.start_timeout, args.concurrency, args.server_src, args.backend
                )
            warm = run_load(url, body, headers, args.warmup, 1, args.max_seconds, args.timeout) if args.warmup else None
            if warm and warm["errors"]:
                fail(f"the warm-up requests failed: {warm['errors']}")
            server_pid = proc.pid if proc is not None else args.server_pid
            timed = run_load(url, body, headers, args.requests, args.concurrency, args.max_seconds, args.timeout, server_pid)
        finally:
            if proc is not None:
                stop_server(proc)

    result = {
        "benchmark": "service_load",
        "server": args.url or "child process on 127.0.0.1 (ecgrhythm.service.server.serve)",
        "server_src": args.server_src,
        "backend": args.backend,
        "model": str(Path(args.model).resolve()) if args.model else "default",
        "record": record.stem,
        "upload_bytes": sum(len(content) for _, content in files),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "warmup_requests": args.warmup,
        **timed,
        "machine": machine(),
    }
    emit(result, args.output)
    return 0 if not timed["errors"] else 1  # busy answers (503) are reported, not errors


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
