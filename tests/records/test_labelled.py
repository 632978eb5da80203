"""Labelled folders: one label reader for training and evaluation, on real CinC 2017 and CinC 2021 records."""

import shutil

import numpy as np
import pytest

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.records import RecordError, read_record, read_reference
from ecgrhythm.records.labels import dx_codes, read_folder_labels
from ecgrhythm.training.data import load_labelled

CINC2017_NAMES = ["A00001", "A00002", "A00003", "A00004", "A00005"]


def _reference_folder(tmp_path, cinc2017_dir, labelled, unlabelled=()):
    folder = tmp_path / "data"
    folder.mkdir()
    reference = read_reference(cinc2017_dir / "REFERENCE.csv")
    for name in [*labelled, *unlabelled]:
        for suffix in (".hea", ".mat"):
            shutil.copy(cinc2017_dir / f"{name}{suffix}", folder)
    (folder / "REFERENCE.csv").write_text("".join(f"{n},{reference[n]}\n" for n in labelled))
    return folder, reference


def test_reference_labels_cover_the_listed_records_only(tmp_path, cinc2017_dir):
    folder, reference = _reference_folder(tmp_path, cinc2017_dir, CINC2017_NAMES[:4], unlabelled=CINC2017_NAMES[4:])
    labels = read_folder_labels(folder)
    assert labels.source == "reference" and not labels.failures
    assert [p.name for p in labels.paths] == [f"{n}.hea" for n in CINC2017_NAMES[:4]]
    assert labels.labels == {n: reference[n] for n in CINC2017_NAMES[:4]}
    (folder / "REFERENCE.csv").unlink()
    assert read_folder_labels(folder).source == "header"  # "auto" without a REFERENCE.csv
    with pytest.raises(RecordError, match="REFERENCE.csv"):
        read_folder_labels(folder, "reference")
    with pytest.raises(ValueError, match="Invalid argument `labels`"):
        read_folder_labels(folder, "csv")


def test_header_labels_are_the_dx_codes_and_broken_headers_are_failures(tmp_path, cinc2021_dir):
    folder = tmp_path / "data"
    folder.mkdir()
    names = ["E07500", "E07501", "E07502"]
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(cinc2021_dir / f"{name}{suffix}", folder)
    (folder / "E07502.hea").write_bytes(b"E07502 12 500\0binary")
    labels = read_folder_labels(folder)
    assert labels.source == "header" and [p.stem for p in labels.paths] == names[:2]
    for name in names[:2]:
        codes = dx_codes(read_record(cinc2021_dir / f"{name}.hea").comments)
        assert codes and labels.labels[name] == codes  # the same codes as the full WFDB reader finds
    assert labels.failures == [(str(folder / "E07502.hea"), "the header file is binary, not a WFDB text header")]
    # Training reads the same labels, and lists the broken header among its failures.
    data = load_labelled(folder, PreprocessConfig(fs=100.0), unlabelled="keep")
    assert data.names == names[:2] and data.failures == labels.failures
    assert data.multilabel and data.targets.shape == (2, len(data.classes)) and data.targets.sum(axis=1).min() >= 1


def test_load_labelled_reference_records_and_labels_outside_the_classes(tmp_path, cinc2017_dir):
    folder, reference = _reference_folder(tmp_path, cinc2017_dir, CINC2017_NAMES)
    data = load_labelled(folder, PreprocessConfig(fs=100.0), classes=("N", "A", "O", "~"))
    assert data.names == CINC2017_NAMES and not data.multilabel
    np.testing.assert_array_equal(data.targets, ["NAO~".index(reference[n]) for n in CINC2017_NAMES])
    only_normal = load_labelled(folder, PreprocessConfig(fs=100.0), classes=("N",))
    assert only_normal.names == [n for n in CINC2017_NAMES if reference[n] == "N"]
    assert len(only_normal.failures) == sum(reference[n] != "N" for n in CINC2017_NAMES)
    assert all("is not one of ['N']" in reason for _, reason in only_normal.failures)
