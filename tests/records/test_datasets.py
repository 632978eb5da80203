"""`ecgrhythm.records.download.download` against a local HTTP server laid out like PhysioNet's challenge-2017 training folder."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from memory import peak_memory

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.records import find_records, read_record, read_reference
from ecgrhythm.records.download import DATASETS, DownloadError, download
from ecgrhythm.training.data import load_labelled

N_RECORDS = 6


class _Server:
    """A threaded static file server on 127.0.0.1 that logs the paths it is asked for."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                log.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/training/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def source(cinc2017_dir):
    """The first records of the shared data: `{name: (label, hea bytes, mat bytes)}`."""
    labels = read_reference(cinc2017_dir / "REFERENCE.csv")
    names = [line.strip() for line in (cinc2017_dir / "RECORDS").read_text().splitlines() if line.strip()][:N_RECORDS]
    return {n: (labels[n], (cinc2017_dir / f"{n}.hea").read_bytes(), (cinc2017_dir / f"{n}.mat").read_bytes()) for n in names}


def _physionet_folder(root: Path, source, *, records_text=None, reference="REFERENCE.csv", prefixed_reference=False) -> Path:
    """Copy records into PhysioNet's layout: training/RECORDS lists `A00/A00001`, records in subfolders."""
    training = root / "training"
    rows, listed = [], []
    for name, (label, hea, mat) in source.items():
        sub = training / name[:3]
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{name}.hea").write_bytes(hea)
        (sub / f"{name}.mat").write_bytes(mat)
        listed.append(f"{name[:3]}/{name}")
        rows.append(f"{listed[-1] if prefixed_reference else name},{label}\n")
    (training / "RECORDS").write_text(records_text if records_text is not None else "".join(p + "\n" for p in listed))
    if reference:
        (training / reference).write_text("".join(rows))
    return root


@pytest.fixture
def served(tmp_path, source):
    with _Server(_physionet_folder(tmp_path / "physionet", source)) as server:
        yield server


def test_default_url_is_physionet_training_folder():
    assert DATASETS["cinc2017"] == "https://physionet.org/files/challenge-2017/1.0.0/training/"


def test_download_writes_flat_readable_folder_identical_to_source(served, source, tmp_path):
    dest = tmp_path / "dest"
    calls = []
    result = download("cinc2017", dest, base_url=served.url, progress=lambda done, total: calls.append((done, total)))

    names = list(source)
    assert result.records == names
    assert (result.fetched, result.skipped) == (2 * N_RECORDS, 0)
    assert calls[-1] == (N_RECORDS, N_RECORDS) and len(calls) == N_RECORDS
    for name, (_label, hea, mat) in source.items():
        assert (dest / f"{name}.hea").read_bytes() == hea
        assert (dest / f"{name}.mat").read_bytes() == mat
    assert (dest / "RECORDS").read_text().split() == names
    assert read_reference(dest / "REFERENCE.csv") == {n: v[0] for n, v in source.items()}
    assert sorted(p.name for p in dest.iterdir()) == sorted(["RECORDS", "REFERENCE.csv"] + [f"{n}{s}" for n in names for s in (".hea", ".mat")])

    found = find_records([dest])
    assert [p.name for p in found] == [f"{n}.hea" for n in names]
    record = read_record(found[0])
    assert record.fs == 300.0 and record.n_leads == 1 and record.record_name == names[0]
    data = load_labelled(dest, PreprocessConfig())  # what `ecgrhythm train --data DEST` reads
    assert data.names == names and not data.failures


def test_second_download_skips_complete_files(served, tmp_path):
    dest = tmp_path / "dest"
    download("cinc2017", dest, base_url=served.url, limit=2)
    assert len(served.requests) == 2 + 2 * 2  # RECORDS, REFERENCE.csv, 2 records x (.hea, .mat)
    (dest / "RECORDS").unlink()
    served.requests.clear()

    result = download("cinc2017", dest, base_url=served.url, limit=4)  # resumes: only the two new records are fetched
    assert (result.fetched, result.skipped) == (4, 4)
    fetched = sorted(p for p in served.requests if p.endswith((".hea", ".mat")))
    assert fetched == sorted(f"/training/A00/{n}{s}" for n in result.records[2:] for s in (".hea", ".mat"))
    served.requests.clear()

    again = download("cinc2017", dest, base_url=served.url, limit=4)
    assert (again.fetched, again.skipped) == (0, 8)
    assert served.requests == ["/training/RECORDS", "/training/REFERENCE.csv"]
    assert (dest / "RECORDS").read_text().split() == result.records


