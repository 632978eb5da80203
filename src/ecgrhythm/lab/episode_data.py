"""Records for fitting and scoring the AF episode finder: the cpsc2021 sample, and long records joined from CinC 2017.

:func:`joined_records` joins CinC 2017 records (N, A, O; `~` never) end to end into long synthetic
records, resampled to a chosen rate and seeded, with the truth of every stretch (AF where the source
record is labelled A). Each CinC record is used at most once, so grouping folds by joined record
keeps every source record in one fold. The shipped networks were trained on all CinC 2017 records:
their probabilities on these joins are in-sample (optimistic); the R-R evidence of the beats is not.

:class:`EpisodeCase` is one scored record with what is slow to compute cached under `runs/episodes/`:
the first network's window probabilities (at the default window and hop, as `episodes` computes
them) and the record's beats (:func:`ecgrhythm.episodes.beats.record_beats`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import numpy as np

from ecgrhythm.episodes.annotations import RhythmAnnotations, read_rhythm_annotations
from ecgrhythm.episodes.beats import record_beats
from ecgrhythm.episodes.params import DEFAULT_PARAMS, EpisodeParams
from ecgrhythm.episodes.windows import WindowProbabilities, collect_windows, iter_window_probabilities
from ecgrhythm.evaluation.episodes import annotated_records
from ecgrhythm.preprocessing.pipeline import resample
from ecgrhythm.records import read_record
from ecgrhythm.utils.io import atomic_write

__all__ = ["EpisodeCase", "JoinedRecord", "joined_records", "cpsc2021_cases", "joined_cases", "CACHE_DIR", "CINC_DIR", "CPSC_DIR"]

CACHE_DIR = Path("runs/episodes")
CINC_DIR = Path("../shared/data/cinc2017")
CPSC_DIR = Path("../shared/data/cpsc2021-sample")


@dataclasses.dataclass(frozen=True)
class JoinedRecord:
    """A long record joined from CinC 2017 records.

    Attributes:
        name: `joined_<seed>_<i>`.
        signal: float32 array `(n_samples,)` in mV.
        fs: its sampling rate.
        sources: the CinC record names, in order.
        labels: their labels (`N`, `A`, `O`).
        bounds: int array `(n_sources + 1,)`, the first sample of each source and the record's length.
    """

    name: str
    signal: np.ndarray
    fs: float
    sources: tuple[str, ...]
    labels: tuple[str, ...]
    bounds: np.ndarray

    def af_intervals(self) -> np.ndarray:
        """AF stretches `[onset, end]` in samples (consecutive A sources merged), int array `(n, 2)`."""
        rows = []
        for k, label in enumerate(self.labels):
            a, b = int(self.bounds[k]), int(self.bounds[k + 1])
            if label != "A":
                continue
            if rows and rows[-1][1] == a:
                rows[-1][1] = b
            else:
                rows.append([a, b])
        return np.asarray([[a, min(b, len(self.signal) - 1)] for a, b in rows], dtype=int).reshape(-1, 2)


def joined_records(
    n_records: int, *, minutes: float = 10.0, fs: float = 200.0, seed: int = 0, af_share: float = 0.3, data_dir=CINC_DIR
) -> list[JoinedRecord]:
    """Long records joined from CinC 2017 records, each source used once.

    Sources are drawn without replacement: A with probability `af_share`, else N or O (2:1), so AF
    episodes of one or a few source records alternate with other rhythms. Each source is resampled
    to `fs`; its first sample is shifted to the previous source's last, to avoid a step at the join.

    Args:
        n_records: how many records.
        minutes: each record's length (at least; the last source is kept whole).
        fs: sampling rate of the joined records.
        seed: the draw.
        af_share: probability that the next source is an A record.
        data_dir: the CinC 2017 folder (with REFERENCE.csv).
    """
    data_dir = Path(data_dir)
    reference = [line.split(",") for line in (data_dir / "REFERENCE.csv").read_text().split()]
    pools = {label: [name for name, lab in reference if lab == label] for label in "NAO"}
    rng = np.random.default_rng(seed)
    for pool in pools.values():
        rng.shuffle(pool)
    out = []
    for i in range(n_records):
        pieces, sources, labels, total = [], [], [], 0
        while total < minutes * 60 * fs:
            label = "A" if rng.random() < af_share else ("N" if rng.random() < 2 / 3 else "O")
            if not pools[label]:
                raise ValueError(f"{data_dir}: not enough {label} records for {n_records} joined records of {minutes} min")
            name = pools[label].pop()
            record = read_record(data_dir / f"{name}.hea")
            x = resample(record.signal[:, 0].astype(np.float32), record.fs, fs)
            if pieces:
                x = x - x[0] + pieces[-1][-1]
            pieces.append(x)
            sources.append(name)
            labels.append(label)
            total += len(x)
        bounds = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(int)
        out.append(JoinedRecord(f"joined_{seed}_{i}", np.concatenate(pieces).astype(np.float32), float(fs), tuple(sources), tuple(labels), bounds))
    return out


def joined_truth(record: JoinedRecord, beats: np.ndarray) -> RhythmAnnotations:
    """The joined record's truth as CPSC 2021 annotations: its beats, and a rhythm mark at each AF onset and end."""
    intervals = record.af_intervals()
    n = len(record.signal)
    marks = [int(x) for x in intervals.ravel()]
    samples = np.unique(np.concatenate([np.asarray(beats, dtype=int), marks])) if marks else np.asarray(beats, dtype=int)
    starts = np.searchsorted(samples, intervals[:, 0]).astype(int)
    ends = np.searchsorted(samples, intervals[:, 1]).astype(int)
    if len(intervals) == 0:
        cls = 0
    elif len(intervals) == 1 and intervals[0, 0] == 0 and intervals[0, 1] >= n - 1:
        cls = 1
    else:
        cls = 2
    return RhythmAnnotations(record.name, record.fs, n, samples, starts, ends, cls)


