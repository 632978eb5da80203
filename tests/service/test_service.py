"""The HTTP service over real HTTP on loopback, with real CinC 2017 records and the tiny model."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

from ecgrhythm.records import read_record, read_reference  # noqa: E402
from ecgrhythm.service.app import TOKEN_ENV, background_server, create_app  # noqa: E402
from ecgrhythm.service.server import serve  # noqa: E402

LIMIT = 256 * 1024
RECORDS = ("A00001", "A00002", "A00004")  # 30 s each, so two compiled shapes in all


@pytest.fixture(scope="module")
def upload_tmp(tmp_path_factory):
    """The temporary folder the server's uploads go to (tempfile's default during this module)."""
    folder = tmp_path_factory.mktemp("server-tmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "tempdir", str(folder))
        yield folder


@pytest.fixture(scope="module")
def server(tiny_model_dir, cinc2017_dir, upload_tmp):
    """`(base_url, app)` of a server with the tiny model, no token and a 256 KiB limit."""
    app = create_app(tiny_model_dir, token="", max_upload_bytes=LIMIT, examples_dir=cinc2017_dir)
    with background_server(app) as url:
        yield url, app


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server[0], timeout=120) as c:
        yield c


@pytest.fixture()
def clf(server):
    """The server's own loaded classifier, to compare with `classify_files`."""
    return server[1].state.service.classifier


def _files(*paths, names=None):
    names = names or [Path(p).name for p in paths]
    return [("files", (name, Path(p).read_bytes())) for name, p in zip(names, paths)]


def _assert_matches(result, clf, path, fs=None):
    from ecgrhythm.inference.streaming import classify_files

    expected, failures = classify_files(clf, [path], fs=fs)
    assert failures == []
    assert result["record"] == expected.names[0]
    assert result["label"] == expected.labels[0]
    assert list(result["probabilities"]) == clf.classes_
    np.testing.assert_allclose(list(result["probabilities"].values()), expected.probabilities[0], rtol=0, atol=1e-6)


def _assert_segments_cover(result):
    segments = result["segments"]
    assert segments[0]["start_s"] == 0
    assert segments[-1]["end_s"] == pytest.approx(result["duration_s"], abs=1e-3)
    for a, b in zip(segments, segments[1:]):
        assert a["end_s"] == b["start_s"]
    for s in segments:
        probs = s["probabilities"]
        assert sum(probs.values()) == pytest.approx(1, abs=1e-4)
        assert s["label"] == max(probs, key=probs.get)
        assert 5 <= s["end_s"] - s["start_s"] <= 15


def test_health(client, clf, tiny_model_dir):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model": tiny_model_dir.name, "classes": clf.classes_, "max_upload_bytes": LIMIT}


def test_wfdb_upload_matches_the_classifier(client, clf, cinc2017_dir):
    header, signal = cinc2017_dir / "A00001.hea", cinc2017_dir / "A00001.mat"
    r = client.post("/v1/classify", files=_files(header, signal))
    assert r.status_code == 200, r.text
    result = r.json()
    _assert_matches(result, clf, header)
    record = read_record(header)
    assert result["fs"] == record.fs and result["duration_s"] == pytest.approx(record.duration_s)
    _assert_segments_cover(result)
    assert len(result["segments"]) == 3
    # A segment is the model's prediction for that window of the prepared signal.
    prepared = clf.prepare(record)
    seg = result["segments"][1]
    a, b = (round(t * clf.preprocess_.fs) for t in (seg["start_s"], seg["end_s"]))
    np.testing.assert_allclose(list(seg["probabilities"].values()), clf.predict_prepared([prepared[a:b]])[0], atol=1e-5)
    # The drawing signal: the record in mV, at 250 Hz.
    drawn = result["signal"]
    assert drawn["fs"] == pytest.approx(250) and drawn["leads"] == list(record.sig_name)
    values = np.asarray(drawn["values"][0])
    assert len(values) == pytest.approx(record.duration_s * 250, abs=2)
    reference = np.interp(np.arange(len(values)) / drawn["fs"], np.arange(record.n_samples) / record.fs, record.signal[:, 0])
    assert np.corrcoef(values, reference)[0, 1] > 0.95


