"""The page in a real browser: Debian's Chromium driven by Playwright, against a loopback server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium package (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed (pip install -e .[test])")

from ecgrhythm.service.app import background_server, create_app  # noqa: E402


@pytest.fixture(scope="module")
def base_url(tiny_model_dir, cinc2017_dir):
    app = create_app(tiny_model_dir, token="", examples_dir=cinc2017_dir)
    with background_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, base_url):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    outside = []
    page.on("request", lambda req: outside.append(req.url) if not req.url.startswith((base_url, "data:")) else None)
    page.goto(base_url + "/")
    page.wait_for_selector("#example-button:not([disabled])")
    yield page
    assert errors == [], f"JavaScript errors: {errors}"
    assert outside == [], f"the page fetched from elsewhere: {outside}"
    context.close()


def _ink_pixels(page) -> int:
    """Pixels of the ECG paper (the canvas above the 46 px of bands and axis) dark enough to be the trace."""
    return page.evaluate(
        """() => {
            const c = document.getElementById('trace');
            const paper = c.height - Math.round(46 * (window.devicePixelRatio || 1));
            const d = c.getContext('2d').getImageData(0, 0, c.width, paper).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] < 90 && d[i + 1] < 90 && d[i + 2] < 110) n++;
            return n;
        }"""
    )


def test_upload_a_record_and_see_it_drawn(page, tiny_model_dir, cinc2017_dir, tmp_path):
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.inference.streaming import classify_files

    header, signal = cinc2017_dir / "A00001.hea", cinc2017_dir / "A00001.mat"
    expected, _ = classify_files(RhythmClassifier.load(tiny_model_dir), [header])
    page.set_input_files("#files", [str(header), str(signal)])
    page.click("text=Classify file")
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert page.inner_text("#label-badge") == expected.labels[0]
    assert "A00001" in page.inner_text("#facts")
    assert page.locator("#probabilities li").count() == len(expected.classes)
    assert page.locator("#segments tr").count() == 3
    assert page.inner_text("#message") == ""
    ink = _ink_pixels(page)
    assert ink > 500, "the ECG trace was not drawn"
    page.screenshot(path=str(tmp_path / "page-upload.png"), full_page=True)

    # The keyboard scrolls the trace: the view moves and is redrawn.
    page.focus("#trace-view")
    before = page.input_value("#position")
    page.keyboard.press("End")
    assert float(page.input_value("#position")) > float(before)
    page.keyboard.press("-")
    assert page.inner_text("#zoom-level") == "75 %"
    assert _ink_pixels(page) > 500


def test_refused_file_shows_an_alert(page, tmp_path):
    bad = tmp_path / "notes.csv"
    bad.write_text("time,value\nnoon,high\n")
    page.set_input_files("#files", str(bad))
    page.fill("#fs", "300")
    page.click("text=Classify file")
    alert = page.locator("[role=alert]")
    alert.wait_for(state="visible")
    page.wait_for_function("document.getElementById('message').textContent.length > 0")
    assert alert.inner_text().startswith("The file was refused") and "notes.csv" in alert.inner_text()
    assert page.locator("#result").is_hidden()
    page.screenshot(path=str(tmp_path / "page-refused.png"), full_page=True)


def test_example_record(page, tmp_path):
    page.select_option("#example", "A00004")
    page.click("#example-button")
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert "A00004" in page.inner_text("#facts") and "Reference label" in page.inner_text("#facts")
    assert _ink_pixels(page) > 500
    page.screenshot(path=str(tmp_path / "page-example.png"), full_page=True)


def test_an_error_clears_the_previous_result(page, tmp_path):
    page.select_option("#example", "A00004")
    page.click("#example-button")
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert "A00004" in page.inner_text("#facts") and _ink_pixels(page) > 500
    bad = tmp_path / "other.csv"
    bad.write_text("time,value\nnoon,high\n")
    page.set_input_files("#files", str(bad))
    page.fill("#fs", "300")
    page.click("text=Classify file")
    page.wait_for_selector("#message:has-text('other.csv')", timeout=60_000)
    # Nothing of A00004 is left under the error: no label, facts, timeline or ECG.
    assert page.locator("#result").is_hidden() and page.locator("#trace-panel").is_hidden()
    assert page.inner_text("#label-badge") == "" and page.locator("#facts dd").count() == 0
    assert page.locator("#segments tr").count() == 0 and page.locator("#probabilities li").count() == 0
    painted = "id => { const c = document.getElementById(id); return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0); }"
    assert not page.evaluate(painted, "trace") and not page.evaluate(painted, "overview")  # the ECG canvases are blank
    assert "A00004" not in page.inner_text("#status") + page.inner_text("#message")


@pytest.fixture(scope="module")
def shipped_url():
    """A server with the shipped model, which finds the AF episodes of the cpsc2021 records."""
    with background_server(create_app(None, token="")) as url:
        yield url


def test_a_click_on_an_af_band_opens_that_stretch(browser, shipped_url, cpsc2021_dir, tmp_path):
    from ecgrhythm.episodes.finder import record_episodes
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.records import read_record

    header = cpsc2021_dir / "data_92_19.hea"  # 6 minutes, paroxysmal AF
    found = record_episodes(RhythmClassifier.load(), read_record(header))
    af = [e for e in found.episodes if e.label == "A"]
    assert len(af) >= 2, "the shipped model should find two AF episodes in data_92_19"
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(shipped_url + "/")
    page.set_input_files("#files", [str(header), str(header.with_suffix(".dat"))])
    page.click("text=Classify file")
    page.wait_for_selector("#result:not([hidden])", timeout=300_000)
    assert f"{100 * found.af_burden:.1f} %" in page.inner_text("#facts") and "Lead classified" in page.inner_text("#facts")
    box = page.locator("#overview").bounding_box()
    episode = af[-1]
    x = box["x"] + box["width"] * (episode.start_s + episode.end_s) / 2 / found.duration_s
    # the AF band is painted in the AF colour on the overview's top row (washed with white outside the stretch on screen)
    colour = page.evaluate(
        "([x, y]) => Array.from(document.getElementById('overview').getContext('2d').getImageData(x, y, 1, 1).data)", [round(x - box["x"]), 6]
    )
    af_colour = np.array([0xC9, 0x4F, 0x00])
    assert min(np.abs(np.array(colour[:3]) - c).max() for c in (af_colour, 0.45 * af_colour + 0.55 * 255)) <= 2
    page.locator("#overview").click(position={"x": x - box["x"], "y": 6})
    shown_from = float(page.input_value("#position"))
    assert shown_from == pytest.approx(episode.start_s, abs=0.05)
    assert page.inner_text("#position-text").startswith(f"{episode.start_s:.1f}–")
    assert _ink_pixels(page) > 500  # the ECG of that stretch is drawn
    page.screenshot(path=str(tmp_path / "page-af-band.png"), full_page=True)
    assert errors == [], f"JavaScript errors: {errors}"
    context.close()


def test_the_api_page_shows_every_operation_offline(browser, base_url):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)  # a CSP violation is logged so
    page.on("request", lambda req: problems.append(req.url) if not req.url.startswith((base_url, "data:")) else None)
    page.goto(base_url + "/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert [p.replace("\u200b", "") for p in paths] == ["/health", "/v1/classify", "/v1/examples", "/v1/examples/{name}"]
    page.click("text=List the example records")
    page.click("text=Try it out")
    page.click("text=Execute")
    page.wait_for_selector(".live-responses-table .response .response-col_status")
    assert page.locator(".live-responses-table .response .response-col_status").first.inner_text().strip() == "200"
    assert problems == []
    context.close()
