import pytest

from ecgrhythm.records import find_records, read_record
from ecgrhythm.records.labels import choose_classes, detect_label_source, dx_codes, dx_mapping


def test_detects_the_label_source(cinc2017_dir, cinc2021_dir):
    assert detect_label_source(cinc2017_dir) == "reference"
    assert detect_label_source(cinc2021_dir) == "header"


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
