"""Load test of the HTTP service on loopback: throughput and latency under concurrent uploads.

The server is `ecgrhythm.service.server.serve` in a child process on 127.0.0.1 (a free
port), started and stopped by this script, unless `--url` names a server that is
already running on a loopback address. `--concurrency` client threads upload one
record (`POST /v1/classify`, the `.hea` header with its signal file, or one file
with `--fs`) until `--requests` requests have been answered or `--max-seconds`
have passed, after `--warmup` untimed requests that compile the model's shapes.

A client told busy (503) waits 0.1 s and sends again; the share of such answers is reported, and a
thread polls `/health` every 0.1 s throughout, reporting its latency. `--server-src DIR` runs the
server from another source tree (e.g. `git archive` of an earlier commit), to compare in one run.

Prints one JSON line: throughput, latency percentiles (p50/p95/p99), the share answered 503, `/health`
latency, errors and the machine; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/service_load.py --model models/cinc2017 --requests 200 --concurrency 8
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, token: str, log_path: Path, timeout: float, max_concurrent: int, src: str | None = None, backend: str | None = None):
    """Start `serve` in a child process (from the source tree `src` if given); returns `(process, base_url)` once `/health` answers."""
    import httpx

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
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
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


def check_loopback(url: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        fail(f"--url {url}: only servers on a loopback address (127.0.0.0/8, ::1, localhost) may be load-tested")
    return url.rstrip("/")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100) of sorted values."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def run_load(url: str, files, data: dict, headers: dict, n_requests: int, concurrency: int, max_seconds: float, timeout: float) -> dict:
    """Send `n_requests` uploads from `concurrency` threads; returns the timings."""
    import httpx

    lock = threading.Lock()
    issued = busy = 0
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.monotonic() + max_seconds
    finished = threading.Event()
    health_ms: list[float] = []

    def poll_health():
        with httpx.Client(base_url=url, timeout=timeout, headers=headers) as c:
            while not finished.wait(0.1):
                start = time.perf_counter()
                c.get("/health")
                health_ms.append(1000 * (time.perf_counter() - start))

    def client():
        nonlocal issued, busy
        with httpx.Client(base_url=url, timeout=timeout, headers=headers) as c:
            while True:
                with lock:
                    if issued >= n_requests or time.monotonic() > stop_at:
                        return
                    issued += 1
                start = time.perf_counter()
                try:
                    r = c.post("/v1/classify", files=[("files", f) for f in files], data=data)
                    outcome = "ok" if r.status_code == 200 else f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
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

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    poller = threading.Thread(target=poll_health, daemon=True)
    started = time.perf_counter()
    poller.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    finished.set()
    poller.join()
    ms = sorted(1000 * x for x in latencies)
    health = sorted(health_ms)
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
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Prints one JSON line of results.")
    parser.add_argument("--model", help="model folder for the server this script starts (default: the shipped model)")
    parser.add_argument("--url", help="base URL of a running server on a loopback address instead of starting one")
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
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}

    proc = None
    with tempfile.TemporaryDirectory(prefix="ecgrhythm-load-") as tmp:
        try:
            if args.url:
                url = check_loopback(args.url)
            else:
                proc, url = start_server(
                    args.model or "", args.token, Path(tmp) / "server.log", args.start_timeout, args.concurrency, args.server_src, args.backend
                )
            warm = run_load(url, files, data, headers, args.warmup, 1, args.max_seconds, args.timeout) if args.warmup else None
            if warm and warm["errors"]:
                fail(f"the warm-up requests failed: {warm['errors']}")
            timed = run_load(url, files, data, headers, args.requests, args.concurrency, args.max_seconds, args.timeout)
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
