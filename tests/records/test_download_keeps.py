"""`download` keeps what a finished download holds, and checks labels as it reads and writes them (no network: the
fetch function is replaced by one serving real CinC 2017 files from memory)."""

from __future__ import annotations

import pytest

from ecgrhythm.records import RecordError, read_reference
from ecgrhythm.records import download as download_module
from ecgrhythm.records.download import DownloadError, download
from ecgrhythm.records.reference import write_reference

BASE = "https://mirror.invalid/training/"
N_RECORDS = 4


@pytest.fixture
def server(monkeypatch, cinc2017_dir):
    """`{url: bytes}` laid out like PhysioNet's training folder, served by the patched fetch; the URLs asked are logged."""
    labels = read_reference(cinc2017_dir / "REFERENCE.csv")
    names = list(labels)[:N_RECORDS]
    files = {BASE + "RECORDS": "".join(f"A00/{n}\n" for n in names).encode()}
    files[BASE + "REFERENCE.csv"] = "".join(f"{n},{labels[n]}\n" for n in names).encode()
    for n in names:
        for suffix in (".hea", ".mat"):
            files[f"{BASE}A00/{n}{suffix}"] = (cinc2017_dir / f"{n}{suffix}").read_bytes()
    asked = []

    def fetch(url, timeout, max_bytes, sink):
        asked.append(url)
        if url not in files:
            raise DownloadError(url, "the server answered HTTP 404 Not Found", status=404)
        sink.write(files[url])

    monkeypatch.setattr(download_module, "_fetch", fetch)
    return files, names, {n: labels[n] for n in names}, asked


def test_smaller_limit_over_a_complete_folder_keeps_every_record(server, tmp_path):
    files, names, labels, asked = server
    dest = tmp_path / "dest"
    download("cinc2017", dest, base_url=BASE)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    asked.clear()

    result = download("cinc2017", dest, base_url=BASE, limit=1)

    assert result.records == names and (result.fetched, result.skipped) == (0, 2)
    assert asked == [BASE + "RECORDS", BASE + "REFERENCE.csv"]  # no record fetched again
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before  # RECORDS and REFERENCE.csv not shrunk
    assert read_reference(dest / "REFERENCE.csv") == labels


def test_a_larger_limit_adds_to_what_is_held(server, tmp_path):
    _, names, labels, _ = server
    dest = tmp_path / "dest"
    download("cinc2017", dest, base_url=BASE, limit=3)
    (dest / "RECORDS").unlink()  # an interrupted run: REFERENCE.csv still lists what is there
    assert download("cinc2017", dest, base_url=BASE, limit=2).records == names[:3]
    assert download("cinc2017", dest, base_url=BASE).records == names
    assert (dest / "RECORDS").read_text().split() == names and read_reference(dest / "REFERENCE.csv") == labels


@pytest.mark.parametrize("label", ['=HYPERLINK("http://evil.invalid","N")', "N;A", "+1", "N\tA", "@SUM(A1)"])
def test_label_that_is_not_a_class_name_is_refused_and_nothing_written(server, tmp_path, label):
    files, names, _, _ = server
    quoted = '"' + label.replace('"', '""') + '"'  # one CSV field, as a spreadsheet writes it
    files[BASE + "REFERENCE.csv"] = files[BASE + "REFERENCE.csv"].replace(b",N\n", f",{quoted}\n".encode(), 1)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match="is not a class name") as info:
        download("cinc2017", dest, base_url=BASE)
    assert info.value.url == BASE + "REFERENCE.csv" and "line " in str(info.value)
    assert not (dest / "REFERENCE.csv").exists() and not (dest / "RECORDS").exists()


def test_multilabel_is_written_quoted_and_read_back(server, tmp_path):
    files, names, labels, _ = server
    files[BASE + "REFERENCE.csv"] = f'{names[0]},"N,A"\n'.encode() + files[BASE + "REFERENCE.csv"].split(b"\n", 1)[1]
    dest = tmp_path / "dest"
    download("cinc2017", dest, base_url=BASE)
    assert (dest / "REFERENCE.csv").read_text().splitlines()[0] == f'{names[0]},"N,A"'
    assert read_reference(dest / "REFERENCE.csv") == {**labels, names[0]: "N,A"}


def test_reference_file_with_a_formula_is_refused_on_read_and_write(tmp_path, cinc2017_dir):
    labels = read_reference(cinc2017_dir / "REFERENCE.csv")
    first = next(iter(labels))
    path = tmp_path / "REFERENCE.csv"
    path.write_text((cinc2017_dir / "REFERENCE.csv").read_text().replace(f"{first},{labels[first]}", f"{first},=1+1"))
    with pytest.raises(RecordError, match=r"line 1: the label '=1\+1' is not a class name"):
        read_reference(path)
    with pytest.raises(ValueError, match=rf"record '{first}': the label '=cmd\|' is not a class name"):
        write_reference(tmp_path / "out.csv", {first: "=cmd|"})
    assert not (tmp_path / "out.csv").exists()
