"""Classifying record files on a Ray cluster with Ray Data (the optional `ecgrhythm[ray]` extra).

The record paths become a Ray dataset; a pool of actors, each of which loads
the model once, classifies batches of paths with the local engine
(:func:`ecgrhythm.inference.streaming.classify_files`: the same reading, preprocessing,
bucketing and failure reasons, and the same answer for a record longer than the networks' training length, from
its AF episodes: :mod:`ecgrhythm.episodes.answers`), and the results come back in input order. A
bad record is a failure row of its batch, never a stop. The record files and
the model must be reachable at the same paths on every node (a shared or
network file system; the shipped model is inside the package). An actor loads
the model as its `load` says; a model folder carrying its ONNX graph runs on
onnxruntime there too (no Keras, no JAX in the actors), one thread per actor
(Ray sets `OMP_NUM_THREADS` to an actor's one CPU, which
:func:`ecgrhythm.inference.onnx_backend.intra_op_threads` follows).

Without an address Ray starts a small cluster inside this process (no
dashboard, a small object store: only paths and probabilities travel through
it); with one (`ray start --head` prints it) the job joins that cluster.

Example:
>>> loader = functools.partial(RhythmClassifier.load, "models/cinc2017")        # doctest: +SKIP
>>> for prediction, failures in iter_classify_ray(loader, paths, workers=2):    # doctest: +SKIP
...     print(prediction.names, failures)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings

import numpy as np

from ecgrhythm.inference.classifier import Prediction
from ecgrhythm.inference.streaming import classify_files
from ecgrhythm.utils.validation import check_positive_int

__all__ = ["iter_classify_ray", "ray_cluster", "require_ray", "BATCH_RECORDS"]

logger = logging.getLogger(__name__)

BATCH_RECORDS = 256  # paths per actor call: enough to fill the network's batches, small enough to spread a job over the workers
OBJECT_STORE_BYTES = 256 * 1024**2  # of a cluster started here: only paths and probabilities pass through it


def require_ray():
    """The `ray` module.

    Raises:
        ImportError: Ray is not installed (the message says how to install it).
    """
    try:
        import ray
    except ImportError:
        raise ImportError("the Ray engine needs the optional ray extra: pip install 'ecgrhythm[ray]'") from None
    return ray


@contextlib.contextmanager
def ray_cluster(address: str | None = None, workers: int | None = None):
    """Connect to the cluster at `address`, or start one in this process for the block (and stop it after).

    A Ray already initialised in this process (by the caller) is used as it is and left running.

    Args:
        address: `HOST:PORT` of a running cluster (`ray start --head`), `"auto"`, or `None` for a local one.
        workers: CPUs of a local cluster (default: this machine's).

    Yields:
        The number of CPUs of the cluster.

    Raises:
        ConnectionError: no cluster answers at `address`, or it refuses this client's token.
    """
    ray = require_ray()
    started = not ray.is_initialized()
    with warnings.catch_warnings():  # Ray forks and at once execs its processes, which is safe with JAX's threads
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        if started and address:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            except ConnectionError as exc:
                raise ConnectionError(
                    f"{exc}: check that the cluster runs there ('ray status' on the head); if it uses token "
                    "authentication, set RAY_AUTH_MODE=token and give its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
                ) from None
        elif started:
            ray.init(
                num_cpus=workers or os.cpu_count() or 1,
                object_store_memory=OBJECT_STORE_BYTES,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
    try:
        yield int(ray.cluster_resources().get("CPU", 1))
    finally:
        if started:
            ray.shutdown()


class _Worker:
    """A Ray actor: loads the classifier once, then classifies batches of paths with the local engine."""

    def __init__(self, load, fs, lead, long_records=None):
        self.classifier = load()
        self.fs, self.lead = fs, lead
        self.long_records = None if long_records is None else long_records(self.classifier)

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        prediction, failures = classify_files(self.classifier, paths, fs=self.fs, lead=self.lead, long_records=self.long_records)
        n_classes = len(self.classifier.classes_)
        burdens = [np.nan if v is None else v for v in prediction.af_burden]
        return {
            "record": np.array(prediction.names + [""] * len(failures), dtype=object),
            "label": np.array(list(prediction.labels) + [""] * len(failures), dtype=object),
            "lead": np.array([v or "" for v in prediction.leads] + [""] * len(failures), dtype=object),
            "probabilities": np.concatenate([prediction.probabilities.reshape(-1, n_classes), np.full((len(failures), n_classes), np.nan)]),
            "af_burden": np.array(burdens + [np.nan] * len(failures), dtype=np.float64),
            "record_class": np.array([v or "" for v in prediction.record_class] + [""] * len(failures), dtype=object),
            "failed_path": np.array([""] * len(prediction.names) + [p for p, _ in failures], dtype=object),
            "reason": np.array([""] * len(prediction.names) + [r for _, r in failures], dtype=object),
        }


def iter_classify_ray(
    load,
    paths,
    classes,
    *,
    fs: float | None = None,
    lead=None,
    workers: int | None = None,
    batch_records: int = BATCH_RECORDS,
    long_records=None,
):
    """Classify files with a pool of Ray actors, in input order, keeping going past bad files.

    Ray must be initialised (see :func:`ray_cluster`).

    Args:
        load: a picklable function without arguments that returns a loaded
            classifier (it runs once in each actor), e.g.
            `functools.partial(RhythmClassifier.load, model_dir)`.
        paths: record files, reachable at these paths from every node.
        classes: the model's class names (the columns of the probabilities).
        fs: sampling rate (Hz) of files without a header.
        lead: the lead a single-lead model takes from multi-lead records (name or index; default lead I, else the first, unless it is unusable and another is clean).
        workers: actors in the pool (default: the cluster's CPUs).
        batch_records: paths per actor call, at most (a small job is spread evenly over the workers).
        long_records: a picklable function of a loaded classifier giving the record-level rule that
            :func:`~ecgrhythm.inference.streaming.classify_files` takes (the class
            :class:`~ecgrhythm.episodes.answers.LongRecordAnswer` itself), made once in each actor, so a record longer
            than the networks' training length is answered from its AF episodes as the local engine does; `None`:
            every label is the networks'.

    Yields:
        `(prediction, failures)` per batch, in input order: a
        :class:`~ecgrhythm.inference.classifier.Prediction` of the batch's usable records
        (probabilities `(n, n_classes)`) and `(path, reason)` for the others,
        as :func:`ecgrhythm.inference.streaming.iter_classify_files` gives them.

    Raises:
        ValueError: `workers` or `batch_records` is not a positive integer.
    """
    ray = require_ray()
    check_positive_int("workers", workers, optional=True)
    check_positive_int("batch_records", batch_records, optional=True)
    paths = [str(p) for p in paths]
    if not paths:
        return
    workers = workers or int(ray.cluster_resources().get("CPU", 1))
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order, as the local engine writes them
    context.enable_progress_bars = False
    batch_records = min(batch_records, math.ceil(len(paths) / workers))
    dataset = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=math.ceil(len(paths) / batch_records)).map_batches(
        _Worker,
        fn_constructor_kwargs={"load": load, "fs": fs, "lead": lead, "long_records": long_records},
        batch_size=batch_records,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    classes = list(classes)
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        ok = batch["failed_path"] == ""
        probs = np.asarray(batch["probabilities"], dtype=np.float64)[ok].reshape(-1, len(classes))
        leads = [str(v) or None for v in batch["lead"][ok]]
        burdens = [None if np.isnan(v) else float(v) for v in np.asarray(batch["af_burden"], dtype=np.float64)[ok]]
        kinds = [str(v) or None for v in batch["record_class"][ok]]
        prediction = Prediction([str(n) for n in batch["record"][ok]], [str(v) for v in batch["label"][ok]], probs, classes, leads, burdens, kinds)
        yield prediction, [(str(p), str(r)) for p, r in zip(batch["failed_path"][~ok], batch["reason"][~ok])]