def test_bare_mat_with_fs_matches_the_classifier(client, clf, cinc2017_dir, tmp_path):
    bare = tmp_path / "A00002.mat"
    shutil.copy(cinc2017_dir / "A00002.mat", bare)  # alone, without its header
    r = client.post("/v1/classify", files=_files(bare), data={"fs": "300"})
    assert r.status_code == 200, r.text
    _assert_matches(r.json(), clf, bare, fs=300)
    _assert_segments_cover(r.json())


def test_csv_made_from_a_record_matches_the_classifier(client, clf, cinc2017_dir, tmp_path):
    record = read_record(cinc2017_dir / "A00004.hea")
    path = tmp_path / "a4.csv"
    np.savetxt(path, record.signal, fmt="%.4f", delimiter=",", header="ecg", comments="")
    r = client.post("/v1/classify", files=_files(path), data={"fs": "300"})
    assert r.status_code == 200, r.text
    result = r.json()
    _assert_matches(result, clf, path, fs=300)
    assert result["record"] == "a4" and result["signal"]["leads"] == ["ecg"]
    _assert_segments_cover(result)


def test_edf_upload_needs_no_fs_and_matches_the_classifier(client, clf, cinc2017_dir, tmp_path):
    from pyedflib import highlevel

    record = read_record(cinc2017_dir / "A00004.hea")
    n = record.n_samples // 300 * 300  # EDF holds whole data records of 1 s
    path = tmp_path / "a4.edf"
    header = highlevel.make_signal_header("ECG", "uV", 300, -10_000, 10_000, -32768, 32767)
    highlevel.write_edf(str(path), [record.signal[:n, 0].astype(np.float64) * 1000], [header])
    r = client.post("/v1/classify", files=_files(path))  # the file carries its rate: no form field fs
    assert r.status_code == 200, r.text
    _assert_matches(r.json(), clf, path)


def test_missing_fs_is_refused_naming_the_file(client, cinc2017_dir):
    r = client.post("/v1/classify", files=_files(cinc2017_dir / "A00002.mat"))
    assert r.status_code == 422
    assert r.json()["detail"].startswith("A00002.mat: ") and "'fs'" in r.json()["detail"]


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("noise.mat", os.urandom(3000), 422),
        ("noise.npy", b"\x93NUMPY garbage", 422),
        ("short.csv", b"0.1\n0.2\n0.3\n", 422),
        ("words.csv", b"a,b\nx,y\n", 422),
        ("notes.txt", b"hello", 400),
    ],
)
def test_garbage_is_refused_with_the_file_name(client, upload_tmp, name, content, status):
    r = client.post("/v1/classify", files=[("files", (name, content))], data={"fs": "300"})
    assert r.status_code == status
    detail = r.json()["detail"]
    assert detail.startswith(f"{name}: ")
    assert str(upload_tmp) not in detail and "ecgrhythm-upload" not in detail and "Traceback" not in r.text


def test_bad_requests(client, cinc2017_dir):
    header = cinc2017_dir / "A00001.hea"
    cases = {
        "no file": ({"fs": "300"}, [], 400, "no file"),
        "two headers": ({}, _files(header, cinc2017_dir / "A00002.hea"), 400, "one record at a time"),
        "two bare files": ({"fs": "300"}, _files(cinc2017_dir / "A00001.mat", cinc2017_dir / "A00002.mat"), 400, "no .hea header"),
        "bad fs": ({"fs": "fast"}, _files(cinc2017_dir / "A00001.mat"), 422, "fs:"),
        "dat alone": ({"fs": "300"}, [("files", ("x.dat", b"\0" * 4000))], 422, "x.dat: "),
        "header without signal": ({}, _files(header), 422, "A00001.hea: "),
        "fs as a file": ({}, [*_files(cinc2017_dir / "A00001.mat"), ("fs", ("fs.txt", b"300"))], 400, "the form field 'fs' must be text, not a file"),
        "lead as a file": ({}, [*_files(header, cinc2017_dir / "A00001.mat"), ("lead", ("I.txt", b"I"))], 400, "the form field 'lead' must be text"),
    }
    for what, (data, files, status, text) in cases.items():
        r = client.post("/v1/classify", files=files or None, data=data)
        assert (r.status_code, text in r.json()["detail"]) == (status, True), (what, r.text)


