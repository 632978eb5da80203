"""The service's AF episodes, AF burden and lead choice on real cpsc2021 records."""

from __future__ import annotations

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

from ecgrhythm.episodes.finder import record_episodes  # noqa: E402
from ecgrhythm.records import read_record  # noqa: E402
from ecgrhythm.service.app import background_server, create_app  # noqa: E402


@pytest.fixture(scope="module")
def server(tiny_model_dir, cpsc2021_dir):
    app = create_app(tiny_model_dir, token="", examples_dir=cpsc2021_dir)
    with background_server(app) as url:
        yield url, app.state.service.classifier


def _post(url, header, **fields):
    files = [("files", (p.name, p.read_bytes())) for p in (header, header.with_suffix(".dat"))]
    with httpx.Client(base_url=url, timeout=300) as client:
        return client.post("/v1/classify", files=files, data=fields)


def test_the_api_returns_the_episodes_the_burden_and_the_lead(server, cpsc2021_dir):
    url, clf = server
    header = cpsc2021_dir / "data_101_6.hea"  # 2 leads (I, II), paroxysmal AF
    record = read_record(header)
    for lead, name in ((None, "I"), ("II", "II"), ("1", "II")):
        response = _post(url, header, **({"lead": lead} if lead else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        expected = record_episodes(clf, record, lead)
        assert body["lead"] == name == expected.lead
        starts, ends = [e["start_s"] for e in body["episodes"]], [e["end_s"] for e in body["episodes"]]
        assert starts[0] == 0 and ends[-1] == pytest.approx(record.duration_s, abs=1e-3) and starts[1:] == ends[:-1]  # covering the record
        assert [e["label"] for e in body["episodes"]] == [e.label for e in expected.episodes]
        np.testing.assert_allclose(starts, [e.start_s for e in expected.episodes], atol=1e-3)
        assert body["af_burden"] == pytest.approx(expected.af_burden, abs=1e-4)
        probs = clf.predict_prepared([clf.prepare(record, lead)])[0]
        np.testing.assert_allclose(list(body["probabilities"].values()), probs, atol=1e-6)


def test_an_unknown_lead_is_refused_naming_it(server, cpsc2021_dir):
    response = _post(server[0], cpsc2021_dir / "data_101_6.hea", lead="V5")
    assert response.status_code == 422
    assert "data_101_6" in response.json()["detail"] and "no lead 'V5': the record has ['I', 'II']" in response.json()["detail"]


def test_a_long_upload_needs_a_raised_limit(tiny_model_dir, cpsc2021_dir):
    header = cpsc2021_dir / "data_84_1.hea"  # 8.7 minutes, 2 leads: about 420 kB
    size = sum(p.stat().st_size for p in (header, header.with_suffix(".dat")))
    for limit, status in ((size // 2, 413), (2 * size, 200)):
        app = create_app(tiny_model_dir, token="", max_upload_bytes=limit)
        with background_server(app) as url:
            response = _post(url, header)
        assert response.status_code == status, response.text


def test_a_long_upload_gets_the_answer_of_its_episodes_and_its_picture_and_a_short_one_the_networks(server, cpsc2021_dir):
    import base64
    import io

    from PIL import Image

    from ecgrhythm.episodes.answers import LongRecordAnswer, record_answer

    url, clf = server
    rule = LongRecordAnswer(clf)
    for name, long in (("data_101_8", True), ("data_92_12", False)):  # 121 s and 49 s, both paroxysmal AF
        header = cpsc2021_dir / f"{name}.hea"
        record = read_record(header)
        assert rule.applies(record.duration_s) is long
        body = _post(url, header).json()
        probs = np.array([body["probabilities"][c] for c in body["classes"]])
        one = clf.choose_lead(record)[0]
        found = rule.agreeing(record_episodes(clf, one), one)  # what `ecgrhythm episodes` gives
        assert (body["label"] == "A") == (found.record_class != "non-AF")  # the label and the episodes agree
        assert [e["label"] for e in body["episodes"]] == [e.label for e in found.episodes]
        assert body["af_burden"] == pytest.approx(found.af_burden, abs=1e-4)
        if long:
            expected = record_answer(probs, body["classes"], found)
            assert (body["label"], body["record_class"]) == (expected.label, expected.record_class)
            prefix = "data:image/png;base64,"
            assert body["picture"].startswith(prefix)
            with Image.open(io.BytesIO(base64.b64decode(body["picture"][len(prefix) :]))) as image:  # the picture of `episodes --plot`
                assert image.format == "PNG" and image.size == (1600, 700)
        else:
            assert body["label"] == body["classes"][int(np.argmax(probs))] and body["record_class"] is None
            assert body["picture"] is None
