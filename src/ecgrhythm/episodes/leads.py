"""The lead of a long multi-lead record chosen per stretch for its episodes, and reported per episode.

A record is classified from one lead, chosen once by signal quality on its first minutes
(:func:`~ecgrhythm.preprocessing.quality.best_lead`). Over a day-long Holter record a lead can come loose after
hours, so for the episodes of a record longer than the networks' training length, with several leads and no lead
asked for, :func:`lead_plan` makes the same choice again for each stretch of `STRETCH_S` seconds: the record's lead
is kept unless, on the stretch's first :data:`~ecgrhythm.preprocessing.quality.CHECK_S` seconds, it is unusable and
another lead clearly better. When every stretch keeps the record's lead (any record with a clean lead), nothing
changes: :func:`find_episodes` gives the finder's episodes of that lead. Otherwise the finder runs on
:class:`PlannedLead`, one lead stitched from the chosen lead of each stretch, and the result is a
:class:`LeadEpisodes`: its `lead` names the leads used (`I/II`), and :meth:`LeadEpisodes.episode_lead` gives the
lead of each episode (the one under most of it), which `ecgrhythm episodes` writes in its `lead` column.

Cost: the quality index on 3 minutes of each 10-minute stretch (the record's lead alone while it is usable), and
reading those minutes of every lead once more; memory: one stretch's head.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ecgrhythm.episodes.finder import Episode, RecordEpisodes, record_episodes, stream_episodes
from ecgrhythm.episodes.params import DEFAULT_PARAMS, EpisodeParams
from ecgrhythm.inference.long_records import stream_columns
from ecgrhythm.preprocessing.quality import CHECK_S, HEAD_VALUES, best_lead
from ecgrhythm.records import EcgRecord

__all__ = ["LeadPlan", "LeadEpisodes", "PlannedLead", "lead_plan", "find_episodes", "STRETCH_S"]

STRETCH_S = 600.0  # seconds per stretch whose lead is chosen on its own


@dataclasses.dataclass(frozen=True)
class LeadPlan:
    """The lead of each stretch of a record.

    Attributes:
        sig_name: the record's lead names.
        bounds: int array `(k + 1,)`, the stretches' bounds in samples, from 0 to the record's length.
        columns: the column used in each of the `k` stretches.
        fs: the record's sampling rate in Hz.
    """

    sig_name: tuple[str, ...]
    bounds: np.ndarray
    columns: tuple[int, ...]
    fs: float

    @property
    def single(self) -> bool:
        """Whether one lead serves the whole record."""
        return len(set(self.columns)) == 1

    @property
    def name(self) -> str:
        """The leads used, in the order they are first used, joined by `/` (`I/II`)."""
        return "/".join(self.sig_name[c] for c in dict.fromkeys(self.columns))

    def stretches(self) -> tuple[tuple[float, float, str], ...]:
        """`(start_s, end_s, lead)` of each run of stretches on one lead."""
        runs = []
        for k, column in enumerate(self.columns):
            a, b, lead = self.bounds[k] / self.fs, self.bounds[k + 1] / self.fs, self.sig_name[column]
            if runs and runs[-1][2] == lead:
                runs[-1] = (runs[-1][0], float(b), lead)
            else:
                runs.append((float(a), float(b), lead))
        return tuple(runs)


def lead_plan(classifier, source, lead=None, *, stretch_s: float = STRETCH_S) -> LeadPlan | None:
    """The lead of each stretch of `source` for a single-lead `classifier` (see the module docstring).

    Args:
        classifier: a loaded single-lead :class:`~ecgrhythm.inference.classifier.RhythmClassifier`.
        source: the record read whole (an :class:`~ecgrhythm.records.EcgRecord`) or an open stream of it.
        lead: the lead asked for (then no plan: that lead throughout).
        stretch_s: seconds per stretch.

    Returns:
        The plan; `None` when a lead was asked for, the model takes several leads, or the record has one.
    """
    if lead is not None or classifier.n_leads_ != 1 or len(source.sig_name) < 2:
        return None
    [preferred], _ = _record_columns(classifier, source)
    n, fs = source.n_samples, source.fs
    step = max(1, round(stretch_s * fs))
    bounds = np.append(np.arange(0, n, step), n)
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < step // 2:  # a short last stretch joins the one before
        bounds = np.delete(bounds, -2)
    head = min(round(CHECK_S * fs), HEAD_VALUES // len(source.sig_name))
    columns = tuple(best_lead(_read(source, a, min(b, a + head)), fs, preferred, sig_name=source.sig_name) for a, b in zip(bounds[:-1], bounds[1:]))
    return LeadPlan(tuple(source.sig_name), bounds, columns, float(fs))


def _record_columns(classifier, source):
    """The columns the classifier takes from `source` as a whole (the record's lead)."""
    if isinstance(source, EcgRecord):
        return classifier.input_columns(source.sig_name, source=source.record_name, signal=source.signal, fs=source.fs)
    return stream_columns(classifier, source)


def _read(source, a: int, b: int, columns=None) -> np.ndarray:
    """Samples `a:b` of `source`'s `columns` (all by default), float32 `(b - a, n)`."""
    if isinstance(source, EcgRecord):
        return source.signal[a:b] if columns is None else source.signal[a:b, columns]
    return source.read(a, b, columns)


class PlannedLead:
    """One lead of a record stitched from the lead of each stretch of a :class:`LeadPlan`: what the episode finder
    reads (:func:`~ecgrhythm.episodes.finder.stream_episodes` takes it as a stream of one lead, named `plan.name`)."""

    def __init__(self, source, plan: LeadPlan):
        self.source, self.plan = source, plan
        self.fs, self.n_samples, self.record_name = float(source.fs), int(source.n_samples), source.record_name
        self.sig_name = (plan.name,)
        self.header = getattr(source, "header", source.record_name)
        self.start_time = getattr(source, "start_time", None)

    def read(self, start: int, stop: int, channels=None) -> np.ndarray:
        """Samples `start:stop` of the stitched lead, float32 `(stop - start, 1)` (`channels`, if given, is `[0]`)."""
        bounds, parts = self.plan.bounds, []
        for k, column in enumerate(self.plan.columns):
            a, b = max(start, int(bounds[k])), min(stop, int(bounds[k + 1]))
            if b > a:
                parts.append(np.asarray(_read(self.source, a, b, [column]), dtype=np.float32).reshape(-1, 1))
        return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)