def test_bodies_the_form_parser_would_misread_are_refused_with_their_reason(client, cinc2017_dir):
    request = client.build_request("POST", "/v1/classify", files=_files(cinc2017_dir / "A00001.hea", cinc2017_dir / "A00001.mat"))
    body, content_type = request.read(), request.headers["content-type"]
    cut = client.post("/v1/classify", content=body[: len(body) // 2], headers={"content-type": content_type})  # no closing boundary
    assert cut.status_code == 400 and "no closing boundary" in cut.json()["detail"], cut.text
    packed = client.post("/v1/classify", content=gzip.compress(body), headers={"content-type": content_type, "content-encoding": "gzip"})
    assert packed.status_code == 415 and "Content-Encoding: gzip" in packed.json()["detail"], packed.text
    whole = client.post("/v1/classify", content=body + b"an epilogue\r\n" * 500, headers={"content-type": content_type})
    assert whole.status_code == 200 and whole.json()["record"] == "A00001"  # text after the closing boundary is allowed
    boundary = content_type.split("boundary=")[1]
    shouted = f"Multipart/Form-Data; BOUNDARY={boundary}"  # header names and values as any client may case them
    cut = client.post("/v1/classify", content=body[: len(body) // 2], headers={"content-type": shouted})
    assert cut.status_code == 400 and "no closing boundary" in cut.json()["detail"], cut.text
    spaced = f"multipart/form-data; boundary={boundary} ; charset=utf-8"
    assert client.post("/v1/classify", content=body, headers={"content-type": spaced}).status_code == 200


def test_file_names_are_sanitised(client, tmp_path):
    r = client.post("/v1/classify", files=[("files", ("../../escape.csv", b"1\n2\n"))])
    assert r.status_code == 422 and r.json()["detail"].startswith("escape.csv: ")
    r = client.post("/v1/classify", files=[("files", ("..", b"1\n2\n"))], data={"fs": "300"})
    assert r.status_code == 400 and "not usable" in r.json()["detail"]


class _Evil:
    """Unpickling this runs `os.mkdir(marker)`: the server must never do it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_hostile_npy_is_refused_and_never_unpickled(client, tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Evil(marker), 1.0], dtype=object), allow_pickle=True)
    r = client.post("/v1/classify", files=_files(path), data={"fs": "300"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("evil.npy: ") and "object" in r.json()["detail"]
    assert not marker.exists()


def test_upload_over_the_limit_is_refused(client, cinc2017_dir):
    big = [("files", ("big.csv", b"0.0\n" * (LIMIT // 4 + 100)))]
    r = client.post("/v1/classify", files=big, data={"fs": "300"})
    assert r.status_code == 413 and str(LIMIT) in r.json()["detail"]
    # Without a Content-Length (chunked), the body is counted as it arrives.
    boundary = "ecgrhythmtestboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.csv"\r\n\r\n'.encode()

    def chunks():
        yield head
        for _ in range(LIMIT // 16384 + 8):
            yield b"0.0\n" * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/v1/classify", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and r.json()["detail"].startswith("the upload is larger")
    # The server still works.
    assert client.get("/health").status_code == 200


def test_examples_list_and_classify(client, clf, cinc2017_dir):
    examples = client.get("/v1/examples").json()["examples"]
    reference = read_reference(cinc2017_dir / "REFERENCE.csv")
    assert 1 <= len(examples) <= 8
    assert all(ex["reference"] == reference[ex["name"]] for ex in examples)
    assert len({ex["reference"] for ex in examples}) == len(set(reference.values()))  # every class shown
    name = "A00004" if any(ex["name"] == "A00004" for ex in examples) else examples[0]["name"]
    r = client.get(f"/v1/examples/{name}")
    assert r.status_code == 200, r.text
    _assert_matches(r.json(), clf, cinc2017_dir / f"{name}.hea")
    assert r.json()["reference"] == reference[name]
    r = client.get("/v1/examples/A00003")  # a real record, but not one of the listed examples
    assert r.status_code == 404 and examples[0]["name"] in r.json()["detail"]
    assert client.get("/v1/examples/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_concurrent_requests_all_succeed(server, cinc2017_dir):
    url = server[0]
    results, errors = [], []

    def worker():
        try:
            with httpx.Client(base_url=url, timeout=120) as c:
                results.append(c.get("/v1/examples/A00001").json()["probabilities"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 4
    assert all(r == results[0] for r in results)


def test_internal_errors_are_json_without_internals(client, clf, monkeypatch):
    def broken(signals):
        raise RuntimeError("secret detail at /srv/internal/path")

    monkeypatch.setattr(clf, "predict_prepared", broken)
    r = client.get("/v1/examples/A00001")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert "detail" in r.json() and "secret" not in r.text and "Traceback" not in r.text


def test_uploads_never_stay_on_disk(client, server, cinc2017_dir, upload_tmp, monkeypatch):
    service = server[1].state.service
    seen = []
    original = service.classify_path

    def spy(path, fs, **kwargs):
        seen.append(Path(path))
        assert Path(path).is_file()  # the upload is there while it is classified
        return original(path, fs, **kwargs)

    monkeypatch.setattr(service, "classify_path", spy)
    r = client.post("/v1/classify", files=_files(cinc2017_dir / "A00001.hea", cinc2017_dir / "A00001.mat"))
    assert r.status_code == 200
    r = client.post("/v1/classify", files=[("files", ("bad.csv", b"x\n"))], data={"fs": "300"})
    assert r.status_code == 422
    assert len(seen) == 2 and all(upload_tmp in p.parents for p in seen)
    assert not any(p.exists() or p.parent.exists() for p in seen)
    assert list(upload_tmp.iterdir()) == []


def test_page_and_assets_are_served_from_the_server_only(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="trace"' in r.text and 'role="alert"' in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
        a = client.get(asset)
        assert a.status_code == 200, asset
        if not asset.endswith(".svg"):
            assert not re.search(r"https?://", a.text), f"{asset} refers to another site"
    assert client.get("/static/../service.py").status_code == 404


def test_token_protects_everything_but_health(tiny_model_dir, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    app = create_app(tiny_model_dir, examples_dir=Path("/nonexistent"))  # token from the environment
    with background_server(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic from-env"}):
            r = c.get("/v1/examples", headers=headers)
            assert r.status_code == 401 and "token" in r.json()["detail"], headers
            assert r.headers["www-authenticate"] == "Bearer"
        r = c.post("/v1/classify", files=[("files", ("a.csv", b"1\n" * 1000))], data={"fs": "300"})
        assert r.status_code == 401
        r = c.get("/v1/examples", headers={"Authorization": "Bearer from-env"})
        assert r.status_code == 200 and r.json() == {"examples": []}
        assert c.get("/").status_code == 200  # the page itself holds no data; it asks for the token


def test_serve_refuses_a_folder_without_a_model(tmp_path):
    with pytest.raises(ValueError, match="not a complete model folder"):
        serve("127.0.0.1", 0, tmp_path, None)


def test_a_model_with_the_rr_channel_is_served_as_it_classifies(tiny_rr_model_dir, cinc2017_dir, upload_tmp):
    app = create_app(tiny_rr_model_dir, token="", max_upload_bytes=LIMIT)
    header = cinc2017_dir / "A00004.hea"
    with background_server(app) as url, httpx.Client(base_url=url, timeout=120) as c:
        r = c.post("/v1/classify", files=_files(header, cinc2017_dir / "A00004.mat"))
        rr = app.state.service.classifier  # loaded at startup
    assert r.status_code == 200, r.text
    assert rr.n_channels_ == 2
    _assert_matches(r.json(), rr, header)
    _assert_segments_cover(r.json())
