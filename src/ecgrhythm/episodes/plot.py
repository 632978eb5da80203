"""A picture of a long record's rhythm: its episodes as a strip over the whole recording, and a few seconds of ECG.

:func:`plot_episodes` draws the :class:`~ecgrhythm.episodes.finder.RecordEpisodes` of one record on one figure
(1600 x 700 pixels):

- the title: the record, its CPSC 2021 class, the AF burden and the number of AF episodes, the lead used and the
  duration;
- the rhythm strip: every episode coloured by its label (the service page's colours: AF orange, normal rhythm
  green, other rhythm blue, too noisy to judge grey and hatched), on a time axis of clock times when the record
  says when it started (:attr:`~ecgrhythm.records.EcgRecord.start_time`: EDF and BDF files), else of the time
  from its start;
- `ecg_s` seconds of the lead at the start of the longest AF episode (of the record when it has no AF), on
  ECG-paper axes: 25 mm/s and 10 mm/mV, 0.2 s and 0.5 mV squares, filtered 0.5-40 Hz for display.

Only those seconds are read: a record given as a path is opened as the episode finder opens it
(:func:`~ecgrhythm.episodes.files.open_record_file`), in pieces when it lasts over an hour. :func:`write_plot`
writes the PNG (a palette PNG, some 60 KB) atomically, as `ecgrhythm episodes --plot DIR` does for each record.
Figures are drawn on matplotlib's Agg canvas: no display, no change of matplotlib's global backend.
"""

from __future__ import annotations

import datetime
import io
import math
from pathlib import Path

import numpy as np

from ecgrhythm.episodes.files import open_record_file
from ecgrhythm.episodes.finder import RecordEpisodes
from ecgrhythm.episodes.leads import LeadEpisodes
from ecgrhythm.episodes.params import AF_LABEL
from ecgrhythm.preprocessing.leads import lead_index
from ecgrhythm.preprocessing.pipeline import bandpass
from ecgrhythm.records import EcgRecord, RecordError
from ecgrhythm.utils.io import atomic_write, palette_png

__all__ = ["plot_episodes", "plot_png", "write_plot", "time_ticks", "ecg_window", "LABEL_COLOURS", "LABEL_NAMES"]

# The service page's colours and names of the classes (service/static/app.js).
LABEL_COLOURS = {"N": "#008a63", "A": "#c94f00", "O": "#0067a5", "~": "#7a7a7a"}
LABEL_NAMES = {"N": "normal rhythm", "A": "atrial fibrillation", "O": "other rhythm", "~": "too noisy to judge"}
NOISY_LABEL = "~"
FIGSIZE_IN, DPI = (16.0, 7.0), 100
ECG_S, ECG_BEFORE_S = 8.0, 2.0  # seconds of ECG shown, and how many of them before the AF onset
DISPLAY_BAND_HZ = (0.5, 40.0)
_PAPER = {"face": "#fff7f5", "minor": "#f7cfc8", "major": "#e99a8d"}
_TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_SOFTWARE = "ecgrhythm"  # the PNG's Software text, which marks the files write_plot may replace
# Axes boxes in figure fractions: [left, bottom, width, height].
_STRIP_BOX, _ECG_BOX = (0.045, 0.64, 0.925, 0.21), (0.045, 0.075, 0.925, 0.44)


