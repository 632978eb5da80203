"""Draw the README's pictures into docs/images/ (each file replaced atomically; rerun after a change to the page or the model).

- `page.png`: the service's page (Debian's Chromium, headless, driven by Playwright) with a CPSC 2021 record
  uploaded, opened on one of its AF episodes: the predicted class, the AF burden, the ECG and the AF bands.
- `episodes.png`: that record's AF episodes as `ecgrhythm.record_episodes` finds them with the shipped model,
  above the annotated ones.

The record is `data_92_19` of the cpsc2021 sample (6 minutes, paroxysmal AF, two annotated episodes), from the
data folder of `ecgrhythm.config.default_data_dir` (`$ECGRHYTHM_DATA`). Nothing here is random.

Usage: .venv/bin/python scripts/readme_pictures.py [--out docs/images] [--record data_92_19]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import ecgrhythm
from ecgrhythm.config import default_data_dir
from ecgrhythm.episodes.annotations import read_rhythm_annotations
from ecgrhythm.utils.io import atomic_write, palette_png

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AF_COLOUR = "#C94F00"  # the page's colour of atrial fibrillation (static/style.css)
OTHER_COLOUR = "#D9DEE5"
PAGE_WIDTH = 1200


def episodes_png(found, annotations) -> bytes:
    """Two rows on a time axis in minutes: the AF episodes found (`RecordEpisodes`) and those annotated (`RhythmAnnotations`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    annotated = [(a / annotations.fs, b / annotations.fs) for a, b in annotations.af_intervals()]
    found_af = [(e.start_s, e.end_s) for e in found.episodes if e.label == "A"]
    minutes = found.duration_s / 60
    fig, ax = plt.subplots(figsize=(8.4, 1.9), dpi=150, layout="constrained")
    rows = {"found": (found_af, found.af_burden), "annotated": (annotated, sum(b - a for a, b in annotated) / found.duration_s)}
    for y, (spans, burden) in zip((1, 0), rows.values()):
        ax.broken_barh([(0, minutes)], (y - 0.35, 0.7), color=OTHER_COLOUR)
        ax.broken_barh([(a / 60, (b - a) / 60) for a, b in spans], (y - 0.35, 0.7), color=AF_COLOUR)
        ax.text(minutes * 1.01, y, f"AF burden {100 * burden:.1f} %", va="center", fontsize=9)
    ax.set_yticks([1, 0], [f"{name} ({len(spans)})" for name, (spans, _) in rows.items()])
    ax.set_xlim(0, minutes)
    ax.set_xlabel("time (minutes)")
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.set_title(
        f"{found.record_name} (CPSC 2021, {annotations.class_name} AF): AF episodes found by the shipped model and annotated",
        fontsize=10,
        loc="left",
    )
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def page_png(header: Path, episode, duration_s: float) -> bytes:
    """The service's page with the record of `header` (`duration_s` long) uploaded and the trace opened on `episode` (an AF `Episode`)."""
    from playwright.sync_api import sync_playwright

    from ecgrhythm.service.app import background_server, create_app

    with background_server(create_app(None, token="", examples_dir=default_data_dir() / "cinc2017")) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": PAGE_WIDTH, "height": 900}, device_scale_factor=1)
        page.goto(url + "/")
        page.set_input_files("#files", [str(header), *map(str, sorted(header.parent.glob(header.stem + ".dat")))])
        page.click("text=Classify file")
        page.wait_for_selector("#result:not([hidden])", timeout=300_000)
        overview = page.locator("#overview").bounding_box()
        x = overview["width"] * (episode.start_s + episode.end_s) / 2 / duration_s
        page.locator("#overview").click(position={"x": x, "y": 6})  # an AF band opens its episode in the trace
        page.wait_for_timeout(300)
        scrolled = page.evaluate("window.scrollY")  # bounding boxes are of the viewport, the clip of the whole page
        top = page.locator("#result").bounding_box()["y"] + scrolled - 12
        panel = page.locator("#trace-panel").bounding_box()
        panel["y"] += scrolled
        png = page.screenshot(clip={"x": 0, "y": top, "width": PAGE_WIDTH, "height": panel["y"] + panel["height"] - top + 12}, full_page=True)
        browser.close()
    return png


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=Path(__file__).resolve().parents[1] / "docs" / "images", type=Path, help="folder (default: docs/images)")
    parser.add_argument("--record", default="data_92_19", help="record of the cpsc2021 sample with AF episodes (default: %(default)s)")
    args = parser.parse_args(argv)
    data = default_data_dir()
    header = data / "cpsc2021-sample" / f"{args.record}.hea" if data is not None else None
    if header is None or not header.is_file():
        print(
            f"readme_pictures.py: {header or 'no data folder'}: not found; set ECGRHYTHM_DATA to the folder holding cpsc2021-sample/", file=sys.stderr
        )
        return 1
    clf = ecgrhythm.RhythmClassifier.load()
    found = ecgrhythm.record_episodes(clf, ecgrhythm.read_record(header))
    af = [e for e in found.episodes if e.label == "A"]
    if not af:
        print(f"readme_pictures.py: the model finds no AF episode in {args.record}: choose a record with AF (--record)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    pictures = {"episodes.png": episodes_png(found, read_rhythm_annotations(header))}
    if CHROMIUM.exists():
        pictures["page.png"] = page_png(header, af[-1], found.duration_s)
    else:
        print(f"readme_pictures.py: {CHROMIUM} is absent (apt-get install chromium): page.png not drawn", file=sys.stderr)
    for name, png in pictures.items():
        small = palette_png(png)
        with atomic_write(args.out / name, "wb") as f:
            f.write(small)
        print(f"wrote {args.out / name} ({len(small) / 1024:.0f} KB)")
    return 0 if len(pictures) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
