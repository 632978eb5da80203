import numpy as np
import pytest

from ecgrhythm.inference.classifier import RhythmClassifier, predict_signals, split_long
from ecgrhythm.networks.cnn_lstm import ModelConfig, build_lstm_classifier
from ecgrhythm.networks.layers import DownsampleMask, MaskedGlobalPooling
from ecgrhythm.preprocessing.batching import bucket_lengths, pad_batch
from ecgrhythm.records import read_record


@pytest.fixture(scope="module")
def clf(tiny_model_dir):
    return RhythmClassifier.load(tiny_model_dir)


@pytest.fixture(scope="module")
def two_signals(clf, cinc2017_dir):
    return [clf.prepare(read_record(cinc2017_dir / name)) for name in ("A00001.hea", "A00005.hea")]


def _predict(model, signals, length, batch_size):
    x, mask = pad_batch(signals, length, batch_size)
    return np.asarray(model.predict_on_batch({"signal": x, "mask": mask}))[: len(signals)]


def test_padding_never_changes_a_prediction(clf, two_signals):
    model, step = clf.model_, clf.architecture_.downsampling
    base = max(len(s) for s in two_signals)
    short = -(-base // step) * step
    a = _predict(model, two_signals[:1], short, 1)
    b = _predict(model, two_signals[:1], short + 50 * step, 1)
    c = _predict(model, two_signals, short + 7 * step, 4)
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    np.testing.assert_allclose(a[0], c[0], atol=1e-5)
    assert not np.allclose(c[0], c[1], atol=1e-4), "two different records should not get identical outputs"


def test_padding_invariance_for_an_untrained_bidirectional_stack(two_signals):
    model = build_lstm_classifier(1, 4, ModelConfig(conv_filters=(8, 8, 8), lstm_layers=2, lstm_units=6))
    signal = two_signals[1][:1000]
    a = _predict(model, [signal], 1024, 2)
    b = _predict(model, [signal], 4096, 2)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_downsample_mask_keeps_a_step_if_either_input_is_real():
    mask = np.array([[1, 1, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]], dtype=bool)
    out = np.asarray(DownsampleMask()(mask))
    np.testing.assert_array_equal(out, [[1, 1, 0, 0], [1, 0, 0, 0]])


def test_masked_pooling_ignores_padded_steps():
    x = np.array([[[1.0], [3.0], [100.0]]], dtype=np.float32)
    mask = np.array([[True, True, False]])
    out = np.asarray(MaskedGlobalPooling()(x, mask))
    np.testing.assert_allclose(out, [[2.0, 3.0]])  # mean of 1 and 3, max of 1 and 3


def test_depth_and_direction_change_the_network():
    small = build_lstm_classifier(1, 4, ModelConfig(conv_filters=(8, 8), lstm_layers=1, lstm_units=8, bidirectional=False))
    deep = build_lstm_classifier(1, 4, ModelConfig(conv_filters=(8, 8), lstm_layers=2, lstm_units=8, bidirectional=True))
    assert deep.count_params() > small.count_params()
    assert deep.output.shape == (None, 4)
    multi = build_lstm_classifier(12, 5, ModelConfig(conv_filters=(8,), multilabel=True))
    out = np.asarray(
        multi.predict_on_batch({"signal": np.random.default_rng(0).normal(size=(2, 64, 12)).astype("float32"), "mask": np.ones((2, 64), bool)})
    )
    assert out.shape == (2, 5) and not np.allclose(out.sum(axis=1), 1.0)


def test_model_config_rejects_bad_arguments_by_name():
    with pytest.raises(ValueError, match="lstm_units"):
        ModelConfig(lstm_units=0)
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(dropout=1.5)


def test_long_records_are_classified_in_chunks(clf, two_signals):
    buckets = bucket_lengths(clf.preprocess_.fs, clf.architecture_.downsampling)
    long = np.concatenate([two_signals[0]] * 4 + [two_signals[1]] * 4)
    assert len(long) > buckets[-1]
    chunks = split_long(long, buckets[-1])
    assert len(chunks) >= 2 and all(len(c) <= buckets[-1] for c in chunks)
    assert sum(len(c) for c in chunks) == len(long)
    whole = predict_signals(clf.model_, [long], buckets)
    parts = predict_signals(clf.model_, chunks, buckets)
    expected = np.average(parts, axis=0, weights=[len(c) for c in chunks])
    np.testing.assert_allclose(whole[0], expected, atol=1e-5)


def test_a_model_folder_without_a_network_name_loads_as_the_cnn_lstm(cinc2017_dir, tmp_path):
    """Folders written before network names (the shipped one until it was replaced) load as the CNN + LSTM."""
    import hashlib
    import json
    import shutil
    from pathlib import Path

    from ecgrhythm.config import PreprocessConfig
    from ecgrhythm.preprocessing.pipeline import preprocess

    folder = tmp_path / "old"
    shutil.copytree(Path(__file__).resolve().parents[2] / "models" / "cinc2017", folder)
    config = json.loads((folder / "config.json").read_text())
    del config["model"]["network"]
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    sums = json.loads((folder / "checksums.json").read_text())
    sums["config.json"] = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
    (folder / "checksums.json").write_text(json.dumps(sums))
    clf = RhythmClassifier.load(folder)
    assert clf.architecture_.network == "cnn_lstm" and clf.model_.name == "ecgrhythm_cnn_lstm"
    paths = [cinc2017_dir / f"A0000{i}.hea" for i in range(1, 6)]
    signals = [preprocess(read_record(p), PreprocessConfig.from_dict(config["preprocess"])) for p in paths]
    members = []  # the folder's networks (one, or several averaged), each built and loaded directly
    for weights in config.get("members", ["model.weights.h5"]):
        direct = build_lstm_classifier(1, 4, ModelConfig.from_dict(config["model"]))
        direct.load_weights(folder / weights)
        members.append(predict_signals(direct, signals, clf.buckets_))
    assert len(clf.networks_) == len(members)
    expected = clf.calibrate(np.mean(members, axis=0))  # the folder's temperature, as the classifier applies it
    np.testing.assert_allclose(clf.predict_records(paths).probabilities, expected, atol=1e-6)


def test_the_registry_names_each_family_and_refuses_another_under_a_taken_name():
    import dataclasses

    from ecgrhythm.networks.family import NetworkFamily
    from ecgrhythm.networks.gru import GruConfig
    from ecgrhythm.networks.registry import DEFAULT_NETWORK, config_from_dict, get_family, network_names, register_family

    assert {"cnn_lstm", "gru"} <= set(network_names()) and DEFAULT_NETWORK == "cnn_lstm"
    assert get_family("cnn_lstm").config_class is ModelConfig and get_family("gru").config_class is GruConfig
    assert config_from_dict({"lstm_units": 8}) == ModelConfig(lstm_units=8), "a config.json naming no network is the CNN + LSTM"
    assert ModelConfig(lstm_units=8).to_dict()["network"] == "cnn_lstm" and list(ModelConfig().to_dict())[-1] == "network"
    register_family(get_family("gru"))  # the same family again: nothing changes
    with pytest.raises(ValueError, match="already registered"):
        register_family(dataclasses.replace(get_family("gru"), write_onnx=None))
    with pytest.raises(ValueError, match="family"):
        register_family(NetworkFamily(dict, build_lstm_classifier))
    with pytest.raises(ValueError, match=r"expected 'cnn_lstm' for a ModelConfig. Received: network='gru'"):
        ModelConfig.from_dict(GruConfig().to_dict())
    with pytest.raises(ValueError, match=r"Received: network='toy'"):
        config_from_dict({"network": "toy"})


def test_a_model_folder_of_an_unregistered_network_is_refused_by_name(tiny_model_dir, tmp_path):
    import hashlib
    import json
    import shutil

    from ecgrhythm.networks.saving import ModelFolderError, load_model_dir

    folder = tmp_path / "toy"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model"]["network"] = "toy"
    (folder / "config.json").write_text(json.dumps(config))
    sums = json.loads((folder / "checksums.json").read_text())
    sums["config.json"] = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
    (folder / "checksums.json").write_text(json.dumps(sums))
    with pytest.raises(
        ModelFolderError, match=r"toy: invalid model configuration in config.json: .*expected one of \['cnn_lstm', 'gru'.*Received: network='toy'"
    ):
        load_model_dir(folder)
