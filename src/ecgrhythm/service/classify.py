"""What the service does with a record: read it, refuse what cannot finish in time, classify it through the batcher.

:class:`Service` holds the loaded model of one app (:func:`ecgrhythm.service.app.create_app`) and its
:class:`~ecgrhythm.service.batching.Batcher`; its methods run in a worker thread, each with the request's
:class:`~ecgrhythm.service.work.Ticket`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import HTTPException

from ecgrhythm.records import EcgRecord, RecordError, read_record
from ecgrhythm.records.limits import decoded_limit
from ecgrhythm.service.batching import Batcher
from ecgrhythm.service.examples import find_examples
from ecgrhythm.service.limits import Limits
from ecgrhythm.service.payload import display_signal, episodes_payload, picture_payload
from ecgrhythm.service.uploads import hide_folders
from ecgrhythm.service.work import Ticket, busy

__all__ = ["Service", "SERVICE_USE", "WINDOW_S", "NATIVE_SAMPLE_SHARE"]

logger = logging.getLogger(__name__)

WINDOW_S = 10.0
SERVICE_USE = "the service (its rhythm timeline and episodes)"  # what needs whole records (RhythmClassifier.require_whole_records)
# A sample at the record's own rate (read, resampled to the model's rate, drawn, its episodes' windows resampled) costs
# this share of a sample at the model's rate through one network: the service answered 21 minutes at 100 kHz (125 million
# samples, 190,000 at the model's rate) in 32 s on 2 shared cores, about 2 s of it the networks': 2.4e-7 s a sample,
# 1/16 of the 3.9e-6 s of which `seconds_per_sample` is 2.5 times.
NATIVE_SAMPLE_SHARE = 1 / 16


class Service:
    """The loaded model and what the endpoints do with it (one per app); its network calls go through :attr:`batcher`."""

    def __init__(self, model_dir, examples_dir, classifier=None, limits: Limits | None = None):
        self.model_dir = model_dir
        self.examples_dir = Path(examples_dir) if examples_dir is not None else None
        self.classifier = classifier
        self.limits = limits or Limits()
        self.batcher = None

    def load(self) -> None:
        from ecgrhythm.inference.classifier import RhythmClassifier

        if self.classifier is None:
            self.classifier = RhythmClassifier.load(self.model_dir)
        self.classifier.require_whole_records(SERVICE_USE)
        self.model_name = self.classifier.model_dir_.resolve().name
        self.examples = find_examples(self.examples_dir)
        from ecgrhythm.inference.onnx_backend import OnnxBackend

        limits = self.limits
        # onnxruntime runs concurrent calls of one session; Keras' predict_on_batch does not: its calls run one at a time
        runners = limits.network_runners if isinstance(self.classifier.backend_, OnnxBackend) else 1
        self.batcher = Batcher(self.classifier, window_s=limits.batch_window_s, max_batch=limits.max_batch, runners=runners).start()

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()

    def classify_path(self, path: Path, fs: float | None, *, ticket: Ticket, lead=None, hide: str | None = None) -> dict:
        """Read and classify one record file (blocking: call it in a worker thread).

        Args:
            path: the `.hea` header, or the one signal file.
            fs: sampling rate of files without a header.
            ticket: the request's deadline and whether its client has gone (the work stops at the next step).
            lead: lead name or index a single-lead model takes (default: lead I, else the first, unless it is unusable and another is clean).
            hide: a folder whose path is removed from error messages.

        Raises:
            fastapi.HTTPException: 422 naming the file when it cannot be read or used,
                or the model gives no finite probabilities for it; 413 or 503 when it could not be
                classified within the deadline (:meth:`check_cost`).
            ClientGone, DeadlineExceeded: from `ticket`.
        """
        from ecgrhythm.inference.classifier import NonFiniteOutputError

        try:
            with decoded_limit(self.limits.max_record_bytes, "raise the server's --max-record-mb, or use `ecgrhythm classify`"):
                record = read_record(path, fs=fs)
            self.check_cost(record, path.name, ticket)
            return self.classify_record(record, ticket, lead=lead)
        except RecordError as exc:
            raise HTTPException(422, f"{Path(exc.path).name}: {hide_folders(exc.reason, hide)}") from None
        except NonFiniteOutputError as exc:
            logger.error("%s: %s", path.name, exc)
            raise HTTPException(422, f"{path.name}: cannot be classified: {hide_folders(str(exc), hide)}") from None

    def check_cost(self, record: EcgRecord, name: str, ticket: Ticket) -> None:
        """Refuse a record whose estimated work cannot finish within the deadline: 413 if it never could, 503 if not in the time left.

        The estimate is `seconds_per_sample` times the record's samples at the model's rate times its networks, plus
        :data:`NATIVE_SAMPLE_SHARE` of it for each sample at the record's own rate (a record at 100 kHz is read and
        resampled at that rate, however few samples the networks see).
        """
        clf, limits = self.classifier, self.limits
        samples = record.n_samples * (clf.preprocess_.fs / record.fs * clf.n_networks_ + NATIVE_SAMPLE_SHARE)
        cost = samples * limits.seconds_per_sample
        if cost > limits.deadline_s:
            raise HTTPException(
                413,
                f"{name}: {record.duration_s / 60:.1f} minutes of signal would take about {cost:.0f} s to classify, over the server's "
                f"limit of {limits.deadline_s:g} s per request (--deadline): send a shorter record, or use `ecgrhythm episodes`",
            )
        if cost > ticket.remaining():
            raise busy(
                f"{name}: about {cost:.0f} s of work would not finish within this request's deadline (--deadline) after its wait: try again", cost
            )

    def classify_record(self, record: EcgRecord, ticket: Ticket, *, lead=None) -> dict:
        """The response body for one record: label, probabilities, segments, episodes, the picture of a long one and the signal to draw.

        Preparing the signal and the drawing run in this thread; the networks' work goes through the
        batcher, among other requests' work. `ticket` is checked between the steps and before each network call.
        """
        clf = self.classifier
        ticket.check()
        if lead is not None and clf.n_leads_ != 1:
            raise RecordError(record.record_name, f"the model takes {clf.n_leads_} leads, so no lead is chosen: leave the lead field empty")
        one, lead_name = clf.choose_lead(record, lead)
        prepared = clf.prepare(one)
        signal = display_signal(record)
        batched = self.batcher.view(ticket)
        with self.batcher.member():
            probs, segments = batched.predict_with_segments(one, WINDOW_S, signal=prepared)
            answer, found = episodes_payload(batched, record, probs, lead=lead)
        ticket.check()
        picture = picture_payload(clf, found, record)  # drawn outside the batcher's members: it sends no network call
        ticket.check()
        classes = list(clf.classes_)
        return {
            "record": record.record_name,
            "label": answer.pop("label"),
            "probabilities": dict(zip(classes, map(float, probs))),
            "classes": classes,
            "lead": lead_name,
            "fs": record.fs,
            "duration_s": record.duration_s,
            "window_s": WINDOW_S,
            "segments": [
                {
                    "start_s": round(seg.start_s, 3),
                    "end_s": round(seg.end_s, 3),
                    "label": seg.label,
                    "probabilities": dict(zip(classes, map(float, seg.probabilities))),
                    "calibrated": seg.calibrated,
                }
                for seg in segments
            ],
            **answer,
            "picture": picture,
            "signal": signal,
        }