def plot_episodes(found: RecordEpisodes, record, path=None, *, fs: float | None = None, ecg_s: float = ECG_S):
    """Draw a record's rhythm: its episodes over the whole recording and `ecg_s` seconds of ECG (module docstring).

    Args:
        found: the record's episodes (:func:`~ecgrhythm.episodes.finder.record_episodes`, `stream_episodes`, or
            `ecgrhythm episodes`).
        record: the same record: an :class:`~ecgrhythm.records.EcgRecord`, an open stream
            (:func:`~ecgrhythm.records.open_wfdb`), or a record file or WFDB record name, of which only the
            seconds shown are read (in pieces when the record lasts over an hour).
        path: a PNG file to write (replaced atomically), or `None` to only return the figure.
        fs: sampling rate (Hz) of a record file without a header (`.csv`, `.npy`, `.mat`).
        ecg_s: seconds of ECG shown, 2 to 30.

    Returns:
        The `matplotlib.figure.Figure` (not registered with `pyplot`).

    Raises:
        RecordError: the record cannot be read, lacks the lead of `found`, or is not the record of `found`.
        ValueError: `ecg_s` is out of range.

    Example:
        >>> import ecgrhythm
        >>> clf = ecgrhythm.RhythmClassifier.load()
        >>> record = ecgrhythm.read_record("../shared/data/cpsc2021-sample/data_101_6.hea")
        >>> found = ecgrhythm.record_episodes(clf, record)
        >>> fig = ecgrhythm.plot_episodes(found, record)
        >>> fig.get_suptitle()
        'data_101_6: paroxysmal AF, AF burden 38.6 % in 3 episodes (longest 25 s); lead I; 1 min 52 s'
        >>> fig.axes[1].get_title(loc="left")   # the ECG: 2 s before the onset of the longest AF episode, then 6 s
        '8 s of lead I at the start of the longest AF episode: 25 mm/s, 10 mm/mV, filtered 0.5-40 Hz (the black frame on the strip)'
        >>> ecgrhythm.plot_episodes(found, record, "data_101_6.png")   # doctest: +SKIP
    """
    if not (isinstance(ecg_s, int | float) and 2 <= ecg_s <= 30):
        raise ValueError(f"Invalid argument `ecg_s`: expected seconds from 2 to 30. Received: ecg_s={ecg_s!r}")
    start_s, stop_s, why = ecg_window(found, ecg_s)
    if isinstance(record, EcgRecord) or hasattr(record, "read"):
        ecg, start_time = _ecg(found, record, start_s, stop_s), getattr(record, "start_time", None)
    else:
        with open_record_file(record, fs) as source:
            ecg, start_time = _ecg(found, source, start_s, stop_s), getattr(source, "start_time", None)
    fig = _figure(found, ecg, start_s, why, start_time)
    if path is not None:
        with atomic_write(path, "wb") as f:
            f.write(_png(fig))
    return fig


def plot_png(found: RecordEpisodes, record, *, fs: float | None = None) -> bytes:
    """The picture of :func:`plot_episodes` as the bytes of the PNG file :func:`write_plot` writes (the service's page shows it).

    Args:
        found, record, fs: as for :func:`plot_episodes`.

    Raises:
        RecordError: as :func:`plot_episodes`.
    """
    return _png(plot_episodes(found, record, fs=fs))


def write_plot(found: RecordEpisodes, record, folder, *, fs: float | None = None, taken=()) -> Path:
    """Write the picture of :func:`plot_episodes` into `folder` as `<record name>.png`, and say where.

    A PNG that this function wrote before is replaced (atomically); any other file of that name is left alone.

    Args:
        found, record, fs: as for :func:`plot_episodes`.
        folder: the folder (made if missing).
        taken: file names already written in this run: a record of the same name as an earlier one (from another
            folder) is written as `<record name>-2.png`, and so on.

    Returns:
        The PNG file written.

    Raises:
        RecordError: as :func:`plot_episodes`, or the file exists and is not a picture of ecgrhythm.
    """
    folder = Path(folder)
    stem, n = found.record_name.replace("/", "_").replace("\\", "_") or "record", 1  # a name, never a path
    while (name := f"{stem}.png" if n == 1 else f"{stem}-{n}.png") in taken:
        n += 1
    target = folder / name
    if target.exists() and not _is_our_picture(target):
        raise RecordError(target, f"{name} exists in {folder} and is not a picture ecgrhythm drew, so it is not replaced; plot into another folder")
    folder.mkdir(parents=True, exist_ok=True)
    plot_episodes(found, record, target, fs=fs)
    return target


def ecg_window(found: RecordEpisodes, ecg_s: float = ECG_S) -> tuple[float, float, str]:
    """The seconds of ECG to show: `(start_s, stop_s, what they are)`.

    `ecg_s` seconds from `ECG_BEFORE_S` before the onset of the longest AF episode (the first of equals), or from
    the record's start when it has no AF, kept within the record.
    """
    af = found.af_episodes()
    duration = found.duration_s
    if af:
        longest = max(af, key=lambda e: e.end_s - e.start_s)
        start = longest.start_s - ECG_BEFORE_S
        why = "the start of the longest AF episode" + (" (AF from the record's start)" if longest.start_s <= 0 else "")
    else:
        start, why = 0.0, "the start of the record (no AF found)"
    start = max(0.0, min(start, duration - ecg_s))
    return start, min(duration, start + ecg_s), why


