"""`ecgrhythm serve`: the web service and its page."""

from __future__ import annotations

import ecgrhythm.cli.common as common


def add_parser(sub):
    from ecgrhythm.service.limits import Limits

    p = sub.add_parser(
        "serve",
        help="run the web service and its page",
        description="Run the web service: a page at / to upload a record and see its class probabilities, rhythm timeline "
        "and AF episodes; a JSON API for the same (POST /v1/classify, and the page's examples), described on its OpenAPI "
        "page at /docs. The model loads once, at startup. Give a --token (or $ECGRHYTHM_TOKEN) before listening beyond this machine.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: the shipped models/cinc2017)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes serving the port: each loads the model and has its own limits below (N times as many requests at "
        "once in all) and cores/N onnxruntime threads; more than one uses the cores that Python's lock keeps one process from "
        "using (2 on 2 cores: 36 instead of 26 requests/s in docs/results) (default %(default)s)",
    )
    common.add_backend_argument(p)
    p.add_argument("--token", help="bearer token the API requires (default: $ECGRHYTHM_TOKEN; prefer the variable, since arguments show in ps)")
    p.add_argument(
        "--allowed-hosts",
        metavar="NAMES",
        type=lambda t: [h.strip() for h in t.split(",") if h.strip()],
        help="comma-separated names the Host header may give, '*' for any (default: the names of the --host address)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=_megabytes,
        default=Limits.max_upload_bytes / 2**20,
        metavar="MB",
        help="largest upload in MiB; raise it for long records (default %(default)g)",
    )
    p.add_argument(
        "--max-record-mb",
        type=_megabytes,
        default=Limits.max_record_bytes / 2**20,
        metavar="MB",
        help="most MiB an upload's record may decode to, its samples as float32 (a compressed upload expands); larger gets 422 (default %(default)g)",
    )
    _add_limits(p)


def _add_limits(p):
    """The options of the service's limits (:class:`~ecgrhythm.service.limits.Limits`), in a group of their own."""
    from ecgrhythm.service.limits import Limits

    limits = p.add_argument_group(
        "limits",
        "An upload is received in a pool of its own (--max-bodies at once), outside the classification slots, so a slow "
        "sender never holds one; once its body is complete it waits for one of --max-concurrent slots (at most --max-queue "
        "waiting) and is answered within --deadline seconds. The network calls of the requests at work are batched together. "
        "Refusals are JSON with the reason: 503 with Retry-After when busy, 408 for a slow body, 413 for an upload or a "
        "record too large, 504 for work stopped at its deadline.",
    )
    limits.add_argument(
        "--max-bodies", type=int, default=Limits.max_bodies, metavar="N", help="uploads received at once; more get 503 (default %(default)s)"
    )
    limits.add_argument(
        "--min-body-rate",
        type=int,
        default=Limits.min_body_rate,
        metavar="BYTES",
        help="bytes a second an upload must average after --body-grace; slower gets 408 (default %(default)s)",
    )
    limits.add_argument(
        "--body-grace", type=float, default=Limits.body_grace_s, metavar="S", help="seconds before --min-body-rate applies (default %(default)s)"
    )
    limits.add_argument(
        "--max-concurrent",
        type=int,
        default=Limits.max_concurrent,
        metavar="N",
        help="requests classified at once, their network calls batched together (default %(default)s)",
    )
    limits.add_argument(
        "--max-queue", type=int, default=Limits.max_queue, metavar="N", help="requests waiting for a slot; more get 503 (default %(default)s)"
    )
    limits.add_argument(
        "--deadline",
        type=float,
        default=Limits.deadline_s,
        metavar="S",
        help="seconds from a complete upload to its answer: 503 if still waiting, 504 if still at work; a record estimated "
        "to take longer gets 413 at once (default %(default)s)",
    )
    limits.add_argument(
        "--seconds-per-sample",
        type=float,
        default=Limits.seconds_per_sample,
        metavar="S",
        help="the cost estimate: seconds per sample at the model's rate per network, a sixteenth of it per sample at the record's own rate (default %(default)g, measured on 2 cores)",
    )
    limits.add_argument(
        "--batch-window",
        type=float,
        default=Limits.batch_window_s,
        metavar="S",
        help="seconds the network thread waits to gather concurrent requests' calls (default %(default)s)",
    )
    limits.add_argument("--max-batch", type=int, default=Limits.max_batch, metavar="N", help="most signals in one network call (default %(default)s)")
    p.add_argument(
        "--header-timeout",
        type=float,
        default=Limits.header_timeout_s,
        metavar="S",
        help="seconds for a request's head to arrive (default %(default)s)",
    )
    limits.add_argument(
        "--body-timeout", type=float, default=Limits.body_timeout_s, metavar="S", help="seconds for a request's body to arrive (default %(default)s)"
    )
    p.add_argument(
        "--keep-alive", type=float, default=Limits.keep_alive_s, metavar="S", help="seconds an idle connection stays open (default %(default)s)"
    )


def _megabytes(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value * 2**20 >= 1):
        raise argparse.ArgumentTypeError(f"expected a positive number of MiB, got {text!r}")
    return value


def run(args):
    from ecgrhythm.service.server import serve

    if common.runs_on_keras(args.model, args.backend):
        common.enable_compilation_cache()
    serve(
        args.host,
        args.port,
        args.model,
        args.token,
        backend=args.backend,
        allowed_hosts=args.allowed_hosts,
        workers=args.workers,
        max_upload_bytes=round(args.max_upload_mb * 2**20),
        max_record_bytes=round(args.max_record_mb * 2**20),
        max_bodies=args.max_bodies,
        min_body_rate=args.min_body_rate,
        body_grace_s=args.body_grace,
        max_concurrent=args.max_concurrent,
        max_queue=args.max_queue,
        deadline_s=args.deadline,
        seconds_per_sample=args.seconds_per_sample,
        batch_window_s=args.batch_window,
        max_batch=args.max_batch,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        keep_alive_s=args.keep_alive,
    )
    return 0
