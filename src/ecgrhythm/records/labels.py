"""Label sources: CinC 2017 `REFERENCE.csv` (one label per record) and SNOMED-CT codes in WFDB headers.

:func:`read_folder_labels` reads a folder's labels from either, without reading any signal; training
(:func:`ecgrhythm.training.data.load_labelled`) and evaluation both start from it.

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
from pathlib import Path

from ecgrhythm.records.core import RecordError
from ecgrhythm.records.discovery import find_records
from ecgrhythm.records.reference import read_reference
from ecgrhythm.records.wfdb_reader import read_header_comments

__all__ = [
    "FolderLabels",
    "read_folder_labels",
    "CINC2017_CLASSES",
    "detect_label_source",
    "dx_codes",
    "dx_mapping",
    "choose_classes",
    "LABEL_SOURCES",
    "SCORED_MAPPING",
    "UNSCORED_MAPPING",
]

LABEL_SOURCES = ("auto", "reference", "header")
SCORED_MAPPING = "dx_mapping_scored.csv"
UNSCORED_MAPPING = "dx_mapping_unscored.csv"


def detect_label_source(data_dir) -> str:
    """`"reference"` if the folder has a `REFERENCE.csv`, else `"header"` (codes in `# Dx:` comments)."""
    return "reference" if (Path(data_dir) / "REFERENCE.csv").is_file() else "header"


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


@dataclasses.dataclass
class FolderLabels:
    """The labels of a folder's records.


    Attributes:
        source: `"reference"` (`REFERENCE.csv`) or `"header"` (`# Dx:` codes).
        paths: the record files that have labels, in the order of
            :func:`~ecgrhythm.records.find_records` (for header codes: every readable header).
        labels: record name (file stem) to its `REFERENCE.csv` label, or to the
            list of SNOMED-CT codes of its header (empty when it has no `Dx:` line).
        failures: `(path, reason)` of headers that could not be read.
    """

    source: str
    paths: list[Path]
    labels: dict[str, str | list[str]]
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def read_folder_labels(data_dir, source: str = "auto") -> FolderLabels:
    """Read the labels of a folder's records, without reading any signal.


    Args:
        data_dir: folder of records.
        source: `"auto"` (`REFERENCE.csv` if the folder has one, else header
            codes), `"reference"` or `"header"`.


    Returns:
        A :class:`FolderLabels`.


    Raises:
        ValueError: `source` is not one of the label sources.
        RecordError: the folder or its `REFERENCE.csv` cannot be read.
    """
    data_dir = Path(data_dir)
    chosen = detect_label_source(data_dir) if source == "auto" else source
    if chosen not in LABEL_SOURCES[1:]:
        raise ValueError(f"Invalid argument `labels`: expected one of {LABEL_SOURCES}. Received: labels={source!r}")
    if chosen == "reference":
        reference = read_reference(data_dir / "REFERENCE.csv")
        return FolderLabels(chosen, [p for p in find_records([data_dir]) if p.stem in reference], reference)
    paths, labels, failures = [], {}, []
    for header in (p for p in find_records([data_dir]) if p.suffix.lower() == ".hea"):
        try:
            labels[header.stem] = dx_codes(read_header_comments(header))
        except RecordError as exc:
            failures.append((str(header), exc.reason))
            continue
        paths.append(header)
    return FolderLabels(chosen, paths, labels, failures)
