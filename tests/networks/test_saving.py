import json
import shutil

import numpy as np
import pytest

from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.networks.saving import ModelFolderError, is_finished, load_model_dir, save_model_dir


def test_save_and_load_round_trip(tiny_model_dir, tmp_path, cinc2017_dir):
    model, config = load_model_dir(tiny_model_dir)
    out = save_model_dir(
        model, tmp_path / "copy", classes=config["classes"], preprocess=config["preprocess"], architecture=config["model"], metadata={"note": "copy"}
    )
    before = RhythmClassifier.load(tiny_model_dir).predict_records([cinc2017_dir / "A00002.hea"])
    after = RhythmClassifier.load(out).predict_records([cinc2017_dir / "A00002.hea"])
    np.testing.assert_allclose(before.probabilities, after.probabilities, atol=1e-6)
    assert after.classes == ["N", "A", "O", "~"]
    assert json.loads((out / "config.json").read_text())["metadata"] == {"note": "copy"}


def test_saving_over_a_model_folder_replaces_its_files_and_keeps_others(tiny_model_dir, tmp_path):
    model, config = load_model_dir(tiny_model_dir)
    target = tmp_path / "m"
    shutil.copytree(tiny_model_dir, target)
    (target / "notes.txt").write_text("mine")
    save_model_dir(
        model, target, classes=config["classes"], preprocess=config["preprocess"], architecture=config["model"], metadata={"note": "again"}
    )
    assert (target / "notes.txt").read_text() == "mine" and (target / "checkpoint" / "state.npz").is_file()
    assert json.loads((target / "config.json").read_text())["metadata"] == {"note": "again"}
    load_model_dir(target)  # the checksums match the new files
    assert [p.name for p in tmp_path.iterdir()] == ["m"], "no temporary folders are left behind"


def test_a_save_stopped_before_its_checksums_leaves_a_folder_that_reads_unfinished(tiny_model_dir, tmp_path, monkeypatch):
    import ecgrhythm.networks.saving as saving

    model, config = load_model_dir(tiny_model_dir)
    target = tmp_path / "m"
    shutil.copytree(tiny_model_dir, target)
    assert is_finished(target)
    replace = saving.os.replace

    def stop_at_checksums(src, dst):
        if str(dst).endswith("checksums.json"):
            raise KeyboardInterrupt  # the process stopped after the new config and weights were placed
        replace(src, dst)

    monkeypatch.setattr(saving.os, "replace", stop_at_checksums)
    with pytest.raises(KeyboardInterrupt):
        save_model_dir(model, target, classes=config["classes"], preprocess=config["preprocess"], architecture=config["model"], metadata={"n": 2})
    assert not is_finished(target), "cross-validation retrains such a fold instead of skipping it"
    with pytest.raises(ModelFolderError, match="checksums.json is missing"):
        load_model_dir(target)
    monkeypatch.setattr(saving.os, "replace", replace)
    save_model_dir(model, target, classes=config["classes"], preprocess=config["preprocess"], architecture=config["model"], metadata={"n": 2})
    assert is_finished(target) and json.loads((target / "config.json").read_text())["metadata"] == {"n": 2}


def test_saving_into_a_folder_of_other_files_is_refused(tiny_model_dir, tmp_path):
    model, config = load_model_dir(tiny_model_dir)
    (tmp_path / "config.json").write_text("{}")  # someone else's config, no weights: not a model folder
    (tmp_path / "REFERENCE.csv").write_text("A00001,N\n")
    with pytest.raises(FileExistsError, match="holds 2 other entries such as REFERENCE.csv, config.json"):
        save_model_dir(model, tmp_path, classes=config["classes"], preprocess=config["preprocess"], architecture=config["model"])
    assert (tmp_path / "config.json").read_text() == "{}" and sorted(p.name for p in tmp_path.iterdir()) == ["REFERENCE.csv", "config.json"]


def test_a_config_with_an_absurd_sampling_rate_is_refused_at_load(tiny_model_dir, tmp_path, monkeypatch):
    import hashlib

    import ecgrhythm.networks.saving as saving

    copy = tmp_path / "m"
    shutil.copytree(tiny_model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["preprocess"]["fs"] = 1e9
    (copy / "config.json").write_text(json.dumps(config))
    sums = json.loads((copy / "checksums.json").read_text())
    sums["config.json"] = hashlib.sha256((copy / "config.json").read_bytes()).hexdigest()
    (copy / "checksums.json").write_text(json.dumps(sums))
    monkeypatch.setattr(saving, "build_network", lambda *a: pytest.fail("the network was built from an absurd config"))
    with pytest.raises(ModelFolderError, match="fs"):
        load_model_dir(copy)


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
