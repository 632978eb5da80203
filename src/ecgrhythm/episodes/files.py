"""AF episodes of record files, each read whole or, when long, in pieces; one bad file fails alone; the episode CSVs.

What `ecgrhythm episodes` runs: :func:`iter_file_episodes` finds the episodes of each file in turn (WFDB records
over an hour are read in pieces, in bounded memory), and :func:`write_episodes` and :func:`write_summary` write
them as CSV files, replaced atomically. Each file's rate and unit are checked from its signal first
(:func:`~ecgrhythm.preprocessing.plausibility.warn_if_implausible`, as :mod:`ecgrhythm.inference.streaming` does).
The episodes are those of the one record-level rule (:meth:`~ecgrhythm.episodes.answers.LongRecordAnswer.agreeing`),
so they agree with the label `ecgrhythm classify` gives the same file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ecgrhythm.episodes.answers import LongRecordAnswer
from ecgrhythm.episodes.finder import RecordEpisodes
from ecgrhythm.episodes.leads import LeadEpisodes, find_episodes
from ecgrhythm.episodes.params import DEFAULT_PARAMS, EpisodeParams
from ecgrhythm.inference.streaming import check_stream_start
from ecgrhythm.preprocessing.plausibility import ImplausibleRecordWarning, warn_if_implausible
from ecgrhythm.records import EcgRecord, failure_reason, read_record
from ecgrhythm.records.long_records import open_long_record, should_stream
from ecgrhythm.utils.io import atomic_write, csv_writer

__all__ = ["iter_file_episodes", "open_record_file", "write_episodes", "write_summary", "EPISODE_COLUMNS", "SUMMARY_COLUMNS"]

EPISODE_COLUMNS = ("record", "lead", "start_s", "end_s", "label", "probability")
SUMMARY_COLUMNS = ("record", "lead", "duration_s", "af_burden", "af_episodes", "longest_af_s", "record_class")


@contextlib.contextmanager
def open_record_file(path, fs: float | None = None):
    """A record file opened as the episode finder reads it: in pieces when long, else whole.

    Args:
        path: a record file or a bare WFDB record name.
        fs: sampling rate (Hz) of a file without a header.

    Yields:
        An open :class:`~ecgrhythm.records.WfdbStream` (or EDF stream) for a WFDB record or an EDF/BDF file over an hour
        (:func:`~ecgrhythm.records.long_records.should_stream`), closed when the block ends; else the
        :class:`~ecgrhythm.records.EcgRecord` read whole.

    Raises:
        RecordError: the file cannot be read.
    """
    if should_stream(path, fs):
        with open_long_record(path, fs) as stream:
            yield stream
    else:
        yield read_record(path, fs=fs)


def _file_episodes(classifier, path: Path, fs: float | None, lead, progress, rule) -> RecordEpisodes:
    with open_record_file(path, fs) as source:
        if isinstance(source, EcgRecord):
            one = classifier.choose_lead(source, lead)[0]
            warn_if_implausible(one.signal, source.fs, path)
            found = find_episodes(classifier, source, lead, rule.params, progress=progress, per_stretch=rule.applies(source.duration_s))
            return rule.agreeing(found, one)
        check_stream_start(classifier, source, lead, path)
        return rule.agreeing(find_episodes(classifier, source, lead, rule.params, progress=progress))


def iter_file_episodes(
    classifier,
    paths,
    *,
    fs: float | None = None,
    lead=None,
    params: EpisodeParams = DEFAULT_PARAMS,
    on_failure=None,
    progress=None,
    paired: bool = False,
) -> Iterator[RecordEpisodes]:
    """The episodes of each record file, in order; a file that fails is reported and the rest go on.

    Args:
        classifier: a loaded single-lead :class:`~ecgrhythm.inference.classifier.RhythmClassifier` with an AF class.
        paths: record files (`.hea`, `.mat`, `.csv`, `.npy`, ...) or bare WFDB record names.
        fs: sampling rate (Hz) of files without a header.
        lead: lead name or 0-based index (default: lead I, else the first, unless it is unusable and another is clean).
        params: the episode finder's settings (:class:`~ecgrhythm.episodes.params.EpisodeParams`).
        on_failure: `on_failure(path, reason)`, called for each file that fails
            (:func:`~ecgrhythm.records.failure_reason`); `None` skips them silently.
        progress: `progress(done_s, total_s)`, called as the record being worked on is gone through (seconds of it
            done, its length; each record starts again from 0); `None` reports nothing.
        paired: yield `(path, episodes)` pairs, so that the caller knows which file each result is of.

    Yields:
        The :class:`~ecgrhythm.episodes.finder.RecordEpisodes` of each file that could be used (with its path
        when `paired`).
    """
    rule = LongRecordAnswer(classifier, params)
    for path in map(Path, paths):
        try:
            found = _file_episodes(classifier, path, fs, lead, progress, rule)
        except Exception as exc:  # one bad record fails alone, whatever its kind
            if on_failure is not None:  # an ImplausibleRecordWarning raised as an error says it all
                on_failure(path, exc.reason if isinstance(exc, ImplausibleRecordWarning) else failure_reason(exc))
            continue
        yield (path, found) if paired else found


def _write_rows(path, header, rows) -> None:
    """Write a CSV to `path` atomically, or to `path` itself if it is an open text file (such as `sys.stdout`)."""
    if hasattr(path, "write"):
        opened = contextlib.nullcontext(path)
    else:
        opened = atomic_write(path, "w", newline="", encoding="utf-8", errors="backslashreplace")
    with opened as f:
        writer = csv_writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_episodes(results: list[RecordEpisodes], path) -> None:
    """Write one row per episode (:data:`EPISODE_COLUMNS`; times in seconds from the record's start) to the CSV `path`.

    The `lead` of an episode is the record's, or where its lead was chosen per stretch
    (:class:`~ecgrhythm.episodes.leads.LeadEpisodes`) the lead under most of the episode; the summary's names the
    leads used (`I/II`).

    `path` is a file name (the file is replaced atomically) or an open text file, such as `sys.stdout`.
    """
    _write_rows(
        path,
        EPISODE_COLUMNS,
        ([r.record_name, _lead(r, e), f"{e.start_s:.3f}", f"{e.end_s:.3f}", e.label, f"{e.probability:.4f}"] for r in results for e in r.episodes),
    )


def _lead(found: RecordEpisodes, episode) -> str | None:
    """The lead of one episode: the record's, or for a lead chosen per stretch the one under most of the episode."""
    return found.episode_lead(episode) if isinstance(found, LeadEpisodes) else found.lead


def write_summary(results: list[RecordEpisodes], path) -> None:
    """Write one row per record (:data:`SUMMARY_COLUMNS`: duration, AF burden, AF episodes, the longest, CPSC 2021 class) to the CSV `path`.

    `path` is a file name (the file is replaced atomically) or an open text file, such as `sys.stdout`.
    """
    _write_rows(
        path,
        SUMMARY_COLUMNS,
        (
            [r.record_name, r.lead, f"{r.duration_s:.3f}", f"{r.af_burden:.4f}", len(r.af_episodes()), f"{r.longest_af_s:.3f}", r.record_class]
            for r in results
        ),
    )