def test_limit_fetches_only_first_records(served, source, tmp_path):
    result = download("cinc2017", tmp_path / "dest", base_url=served.url, limit=3)
    assert result.records == list(source)[:3]
    assert len(list((tmp_path / "dest").glob("*.mat"))) == 3
    assert list(read_reference(tmp_path / "dest" / "REFERENCE.csv")) == list(source)[:3]


def test_missing_file_error_names_url_and_leaves_no_partial_file(tmp_path, source):
    root = _physionet_folder(tmp_path / "physionet", source)
    victim = list(source)[2]
    (root / "training" / victim[:3] / f"{victim}.mat").unlink()
    dest = tmp_path / "dest"
    with _Server(root) as server, pytest.raises(DownloadError) as info:
        download("cinc2017", dest, base_url=server.url, workers=1)
    url = f"{server.url}{victim[:3]}/{victim}.mat"
    assert info.value.url == url and info.value.status == 404
    assert url in str(info.value) and "404" in str(info.value)
    assert not (dest / f"{victim}.mat").exists()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert not (dest / "RECORDS").exists()  # the index is written only when every record is there


def test_unreachable_server_error_names_url(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/training/"
    with pytest.raises(DownloadError, match=rf"^{url}RECORDS: cannot reach the server"):
        download("cinc2017", tmp_path / "dest", base_url=url, timeout=5)


def test_reference_v3_used_when_reference_csv_absent_and_subpaths_stripped(tmp_path, source):
    root = _physionet_folder(tmp_path / "physionet", source, reference="REFERENCE-v3.csv", prefixed_reference=True)
    with _Server(root) as server:
        download("cinc2017", tmp_path / "dest", base_url=server.url, limit=2)
    assert read_reference(tmp_path / "dest" / "REFERENCE.csv") == {n: v[0] for n, v in list(source.items())[:2]}


@pytest.mark.parametrize("bad", ["../A00001", "A00/../../A00001", "/etc/A00001", "A00\\..\\A00001", "A00//A00001", ".hidden"])
def test_traversal_in_index_is_refused_before_any_record_is_fetched(tmp_path, source, bad):
    root = _physionet_folder(tmp_path / "physionet", source, records_text=f"A00/A00001\n{bad}\n")
    dest = tmp_path / "out" / "dest"
    with _Server(root) as server:
        with pytest.raises(DownloadError, match="unsafe record path") as info:
            download("cinc2017", dest, base_url=server.url)
        assert server.requests == ["/training/RECORDS"]
    assert info.value.url.endswith("/training/RECORDS") and repr(bad) in str(info.value)
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["dest"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "cinc2099"}, "`name`"),
        ({"limit": 0}, "`limit`"),
        ({"workers": 0}, "`workers`"),
        ({"base_url": "file:///etc/"}, "`base_url`"),
        ({"max_file_bytes": 0}, "`max_file_bytes`"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, kwargs, match):
    args = {"name": "cinc2017", **kwargs}
    with pytest.raises(ValueError, match=match):
        download(args.pop("name"), tmp_path / "dest", **args)


def test_file_over_the_size_cap_is_refused_and_nothing_of_it_kept(served, source, tmp_path):
    dest = tmp_path / "dest"
    first = next(iter(source))
    assert len(source[first][2]) > 5000  # a CinC 2017 .mat is about 18 kB; headers, RECORDS and labels are smaller
    with pytest.raises(DownloadError, match="larger than the limit of 5000 bytes") as info:
        download("cinc2017", dest, base_url=served.url, workers=1, max_file_bytes=5000)
    assert info.value.url == f"{served.url}{first[:3]}/{first}.mat"
    assert {p.suffix for p in dest.iterdir()} == {".hea"}  # no signal file, partial or temporary file, or index


def test_download_streams_each_file_instead_of_holding_it(tmp_path, source):
    root = _physionet_folder(tmp_path / "physionet", source)
    first = next(iter(source))
    big = np.random.default_rng(0).bytes(16 << 20)  # a 16 MiB signal file (nothing checks that it is a record)
    (root / "training" / first[:3] / f"{first}.mat").write_bytes(big)
    dest = tmp_path / "dest"
    with _Server(root) as server:
        with peak_memory() as peak:
            download("cinc2017", dest, base_url=server.url, limit=1, workers=1)
    assert (dest / f"{first}.mat").read_bytes() == big
    assert peak[0] < 4 << 20