@dataclasses.dataclass(frozen=True)
class LeadEpisodes(RecordEpisodes):
    """:class:`~ecgrhythm.episodes.finder.RecordEpisodes` found on a lead chosen per stretch; `lead` names the leads used.

    Attributes:
        lead_stretches: `(start_s, end_s, lead)` of each run of stretches on one lead, covering the record.
    """

    lead_stretches: tuple[tuple[float, float, str], ...] = ()

    def lead_between(self, start_s: float, end_s: float) -> str:
        """The lead under most of `[start_s, end_s)` (the first of equals)."""
        overlap = [max(0.0, min(b, end_s) - max(a, start_s)) for a, b, _ in self.lead_stretches]
        return self.lead_stretches[int(np.argmax(overlap))][2]

    def episode_lead(self, episode: Episode) -> str:
        """The lead under most of `episode`."""
        return self.lead_between(episode.start_s, episode.end_s)


def find_episodes(
    classifier, source, lead=None, params: EpisodeParams = DEFAULT_PARAMS, *, progress=None, per_stretch: bool = True, stretch_s: float = STRETCH_S
) -> RecordEpisodes:
    """The episodes of a record read whole or a stream, on the lead chosen per stretch when `per_stretch`.

    Args:
        classifier: a loaded single-lead classifier that finds episodes.
        source: an :class:`~ecgrhythm.records.EcgRecord` (all its leads) or an open stream of it.
        lead: the lead asked for (the same lead throughout), or `None`.
        params, progress: as for :func:`~ecgrhythm.episodes.finder.record_episodes`.
        per_stretch: choose the lead per stretch (:func:`lead_plan`); False: one lead for the record.
        stretch_s: seconds per stretch.

    Returns:
        The finder's episodes on the record's lead when one lead serves throughout, else a :class:`LeadEpisodes`.
    """
    plan = lead_plan(classifier, source, lead, stretch_s=stretch_s) if per_stretch else None
    if plan is None or plan.single:
        find = record_episodes if isinstance(source, EcgRecord) else stream_episodes
        return find(classifier, source, lead, params, progress=progress)
    found = stream_episodes(classifier, PlannedLead(source, plan), None, params, progress=progress)
    fields = {f.name: getattr(found, f.name) for f in dataclasses.fields(RecordEpisodes)}
    return LeadEpisodes(**fields, lead_stretches=plan.stretches())
