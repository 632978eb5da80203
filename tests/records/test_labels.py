import json
import shutil

import pytest

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.records import RecordError, find_records, read_record
from ecgrhythm.records.labels import choose_classes, choose_label_source, dx_codes, dx_mapping
from ecgrhythm.training.data import load_labelled


def test_detects_the_label_source(cinc2017_dir, cinc2021_dir):
    assert choose_label_source(cinc2017_dir).name == "reference"
    assert choose_label_source(cinc2021_dir).name == "header"


def test_reads_dx_codes_from_a_real_header(cinc2021_dir):
    record = read_record(cinc2021_dir / "E07500.hea")
    assert dx_codes(record.comments) == ["67741000119109", "426177001"]
    assert dx_codes(("Age: 40", "Sex: F")) == []


def test_mapping_names_codes_by_abbreviation(cinc2021_dir):
    names, scored = dx_mapping(cinc2021_dir)
    assert names["164889003"] == "AF"
    assert names["426177001"] == "SB"
    assert "164889003" in scored and "67741000119109" not in scored
    assert len(scored) == 30


def test_class_choices(cinc2021_dir):
    names, scored = dx_mapping(cinc2021_dir)
    codes = [dx_codes(read_record(p).comments) for p in find_records([cinc2021_dir]) if p.suffix == ".hea"]
    every = choose_classes(codes, "all", names, scored)
    only_scored = choose_classes(codes, "scored", names, scored)
    assert set(only_scored) < set(every)
    assert every[0] == names["427084000"]  # the most frequent code of the sample (23 records)
    assert choose_classes(codes, ["SB", "427084000"], names, scored) == ("SB", names["427084000"])
    with pytest.raises(ValueError, match="occur in no record"):
        choose_classes(codes, ["NOT_A_CLASS"], names, scored)


def test_label_sources_are_a_registry(tmp_path, cinc2017_dir, monkeypatch):
    import ecgrhythm.records.labels as labels

    monkeypatch.setattr(labels, "_SOURCES", dict(labels._SOURCES))  # registrations end with the test
    assert labels.label_source_names() == ("auto", "reference", "header")
    folder = tmp_path / "data"
    folder.mkdir()
    for suffix in (".hea", ".mat"):
        shutil.copy(cinc2017_dir / f"A00001{suffix}", folder)

    def read_json(data_dir):
        names = json.loads((data_dir / "labels.json").read_text())
        return labels.FolderLabels("", [p for p in find_records([data_dir]) if p.stem in names], names)

    labels.register_label_source("json", detect=lambda d: (d / "labels.json").is_file(), read=read_json, multilabel=False)
    assert labels.label_source_names() == ("auto", "reference", "header", "json")
    assert labels.choose_label_source(folder).name == "header"  # the header codes take any folder, after every detection
    (folder / "labels.json").write_text('{"A00001": "N"}')
    read = labels.read_folder_labels(folder)
    assert (read.source, read.multilabel, read.labels, [p.name for p in read.paths]) == ("json", False, {"A00001": "N"}, ["A00001.hea"])
    assert load_labelled(folder, PreprocessConfig()).source == "json"  # what training records as the model's label source
    assert labels.read_folder_labels(folder, multilabel=True).source == "header"  # a multi-label model reads header codes
    with pytest.raises(ValueError, match=r"expected one of \('auto', 'reference', 'header', 'json'\). Received: labels='csv'"):
        labels.read_folder_labels(folder, "csv")
    with pytest.raises(ValueError, match="Invalid argument `name`"):
        labels.register_label_source("json", detect=None, read=read_json, multilabel=False)
    (folder / "labels.json").unlink()
    with pytest.raises(RecordError, match="'REFERENCE.csv' not found"):  # no single-label source detects it: the first says what is missing
        labels.read_folder_labels(folder, multilabel=False)
