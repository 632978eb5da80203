import json
import shutil

import numpy as np
import pytest

from ecgrhythm.inference import RhythmClassifier
from ecgrhythm.saving import ModelFolderError, load_model_dir, save_model_dir


def test_save_and_load_round_trip(tiny_model_dir, tmp_path, cinc2017_dir):
    model, config = load_model_dir(tiny_model_dir)
    out = save_model_dir(model, tmp_path / "copy", classes=config["classes"], preprocess=config["preprocess"], architecture=config["model"], metadata={"note": "copy"})
    before = RhythmClassifier.load(tiny_model_dir).predict_records([cinc2017_dir / "A00002.hea"])
    after = RhythmClassifier.load(out).predict_records([cinc2017_dir / "A00002.hea"])
    np.testing.assert_allclose(before.probabilities, after.probabilities, atol=1e-6)
    assert after.classes == ["N", "A", "O", "~"]
    assert json.loads((out / "config.json").read_text())["metadata"] == {"note": "copy"}


def test_saving_over_an_existing_folder_replaces_it(tiny_model_dir, tmp_path):
    model, config = load_model_dir(tiny_model_dir)
    target = tmp_path / "m"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    save_model_dir(model, target, classes=config["classes"], preprocess=config["preprocess"], architecture=config["model"])
    assert not (target / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"], "no temporary folders are left behind"


def test_altered_weights_are_refused(tiny_model_dir, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(tiny_model_dir, copy)
    data = bytearray((copy / "model.weights.h5").read_bytes())
    data[-100] ^= 0xFF
    (copy / "model.weights.h5").write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="checksum"):
        load_model_dir(copy)


def test_incomplete_folder_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelFolderError, match="model.weights.h5 is missing"):
        load_model_dir(tmp_path)