def time_ticks(start_s: float, stop_s: float, start_time: datetime.datetime | None = None, *, max_ticks: int = 10):
    """Ticks for a time axis in seconds from a record's start: clock times when `start_time` is known, else elapsed times.

    The step is the shortest of 1 s, 2 s, 5 s, ... 30 min, 1 h, ... 1 day giving at most `max_ticks` ticks; clock
    ticks fall on round clock times (every hour on the hour), labelled `HH:MM` (`HH:MM:SS` for steps under a
    minute) and, where the date changes, `DD Mon HH:MM`; elapsed ticks are `h:mm` for axes reaching an hour, else `m:ss`.

    Args:
        start_s, stop_s: the axis range, seconds from the record's start.
        start_time: when the record started, or `None`.
        max_ticks: the most ticks wanted.

    Returns:
        `(positions, labels, axis label)`: positions in seconds from the record's start (a float array), their
        labels and what the axis shows.

    Example:
        >>> import datetime
        >>> positions, labels, name = time_ticks(0, 7200, datetime.datetime(2024, 3, 1, 23, 10, 30))
        >>> positions[:2], labels[:5], name
        (array([ 270., 1170.]), ['23:15', '23:30', '23:45', '02 Mar 00:00', '00:15'], 'clock time (the recording started 2024-03-01 23:10:30)')
        >>> time_ticks(0, 111.775)[1]
        ['0:00', '0:15', '0:30', '0:45', '1:00', '1:15', '1:30', '1:45']
    """
    span = max(stop_s - start_s, 1e-9)
    step = next((s for s in _TICK_STEPS_S if span / s <= max_ticks), 86400 * math.ceil(span / max_ticks / 86400))
    offset = 0.0
    if start_time is not None:
        offset = (start_time - start_time.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
    first = math.ceil((offset + start_s) / step - 1e-9) * step - offset
    positions = np.arange(first, stop_s + 1e-9, step, dtype=float)
    if start_time is None:
        hours = stop_s >= 3600
        form = ("h:mm:ss" if step < 60 else "h:mm") if hours else "m:ss"
        labels = [_elapsed(t, hours, seconds=form == "h:mm:ss") for t in positions]
        return positions, labels, f"time from the start of the recording ({form})"
    clocks = [start_time + datetime.timedelta(seconds=float(t)) for t in positions]
    form = "%H:%M" if step >= 60 else "%H:%M:%S"
    labels = [c.strftime(("%d %b " if i and c.date() != clocks[i - 1].date() else "") + form) for i, c in enumerate(clocks)]
    return positions, labels, f"clock time (the recording started {start_time:%Y-%m-%d %H:%M:%S})"


def _elapsed(t: float, hours: bool, seconds: bool = False) -> str:
    whole = round(t)
    if not hours:
        return f"{whole // 60}:{whole % 60:02d}"
    text = f"{whole // 3600}:{whole % 3600 // 60:02d}"
    return f"{text}:{whole % 60:02d}" if seconds else text


def _duration(seconds: float) -> str:
    """`45 s`, `6 min 02 s`, `23 h 59 min`: a duration for people."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _ecg(found: RecordEpisodes, source, start_s: float, stop_s: float) -> np.ndarray:
    """The lead of `found` from `start_s` to `stop_s` in mV, filtered for display (read with a margin for the filter)."""
    name = getattr(source, "header", None) or source.record_name
    n_samples = source.n_samples
    if not math.isclose(source.fs, found.fs) or n_samples != found.n_samples:
        raise RecordError(
            name,
            f"is {n_samples} samples at {source.fs:g} Hz, but the episodes are of {found.record_name!r}, "
            f"{found.n_samples} samples at {found.fs:g} Hz: give the record the episodes were found in",
        )
    column = lead_index(source.sig_name, _shown_lead(found, start_s, stop_s), source=name)
    a, b = round(start_s * found.fs), min(n_samples, round(stop_s * found.fs))
    margin = round(2 * found.fs)
    lo, hi = max(0, a - margin), min(n_samples, b + margin)
    if isinstance(source, EcgRecord):
        piece = source.signal[lo:hi, column : column + 1]
    else:
        piece = source.read(lo, hi, [column])
    low, high = DISPLAY_BAND_HZ
    filtered = bandpass(piece, found.fs, low, min(high, 0.45 * found.fs))
    return filtered[a - lo : b - lo, 0]


def _shown_lead(found: RecordEpisodes, start_s: float, stop_s: float) -> str:
    """The lead of the seconds of ECG shown: the record's, or where the lead was chosen per stretch the one under them."""
    return found.lead_between(start_s, stop_s) if isinstance(found, LeadEpisodes) else found.lead


def _figure(found: RecordEpisodes, ecg: np.ndarray, start_s: float, why: str, start_time):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    strip, paper = fig.add_axes(_STRIP_BOX), fig.add_axes(_ECG_BOX)
    fig.suptitle(_title(found), x=_STRIP_BOX[0], y=0.975, ha="left", va="top", fontsize=15, fontweight="bold")
    _draw_strip(strip, found, start_time)
    stop_s = start_s + len(ecg) / found.fs
    strip.add_patch(_window_box(strip, start_s, stop_s))
    _draw_paper(paper, found, ecg, start_s, start_time, why)
    return fig


def _title(found: RecordEpisodes) -> str:
    """`data_92_19: paroxysmal AF, AF burden 15.2 % in 2 episodes (longest 36 s); lead I; 6 min 02 s`."""
    n_af = len(found.af_episodes())
    what = "no AF found" if not n_af else f"{found.record_class} AF"
    longest = f" (longest {_duration(found.longest_af_s)})" if n_af else ""
    episodes = f"{n_af} episode{'' if n_af == 1 else 's'}"
    return f"{found.record_name}: {what}, AF burden {100 * found.af_burden:.1f} % in {episodes}{longest}; lead {found.lead}; {_duration(found.duration_s)}"


def _draw_strip(ax, found: RecordEpisodes, start_time) -> None:
    """The episodes as coloured spans over the whole record, with a legend of the labels present."""
    from matplotlib.patches import Patch

    duration = found.duration_s
    by_label: dict[str, list[tuple[float, float]]] = {}
    for e in found.episodes:
        by_label.setdefault(e.label, []).append((e.start_s, e.end_s - e.start_s))
    for label, spans in by_label.items():
        colour = LABEL_COLOURS.get(label, "#b0b0b0")
        af = label == AF_LABEL
        # AF is solid, with an edge so that a short episode stays visible on a day-long strip; the rest is lighter.
        ax.broken_barh(
            spans,
            (0, 1),
            facecolor=colour,
            alpha=1.0 if af else 0.35,
            edgecolor=colour if af else "none",
            linewidth=0.8,
            hatch="////" if label == NOISY_LABEL else None,
        )
    positions, labels, axis_label = time_ticks(0.0, duration, start_time)
    ax.set_xticks(positions, labels, fontsize=11)
    ax.set_xlabel(axis_label, fontsize=11)
    ax.set_xlim(0, duration)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.spines[["top", "right", "left"]].set_visible(False)
    order = [label for label in (AF_LABEL, "N", "O", NOISY_LABEL) if label in by_label] + sorted(set(by_label) - set(LABEL_COLOURS))
    handles = [
        Patch(
            facecolor=LABEL_COLOURS.get(label, "#b0b0b0"),
            alpha=1.0 if label == AF_LABEL else 0.35,
            hatch="////" if label == NOISY_LABEL else None,
            label=f"{LABEL_NAMES.get(label, label)} ({label})",
        )
        for label in order
    ]
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.07), ncol=len(handles), fontsize=11, frameon=False, borderaxespad=0.2)


