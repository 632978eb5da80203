"""A built wheel carries the shipped model, and an installed (not editable) ecgrhythm finds and loads it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "cinc2017"

# pyproject.toml's build-system needs setuptools>=77 (the test extra installs it); built without isolation, offline.
pytest.importorskip("setuptools", minversion="77")


def test_wheel_ships_the_model_and_an_installed_package_loads_it(tmp_path):
    source = tmp_path / "source"  # build from a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "models", source / "models", ignore=shutil.ignore_patterns("checkpoint"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("ecgrhythm-*.whl")
    shipped = sorted(p.name for p in MODEL.iterdir() if p.is_file())
    assert {"config.json", "model.weights.h5", "checksums.json", "MODEL_CARD.md", "model.onnx"} <= set(shipped)
    with zipfile.ZipFile(wheel) as archive:
        for name in shipped:
            assert archive.read(f"ecgrhythm/pretrained/cinc2017/{name}") == (MODEL / name).read_bytes(), name
        for page_file in sorted(p.name for p in (ROOT / "src" / "ecgrhythm" / "service" / "static").iterdir()):
            # the page, its scripts (app.js, paper.js), style and icon
            assert f"ecgrhythm/service/static/{page_file}" in archive.namelist(), page_file
        tagger = ROOT / "src" / "ecgrhythm" / "episodes" / "rr_tagger.onnx"  # the beats method's R-R tagger
        assert archive.read("ecgrhythm/episodes/rr_tagger.onnx") == tagger.read_bytes()

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)], check=True, timeout=300)
    script = (
        "import json, sys, ecgrhythm\n"
        "from ecgrhythm.inference.classifier import RhythmClassifier, default_model_dir\n"
        "clf = RhythmClassifier.load()\n"
        "from ecgrhythm.episodes.rr_tagger import rr_tagger_logit\n"
        "tagged = rr_tagger_logit(__import__('numpy').arange(0, 20000, 160), 200.0)\n"
        "print(json.dumps({'package': ecgrhythm.__file__, 'default': str(default_model_dir()), 'loaded': str(clf.model_dir_),"
        " 'classes': clf.classes_, 'backend': type(clf.backend_).__name__, 'keras': 'keras' in sys.modules,"
        " 'tagged': bool(len(tagged) == 125 and (tagged < 0).all())}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(site)  # the installed copy, not the checkout
    assert Path(found["default"]) == site / "ecgrhythm" / "pretrained" / "cinc2017" == Path(found["loaded"])
    assert found["classes"] == json.loads((MODEL / "config.json").read_text())["classes"]
    assert found["backend"] == "OnnxBackend" and not found["keras"]  # the shipped graph, on onnxruntime (a dependency)
    assert found["tagged"]  # the installed R-R tagger reads perfectly regular beats as no AF
