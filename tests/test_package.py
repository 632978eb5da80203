"""The package face: `import ecgrhythm` offers the public names, loads them on first use, and imports no Keras."""

import json
import subprocess
import sys

import pytest

import ecgrhythm


def _fresh(code: str) -> dict:
    """Run `code` in a fresh interpreter (nothing imported yet) and return the JSON it prints."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(run.stdout)


def test_import_and_the_command_parser_load_neither_keras_nor_jax():
    seen = _fresh(
        "import json, sys, ecgrhythm, ecgrhythm.cli\n"
        "ecgrhythm.cli.build_parser()\n"
        "print(json.dumps({m: m in sys.modules for m in ('keras', 'jax', 'ecgrhythm.inference.classifier')}))"
    )
    assert seen == {"keras": False, "jax": False, "ecgrhythm.inference.classifier": False}


@pytest.mark.parametrize("name", [n for n in ecgrhythm.__all__ if n != "__version__"])
def test_every_public_name_resolves_to_its_defining_object(name):
    value = getattr(ecgrhythm, name)
    assert getattr(value, "__name__", name) == name
    assert name in dir(ecgrhythm)


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no attribute 'RhythmClasifier'"):
        ecgrhythm.RhythmClasifier  # noqa: B018


def test_the_face_classifies_and_finds_episodes_of_a_real_record(cinc2017_dir):
    record = ecgrhythm.read_record(cinc2017_dir / "A00004.hea")  # labelled A in REFERENCE.csv
    assert isinstance(record, ecgrhythm.EcgRecord)
    clf = ecgrhythm.RhythmClassifier.load()
    assert clf.model_dir_ == ecgrhythm.default_model_dir()
    assert clf.predict_records([record]).labels == ["A"] and clf.predict(record) == "A"
    assert clf.predict(record.signal[:, 0], fs=record.fs) == "A"  # one 1-D array with its rate
    found = ecgrhythm.record_episodes(clf, record)
    assert isinstance(found, ecgrhythm.RecordEpisodes) and found.af_burden > 0.5
