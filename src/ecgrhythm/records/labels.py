"""Label sources: CinC 2017 `REFERENCE.csv` (one label per record) and SNOMED-CT codes in WFDB headers.

:func:`read_folder_labels` reads a folder's labels, without reading any signal; training
(:func:`ecgrhythm.training.data.load_labelled`) and evaluation both start from it. The sources are
registered by name, as the record readers are by suffix (:mod:`.registry`)::

    register_label_source("xyz", detect=has_xyz_file, read=read_xyz_labels, multilabel=False)

each with how it recognises a folder (`"auto"` takes the first registered source that does) and how it
reads the labels into a :class:`FolderLabels`. Built in: `"reference"` (a `REFERENCE.csv`, one label a
record) and `"header"` (the `# Dx:` codes of the headers, several a record; it accepts any folder).

PhysioNet/CinC 2020-2021 headers carry diagnoses as a comment line
`# Dx: 164889003,426783006`. :func:`dx_mapping` names the codes with the
challenge's `dx_mapping_scored.csv` / `dx_mapping_unscored.csv` (their
`Abbreviation` column), and :func:`choose_classes` picks the classes a model
learns: every code seen, the scored list, or a given list.
"""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ecgrhythm.records.core import RecordError
from ecgrhythm.records.discovery import find_records
from ecgrhythm.records.reference import read_reference
from ecgrhythm.records.wfdb_reader import read_header_comments

__all__ = [
    "FolderLabels",
    "LabelSource",
    "read_folder_labels",
    "register_label_source",
    "label_source_names",
    "choose_label_source",
    "CINC2017_CLASSES",
    "class_names_of",
    "dx_codes",
    "dx_mapping",
    "choose_classes",
    "SCORED_MAPPING",
    "UNSCORED_MAPPING",
]

SCORED_MAPPING = "dx_mapping_scored.csv"
UNSCORED_MAPPING = "dx_mapping_unscored.csv"


def dx_codes(comments) -> list[str]:
    """SNOMED-CT codes of a header's `Dx:` comment line, in order (empty if there is none).

    Example:
    >>> dx_codes(("Age: 78", "Dx: 67741000119109,426177001"))
    ['67741000119109', '426177001']
    """
    for line in comments:
        key, _, value = line.partition(":")
        if key.strip().lower() == "dx":
            return [code.strip() for code in value.split(",") if code.strip()]
    return []


def dx_mapping(folder) -> tuple[dict[str, str], set[str]]:
    """Code-to-abbreviation mapping from the challenge's mapping files in `folder`.

    Returns:
        `(names, scored)`: abbreviation of every code found in
        `dx_mapping_scored.csv` and `dx_mapping_unscored.csv`, and the set of
        scored codes. Both are empty when the files are absent; codes without
        an abbreviation then keep their number as their name.
    """
    names: dict[str, str] = {}
    scored: set[str] = set()
    for filename in (SCORED_MAPPING, UNSCORED_MAPPING):
        path = Path(folder) / filename
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"SNOMEDCTCode", "Abbreviation"} <= set(reader.fieldnames or ()):
                raise RecordError(path, "expected columns 'SNOMEDCTCode' and 'Abbreviation'")
            for row in reader:
                code = (row["SNOMEDCTCode"] or "").strip()
                if code:
                    names[code] = (row["Abbreviation"] or "").strip() or code
                    if filename == SCORED_MAPPING:
                        scored.add(code)
    return names, scored