def _window_box(ax, start_s: float, stop_s: float):
    """A black frame on the strip around the seconds of ECG shown (at least 3 pixels wide)."""
    from matplotlib.patches import Rectangle

    xlim = ax.get_xlim()
    min_width = 3 * (xlim[1] - xlim[0]) / (_STRIP_BOX[2] * FIGSIZE_IN[0] * DPI)
    width = max(stop_s - start_s, min_width)
    return Rectangle((start_s, -0.05), width, 1.1, fill=False, edgecolor="black", linewidth=1.6, clip_on=False)


def _paper_scale(ecg: np.ndarray, seconds: float) -> tuple[int, float, float]:
    """`(gain in mm/mV, bottom in mV, height in mV)` of the ECG paper: 10 mm/mV, or 5 when the ECG would not fit (then clipped if need be).

    At 25 mm/s the panel's width makes `seconds` fill it, which sets how many mV its height spans. The baseline (the
    median) sits a little below the middle, QRS complexes pointing up, unless the ECG fits only centred (or is drawn at
    5 mm/mV).
    """
    width_in, height_in = _ECG_BOX[2] * FIGSIZE_IN[0], _ECG_BOX[3] * FIGSIZE_IN[1]
    mm = width_in / seconds / 25  # inches per mm of paper
    lo, hi = (float(ecg.min()), float(ecg.max())) if len(ecg) else (0.0, 0.0)
    gain = 10 if hi - lo <= 0.9 * height_in / mm / 10 else 5
    height = height_in / mm / gain
    bottom = float(np.median(ecg)) - 0.45 * height if len(ecg) else -0.45 * height
    if gain == 5 or lo < bottom + 0.02 * height or hi > bottom + 0.95 * height:
        bottom = (lo + hi) / 2 - height / 2
    return gain, float(bottom), float(height)


