"""`ecgrhythm serve`: the web service and its page."""

from __future__ import annotations

import ecgrhythm.cli.common as common


def add_parser(sub):
    from ecgrhythm.service.guard import Limits

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
        "--max-concurrent",
        type=int,
        default=Limits.max_concurrent,
        metavar="N",
        help="requests classified at once; more get 503 (default %(default)s)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=Limits.header_timeout_s,
        metavar="S",
        help="seconds for a request's head to arrive (default %(default)s)",
    )
    p.add_argument(
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
    from ecgrhythm.service.app import serve

    common.enable_compilation_cache()
    serve(
        args.host,
        args.port,
        args.model,
        args.token,
        allowed_hosts=args.allowed_hosts,
        max_upload_bytes=round(args.max_upload_mb * 2**20),
        max_concurrent=args.max_concurrent,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        keep_alive_s=args.keep_alive,
    )
    return 0
