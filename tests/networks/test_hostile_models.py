"""Model folders that lie: every number of `config.json` is checked against bounds, and the folder's files are
capped in count and size, before anything is read whole, hashed or built (issue #37, items 3 and 9)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.networks import limits
from ecgrhythm.networks.cnn_lstm import ModelConfig
from ecgrhythm.networks.family import MAX_DOWNSAMPLING, MAX_STAGES
from ecgrhythm.networks.gru import GruConfig
from ecgrhythm.networks.registry import config_from_dict
from ecgrhythm.networks.saving import ModelFolderError, load_networks
from ecgrhythm.networks.split import load_split


def test_architectures_beyond_the_bounds_are_refused_naming_the_field():
    assert ModelConfig().downsampling == 64 and MAX_STAGES == 10 and MAX_DOWNSAMPLING == 1024
    ModelConfig(conv_filters=(8,) * MAX_STAGES, conv_kernel=31, lstm_layers=8, lstm_units=256)  # the largest allowed
    cases = [
        ({"conv_filters": [8] * 27}, "conv_filters"),  # inputs padded to multiples of 2**27 samples
        ({"conv_filters": [8] * 24}, "conv_filters"),
        ({"conv_filters": [8, 10**9]}, "conv_filters"),
        ({"conv_filters": [8.5, 16]}, "conv_filters"),
        ({"conv_kernel": 10**6}, "conv_kernel"),
        ({"lstm_layers": 1000}, "lstm_layers"),
        ({"lstm_units": 1e9}, "lstm_units"),
        ({"lstm_units": True}, "lstm_units"),
        ({"bidirectional": "yes"}, "bidirectional"),
        ({"dropout": "0.3"}, "dropout"),
        ({"network": "gru", "strides": [4] * 6, "kernel": 9}, "strides"),  # 4**6 = 4096 > 1024
        ({"network": "gru", "gru_units": 10**6}, "gru_units"),
        ({"network": "gru", "filters": 10**5}, "filters"),
    ]
    for fields, name in cases:
        with pytest.raises(ValueError, match=f"Invalid argument `{name}`"):
            config_from_dict(fields)
    assert GruConfig(strides=(4, 4, 4, 4, 4), kernel=9).downsampling == 1024  # at the bound


def _altered(src, dst, change):
    """A copy of the model folder `src` at `dst` whose config.json `change` edited, its checksum made to match."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoint"))
    config = json.loads((dst / "config.json").read_text())
    change(config)
    (dst / "config.json").write_text(json.dumps(config))
    sums = json.loads((dst / "checksums.json").read_text())
    sums["config.json"] = hashlib.sha256((dst / "config.json").read_bytes()).hexdigest()
    (dst / "checksums.json").write_text(json.dumps(sums))
    return dst


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["model"].update(conv_filters=[8] * 27), "Invalid argument `conv_filters`: expected a list of 1 to 10"),
        (lambda c: c["model"].update(lstm_units=10**9), "Invalid argument `lstm_units`: expected an integer from 1 to 256"),
        (lambda c: c.update(n_leads=10**9), "Invalid argument `n_leads`: expected an integer from 1 to 64"),
        (lambda c: c.update(classes=[f"c{i}" for i in range(100_000)]), "Invalid argument `classes`: .* Received: classes='100,000 entries'"),
        (lambda c: c.update(classes=["N", "N", "O", "~"]), "Invalid argument `classes`: expected a list of 1 to 256 distinct"),
        (lambda c: c.update(thresholds=[0.5, float("nan"), 0.5, 0.5]), "Invalid argument `thresholds`"),
        (lambda c: c["preprocess"].update(fs=1e9), "Invalid argument `fs`"),
    ],
)
def test_a_folder_whose_config_asks_for_too_much_is_refused_before_building(tiny_model_dir, tmp_path, change, message):
    folder = _altered(tiny_model_dir, tmp_path / "hostile", change)
    with pytest.raises(ModelFolderError, match=f"hostile: invalid model configuration in config.json: {message}"):
        load_networks(folder)
    with pytest.raises(ModelFolderError, match=message):
        RhythmClassifier.load(folder)


def test_members_are_capped_in_count_and_size_before_they_are_read(tiny_model_dir, tmp_path):
    many = _altered(tiny_model_dir, tmp_path / "many", lambda c: c.update(members=["model.weights.h5", *(f"m{i}.weights.h5" for i in range(1000))]))
    with pytest.raises(ModelFolderError, match=r'many: invalid "members" in config.json: expected 1 to 5 .* Received: \'1,001 names\''):
        RhythmClassifier.load(many)

    big = _altered(tiny_model_dir, tmp_path / "big", lambda c: None)
    with open(big / "model.weights.h5", "r+b") as f:  # sparse: no disk is used, but hashing it would read 257 MiB
        f.truncate(limits.MAX_WEIGHTS_BYTES + 1)
    with pytest.raises(ModelFolderError, match=r"big/model.weights.h5: 268,435,457 bytes, over the limit of 268,435,456 bytes"):
        RhythmClassifier.load(big)

    padded = _altered(tiny_model_dir, tmp_path / "padded", lambda c: c["metadata"].update(note="x" * limits.MAX_JSON_BYTES))
    with pytest.raises(ModelFolderError, match=r"padded/config.json: .* bytes, over the limit of 1,048,576 bytes"):
        RhythmClassifier.load(padded)

    (big / "split.json").write_text("")
    os.truncate(big / "split.json", limits.MAX_SPLIT_BYTES + 1)
    with pytest.raises(ValueError, match=r"split.json: invalid split file \(.* bytes, over the limit of 67,108,864 bytes"):
        load_split(big)