def choose_classes(code_lists, choice, names: dict[str, str], scored: set[str]) -> tuple[str, ...]:
    """Class names a multi-label model learns.

    Args:
        code_lists: the codes of each record.
        choice: `"all"` (every code seen, most frequent first), `"scored"` (the
            scored codes seen) or a list of class names or codes.
        names: code-to-abbreviation mapping (see :func:`dx_mapping`).
        scored: the scored codes.

    Returns:
        Class names (abbreviations where known).

    Raises:
        ValueError: no class is left, or a given class is unknown.
    """
    counts = Counter(names.get(code, code) for codes in code_lists for code in set(codes))
    if choice == "all":
        classes = [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    elif choice == "scored":
        scored_names = {names.get(code, code) for code in scored}
        classes = [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if name in scored_names]
        if not scored:
            raise ValueError(f"no scored codes: {SCORED_MAPPING} is missing beside the records; pass the classes as a list instead")
    else:
        classes = [names.get(c, c) for c in choice]
        unknown = [c for c in classes if c not in counts]
        if unknown:
            raise ValueError(f"classes {unknown} occur in no record; seen: {sorted(counts)}")
    if not classes:
        raise ValueError(f"no classes to learn (choice {choice!r}); the records carry no matching 'Dx:' codes")
    return tuple(classes)


def class_names_of(codes, names: dict[str, str]) -> set[str]:
    """Class names of a record's codes."""
    return {names.get(code, code) for code in codes}


CINC2017_CLASSES = ("N", "A", "O", "~")
REFERENCE_FILE = "REFERENCE.csv"


@dataclasses.dataclass
class FolderLabels:
    """The labels of a folder's records.

    Attributes:
        source: the name of the label source that read them (`"reference"`: `REFERENCE.csv`, `"header"`: `# Dx:` codes).
        paths: the record files that have labels, in the order of
            :func:`~ecgrhythm.records.find_records` (for header codes: every readable header).
        labels: record name (file stem) to its `REFERENCE.csv` label, or to the
            list of SNOMED-CT codes of its header (empty when it has no `Dx:` line).
        failures: `(path, reason)` of headers that could not be read.
        multilabel: whether a record carries several codes (`labels` maps to lists) instead of one class name.
        code_names: for codes, the class name (abbreviation) of each code known to the folder's mapping files.
        scored: for codes, the codes the mapping files mark as scored.
    """

    source: str
    paths: list[Path]
    labels: dict[str, str | list[str]]
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    multilabel: bool = False
    code_names: dict[str, str] = dataclasses.field(default_factory=dict)
    scored: set[str] = dataclasses.field(default_factory=set)

    def classes_of(self, name: str) -> set[str]:
        """The class names of record `name`'s codes (multi-label sources), see :func:`class_names_of`."""
        return class_names_of(self.labels[name], self.code_names)


@dataclasses.dataclass(frozen=True)
class LabelSource:
    """A registered label source.

    Attributes:
        name: what `--labels` and :func:`read_folder_labels` call it.
        detect: `detect(folder) -> bool`, whether the folder holds labels of this source (for `"auto"`); None for
            a source that takes any folder, which `"auto"` falls back on when no other source detects it.
        read: `read(folder) -> FolderLabels`, raising `RecordError` for a folder or label file it cannot read.
        multilabel: whether records carry several classes each.
    """

    name: str
    detect: Callable[[Path], bool] | None
    read: Callable[[Path], FolderLabels]
    multilabel: bool


_SOURCES: dict[str, LabelSource] = {}


def register_label_source(name: str, *, detect: Callable[[Path], bool] | None, read: Callable[[Path], FolderLabels], multilabel: bool) -> None:
    """Make :func:`read_folder_labels` (and so training, evaluation and `--labels`) read labels of the source `name`.

    `"auto"` tries the sources in registration order and takes the first whose `detect` accepts the folder, else
    the first that takes any folder (`detect=None`: the header codes).

    Args:
        name: the source's name, a lower-case word.
        detect: `detect(folder: Path) -> bool`, or None for a source that takes any folder.
        read: `read(folder: Path) -> FolderLabels`; `source` and `multilabel` are filled in by :func:`read_folder_labels`.
        multilabel: records carry several classes each (`labels` maps a record to a list of codes).

    Raises:
        ValueError: `name` is not a lower-case word, is `"auto"`, or already names a source.
    """
    if not (isinstance(name, str) and name.isidentifier() and name.islower()) or name == "auto" or name in _SOURCES:
        raise ValueError(f"Invalid argument `name`: expected a new lower-case word other than 'auto'. Received: name={name!r}")
    _SOURCES[name] = LabelSource(name, detect, read, multilabel)


def label_source_names() -> tuple[str, ...]:
    """`"auto"` and the name of every registered label source, in registration order."""
    return ("auto", *_SOURCES)


def choose_label_source(data_dir, source: str = "auto", *, multilabel: bool | None = None) -> LabelSource:
    """The label source `source` names, or for `"auto"` the first registered one that detects the folder, else the
    first that takes any folder.

    Args:
        data_dir: folder of records.
        source: a name of :func:`label_source_names`.
        multilabel: with `"auto"`, choose among the sources of this kind only; when none of them detects or takes
            the folder, the first of them (whose reader then says what is missing).

    Raises:
        ValueError: `source` is not one of the label sources.
    """
    if source == "auto":
        kind = [s for s in _SOURCES.values() if multilabel is None or s.multilabel == multilabel]
        detected = (s for s in kind if s.detect is not None and s.detect(Path(data_dir)))
        return next(detected, next((s for s in kind if s.detect is None), kind[0]))
    if source not in _SOURCES:
        raise ValueError(f"Invalid argument `labels`: expected one of {label_source_names()}. Received: labels={source!r}")
    return _SOURCES[source]


def read_folder_labels(data_dir, source: str = "auto", *, multilabel: bool | None = None) -> FolderLabels:
    """Read the labels of a folder's records, without reading any signal.

    Args:
        data_dir: folder of records.
        source: `"auto"` (`REFERENCE.csv` if the folder has one, else header
            codes), or a registered source: `"reference"` or `"header"`.
        multilabel: with `"auto"`, the kind of labels wanted (see :func:`choose_label_source`).

    Returns:
        A :class:`FolderLabels`.

    Raises:
        ValueError: `source` is not one of the label sources.
        RecordError: the folder or its `REFERENCE.csv` cannot be read.
    """
    chosen = choose_label_source(data_dir, source, multilabel=multilabel)
    return dataclasses.replace(chosen.read(Path(data_dir)), source=chosen.name, multilabel=chosen.multilabel)


def _read_reference_labels(data_dir: Path) -> FolderLabels:
    """The `REFERENCE.csv` labels of the records listed there."""
    reference = read_reference(data_dir / REFERENCE_FILE)
    return FolderLabels("reference", [p for p in find_records([data_dir]) if p.stem in reference], reference)


def _read_header_labels(data_dir: Path) -> FolderLabels:
    """The `# Dx:` codes of every readable header, named by the folder's mapping files."""
    paths, labels, failures = [], {}, []
    for header in (p for p in find_records([data_dir]) if p.suffix.lower() == ".hea"):
        try:
            labels[header.stem] = dx_codes(read_header_comments(header))
        except RecordError as exc:
            failures.append((str(header), exc.reason))
            continue
        paths.append(header)
    code_names, scored = dx_mapping(data_dir)
    return FolderLabels("header", paths, labels, failures, True, code_names, scored)


register_label_source("reference", detect=lambda folder: (folder / REFERENCE_FILE).is_file(), read=_read_reference_labels, multilabel=False)
register_label_source("header", detect=None, read=_read_header_labels, multilabel=True)  # any folder: its headers' codes, or none
