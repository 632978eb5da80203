"""Running the service with uvicorn (`ecgrhythm serve`): in this process, or in N worker processes (`--workers N`).

:func:`serve` checks the limits and loads the model first, so that a bad folder or limit fails in one line before
any server starts. With several workers, uvicorn's own supervisor (:class:`uvicorn.supervisors.Multiprocess`) binds the socket once, starts N processes
(the `spawn` start method), answers their health checks, restarts a worker that dies and stops them all on SIGINT
or SIGTERM; the kernel hands each new connection to one of them. Each worker loads the model itself, when it starts
(:meth:`WorkerConfig.load`, in the worker), and builds its own app (:func:`~ecgrhythm.service.app.create_app`), so
each has its own admission limits (`max_concurrent`, `max_queue`, `max_bodies`: N times as many in all), its own
batching threads and its own onnxruntime session.

A process's network calls run on its share of the cores, `cores // N` (at least 1; :func:`network_threads`): each
call on one onnxruntime thread, in as many batching threads at once (`Limits.network_runners`) as the share has
cores. onnxruntime runs concurrent calls of one session in the calling threads, so the cores share the work without
the hand-offs between an operator's threads (on this 2-core machine one call on two threads took some 15 % more CPU
time than two calls on one thread each). `$OMP_NUM_THREADS`, when set, gives the threads per call instead, and the
runners follow (`cores // threads`). One process is held by Python's lock while it reads, preprocesses and answers,
so more workers can still help.
"""

from __future__ import annotations

import inspect
import logging
import os

import uvicorn
from uvicorn.supervisors import Multiprocess

from ecgrhythm.service.app import TOKEN_ENV, access_token, create_app
from ecgrhythm.service.classify import SERVICE_USE
from ecgrhythm.service.guard import default_allowed_hosts, uvicorn_config
from ecgrhythm.service.limits import Limits, limits_of
from ecgrhythm.utils.machine import cpu_count
from ecgrhythm.utils.validation import check_positive_int

logger = logging.getLogger(__name__)

__all__ = ["serve", "serve_workers", "WorkerConfig", "network_threads"]


def serve(
    host: str = "127.0.0.1", port: int = 8000, model_dir=None, token=None, *, backend: str = "auto", allowed_hosts=None, workers: int = 1, **limits
) -> None:
    """Run the service with uvicorn until interrupted.

    Args:
        host: address to listen on (`0.0.0.0` for every interface).
        port: TCP port.
        model_dir: model folder (default: the shipped model).
        token: bearer token (default `$ECGRHYTHM_TOKEN`; none if unset).
        backend: what runs the networks, `"auto"`, `"onnx"` or `"keras"` (see :class:`~ecgrhythm.inference.classifier.RhythmClassifier`).
        allowed_hosts: names the `Host` header may give (default: the listening
            address; for a loopback or wildcard address also the loopback names,
            and for a wildcard this machine's name and addresses).
        workers: processes serving the port, each with its own model, limits and batching
            (:func:`serve_workers`); 1: this process alone.
        **limits: the fields of :class:`~ecgrhythm.service.limits.Limits` but `allowed_hosts` (see :func:`~ecgrhythm.service.app.create_app`),
            each worker's own; `network_runners` defaults to :func:`network_threads`' count (sets `$OMP_NUM_THREADS` for
            the onnxruntime sessions; see the module docstring).

    Raises:
        ModelFolderError: the model folder is missing, incomplete or altered
            (loaded here, before the server starts, so the error is one line).
        ValueError: a limit, the token or `workers` is not usable, or the model has a fixed input length.
    """
    from ecgrhythm.inference.classifier import RhythmClassifier

    hosts = default_allowed_hosts(host) if allowed_hosts is None else allowed_hosts
    check_positive_int("workers", workers)
    threads, runners = network_threads(max(1, cpu_count() // workers))
    limits = limits_of(allowed_hosts=hosts, **{"network_runners": runners, **limits})  # refuse bad limits before the model loads
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by onnx_backend.intra_op_threads when the sessions are made (and by the workers)
    classifier = RhythmClassifier.load(model_dir, backend=backend)
    classifier.require_whole_records(SERVICE_USE)  # before the server starts, so the error is one line
    app = create_app(model_dir, token=token, classifier=classifier, limits=limits)
    if not access_token(token) and host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s without an access token: anyone who reaches the port can use it (pass --token or set %s)", host, TOKEN_ENV)
    if workers > 1:  # the model was loaded and the app built here once, so that their errors are one line before any worker starts
        del app, classifier
        serve_workers(host, port, workers, model_dir=model_dir, token=token, backend=backend, limits=limits)
        return
    uvicorn.Server(uvicorn_config(app, app.state.limits, host=host, port=port, log_level="info")).run()


def network_threads(cores: int) -> tuple[int, int]:
    """`(threads, runners)` for a process with `cores` cores: onnxruntime's threads per network call (1, or
    `$OMP_NUM_THREADS` when set) and the batching threads running calls at once, `cores // threads` (at least 1)."""
    from ecgrhythm.inference.onnx_backend import intra_op_threads

    threads = intra_op_threads() if "OMP_NUM_THREADS" in os.environ else 1
    return threads, max(1, cores // threads)


class WorkerConfig(uvicorn.Config):
    """uvicorn's configuration of the service's worker processes: the app is built in each worker when uvicorn loads it.

    It is pickled into every worker (so it holds only plain values: the model path, the token and the limits); its
    :meth:`load` loads the model and builds the app there.

    Args:
        model_dir: model folder or `.onnx` file (None: the shipped model).
        token: bearer token, or None (see :func:`~ecgrhythm.service.app.create_app`).
        backend: what runs the networks (see :func:`~ecgrhythm.inference.backend.load_backend`).
        limits: the service's limits, each worker's own.
        threads: onnxruntime's threads per network call in each worker (`$OMP_NUM_THREADS` when set wins; :func:`network_threads`).
        **kwargs: uvicorn's settings (`host`, `port`, `workers`, `log_level`).
    """

    def __init__(self, model_dir, token, backend: str, limits: Limits, threads: int, **kwargs):
        super().__init__("ecgrhythm.service.app:create_app", factory=True, timeout_keep_alive=limits.keep_alive_s, **kwargs)
        self.service = {"model_dir": None if model_dir is None else str(model_dir), "token": token, "backend": backend}
        self.limits, self.threads = limits, threads

    def load(self) -> None:
        """Load the model and build the app (in a worker), then let uvicorn load the rest."""
        if self.loaded:
            return
        os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))  # read by onnx_backend.intra_op_threads
        from ecgrhythm.inference.classifier import RhythmClassifier

        classifier = RhythmClassifier.load(self.service["model_dir"], backend=self.service["backend"])
        self.app = create_app(self.service["model_dir"], token=self.service["token"], classifier=classifier, limits=self.limits)
        self.factory = False
        self.http = uvicorn_config(self.app, self.limits).http  # the service's header timeout
        super().load()


def serve_workers(host: str, port: int, workers: int, *, model_dir, token, backend: str, limits: Limits) -> None:
    """Serve with `workers` processes (at least 2) until SIGINT or SIGTERM; see the module's docstring."""
    threads, _ = network_threads(max(1, cpu_count() // workers))
    config = WorkerConfig(model_dir, token, backend, limits, threads, host=host, port=port, workers=workers, log_level="info")
    older = "target" in inspect.signature(Multiprocess).parameters  # uvicorn before 0.30 takes what each worker runs
    Multiprocess(config, sockets=[config.bind_socket()], **({"target": uvicorn.Server(config).run} if older else {})).run()