def _draw_paper(ax, found: RecordEpisodes, ecg: np.ndarray, start_s: float, start_time, why: str) -> None:
    """`ecg` on ECG paper: 1 mm and 5 mm squares at 25 mm/s and 10 (or 5) mm/mV; the labels along the top; AF onsets."""
    stop_s = start_s + len(ecg) / found.fs
    gain, bottom, height = _paper_scale(ecg, stop_s - start_s)
    ax.set_facecolor(_PAPER["face"])
    for mm, colour, width in ((1, _PAPER["minor"], 0.5), (5, _PAPER["major"], 1.0)):
        step = mm / 25  # seconds
        xs = np.arange(math.ceil(start_s / step) * step, stop_s + 1e-9, step)
        ax.vlines(xs, bottom, bottom + height, colors=colour, linewidth=width, zorder=1)
        mv = mm / gain
        ys = np.arange(math.ceil(bottom / mv) * mv, bottom + height + 1e-9, mv)
        ax.hlines(ys, start_s, stop_s, colors=colour, linewidth=width, zorder=1)
    ax.plot(start_s + np.arange(len(ecg)) / found.fs, ecg, color="black", linewidth=1.1, zorder=3)
    for e in found.episodes:  # the labels of these seconds along the top edge, as on the strip
        a, b = max(e.start_s, start_s), min(e.end_s, stop_s)
        if b > a:
            ax.axvspan(a, b, ymin=0.965, ymax=1.0, color=LABEL_COLOURS.get(e.label, "#b0b0b0"), zorder=4, linewidth=0)
            if e.label == AF_LABEL and e.start_s >= start_s and e.start_s > 0:
                ax.axvline(e.start_s, color=LABEL_COLOURS[AF_LABEL], linewidth=1.5, linestyle="--", zorder=2)
                ax.annotate("AF onset", (e.start_s, 0.93), xycoords=("data", "axes fraction"), xytext=(5, 0), textcoords="offset points",
                            color=LABEL_COLOURS[AF_LABEL], fontsize=11, fontweight="bold", va="top", zorder=5,
                            bbox={"facecolor": _PAPER["face"], "edgecolor": "none", "pad": 1})  # fmt: skip
    positions, labels, axis_label = time_ticks(start_s, stop_s, start_time, max_ticks=12)
    ax.set_xticks(positions, labels, fontsize=10)
    ax.set_xlabel(axis_label, fontsize=11)
    ax.set_xlim(start_s, stop_s)
    ax.set_ylim(bottom, bottom + height)
    ax.set_yticks(np.arange(math.ceil(bottom), bottom + height + 1e-9, 1.0))
    ax.tick_params(axis="y", labelsize=10)
    ax.set_ylabel("mV", fontsize=11)
    for spine in ax.spines.values():
        spine.set_color(_PAPER["major"])
    ax.set_title(
        f"{stop_s - start_s:.0f} s of lead {_shown_lead(found, start_s, stop_s)} at {why}: 25 mm/s, {gain} mm/mV, filtered "
        f"{DISPLAY_BAND_HZ[0]:g}-{min(DISPLAY_BAND_HZ[1], 0.45 * found.fs):g} Hz (the black frame on the strip)",
        loc="left",
        fontsize=12,
    )


def _png(fig) -> bytes:
    """The figure as a palette PNG (a figure has few colours), marked as ecgrhythm's in its Software text."""
    from ecgrhythm import __version__

    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=DPI, metadata={"Software": None})
    return palette_png(raw.getvalue(), software=f"{_SOFTWARE} {__version__}")


def _is_our_picture(path: Path) -> bool:
    """Whether `path` is a PNG that :func:`write_plot` wrote (its Software text says ecgrhythm)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.format == "PNG" and str(image.text.get("Software", "")).startswith(_SOFTWARE)
    except Exception:  # not an image at all, or unreadable: not ours
        return False