@dataclasses.dataclass(frozen=True)
class EpisodeCase:
    """One record to score episodes on, with its cached window probabilities and beats.

    Attributes:
        name: the record's name.
        group: the fold group (cpsc2021: the patient; joined: the record, whose sources are its own).
        signal: float32 array `(n_samples,)`, the lead used.
        fs: sampling rate.
        truth: the AF truth.
        windows: the first network's window probabilities.
        beats: int array, the record's beats (:func:`record_beats`).
    """

    name: str
    group: str
    signal: np.ndarray
    fs: float
    truth: RhythmAnnotations
    windows: WindowProbabilities
    beats: np.ndarray

    @property
    def n_samples(self) -> int:
        return len(self.signal)

    def read(self, a: int, b: int) -> np.ndarray:
        return self.signal[a:b]


def _cached(key: str, compute, cache_dir: Path) -> dict:
    """`compute()` (a dict of arrays), stored as `cache_dir/<key>.npz` and read back next time."""
    path = cache_dir / f"{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    arrays = compute()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())
    return arrays


def _case(clf, name, group, signal, fs, truth_fn, params: EpisodeParams, cache_dir: Path, model_tag: str) -> EpisodeCase:
    def windows():
        stream = iter_window_probabilities(clf(), [signal], fs, lead="lead", params=params)
        w = collect_windows(stream, clf().classes_, len(signal) / fs)
        return {"starts": w.starts_s, "ends": w.ends_s, "probabilities": w.probabilities, "classes": np.array(w.classes)}

    tag = f"{name}_{model_tag}_w{params.window_s:g}_h{params.hop_s:g}_n{params.networks}"
    w = _cached(tag, windows, cache_dir)
    beats = _cached(f"{name}_beats", lambda: {"beats": record_beats(lambda a, b: signal[a:b], fs, len(signal))}, cache_dir)["beats"]
    wp = WindowProbabilities(w["starts"], w["ends"], w["probabilities"], [str(c) for c in w["classes"]], len(signal) / fs)
    return EpisodeCase(name, group, signal, float(fs), truth_fn(beats), wp, beats)


class _LazyClassifier:
    """Loads the classifier on first use (a fully cached run never loads it)."""

    def __init__(self, model_dir):
        self.model_dir, self.clf = model_dir, None

    def __call__(self):
        if self.clf is None:
            from ecgrhythm.inference.classifier import RhythmClassifier

            self.clf = RhythmClassifier.load(self.model_dir)
        return self.clf


def _model_tag(model_dir) -> str:
    """A short tag of a model folder (its path, and the size and time of its networks' files) for cache names."""
    from ecgrhythm.inference.classifier import default_model_dir

    path = Path(model_dir) if model_dir is not None else Path(default_model_dir())
    files = sorted(p for p in path.iterdir() if p.name in ("config.json", "model.onnx") or p.name.endswith(".weights.h5"))
    stamp = [str(path.resolve())] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    return hashlib.sha1("|".join(stamp).encode()).hexdigest()[:8]


def cpsc2021_cases(model_dir=None, *, data_dir=CPSC_DIR, params: EpisodeParams = DEFAULT_PARAMS, cache_dir=CACHE_DIR) -> list[EpisodeCase]:
    """The cpsc2021 sample's annotated records, grouped by patient (`data_<patient>_<n>`), on the lead `episodes` chooses."""
    clf = _LazyClassifier(model_dir)
    cases = []
    for path in annotated_records(data_dir):
        truth = read_rhythm_annotations(path)
        lead_file = Path(cache_dir) / f"{path.stem}_lead.txt"
        record = read_record(path)
        if lead_file.is_file():
            index = int(lead_file.read_text())
        else:
            _, lead = clf().choose_lead(record, None)
            index = list(record.sig_name).index(lead)
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            lead_file.write_text(str(index))
        signal = record.signal[:, index].astype(np.float32)
        group = path.stem.rsplit("_", 1)[0]
        cases.append(_case(clf, path.stem, group, signal, record.fs, lambda beats, t=truth: t, params, Path(cache_dir), _model_tag(model_dir)))
    return cases


def joined_cases(
    n_records: int = 12,
    *,
    minutes: float = 10.0,
    fs: float = 200.0,
    seed: int = 0,
    model_dir=None,
    params: EpisodeParams = DEFAULT_PARAMS,
    cache_dir=CACHE_DIR,
) -> list[EpisodeCase]:
    """:func:`joined_records` as cases, each its own fold group; the truth's beats are the detected ones."""
    clf = _LazyClassifier(model_dir)
    cases = []
    for record in joined_records(n_records, minutes=minutes, fs=fs, seed=seed):
        name = f"{record.name}_{n_records}x{minutes:g}min_{fs:g}Hz"
        cases.append(
            _case(
                clf,
                name,
                record.name,
                record.signal,
                fs,
                lambda beats, r=record: joined_truth(r, beats),
                params,
                Path(cache_dir),
                _model_tag(model_dir),
            )
        )
    return cases
