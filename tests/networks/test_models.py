import numpy as np
import pytest

from ecgrhythm.config import ModelConfig
from ecgrhythm.inference.classifier import RhythmClassifier, predict_signals, split_long
from ecgrhythm.networks.cnn_lstm import DownsampleMask, MaskedGlobalPooling, build_lstm_classifier
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


def _build_toy(n_leads, n_classes, config):
    """A toy network family: one convolution, masked pooling, a dense head."""
    import keras
    from keras import layers

    signal = keras.Input(shape=(None, n_leads), name="signal")
    mask = keras.Input(shape=(None,), dtype="bool", name="mask")
    x = layers.Conv1D(config.conv_filters[0], config.conv_kernel, padding="same", activation="relu", name="toy_conv")(signal)
    x = MaskedGlobalPooling(name="toy_pool")(x, mask)
    out = layers.Dense(n_classes, activation="sigmoid" if config.multilabel else "softmax", name="probabilities")(x)
    return keras.Model({"signal": signal, "mask": mask}, out, name="toy_network")


def test_a_registered_network_family_trains_saves_and_loads_by_name(tmp_path, cinc2017_dir):
    import json

    from conftest import TINY_PREPROCESS

    from ecgrhythm.config import TrainConfig
    from ecgrhythm.networks.cnn_lstm import NETWORKS, register_network
    from ecgrhythm.networks.saving import ModelFolderError, load_model_dir
    from ecgrhythm.training.trainer import train

    register_network("toy", _build_toy)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_network("toy", build_lstm_classifier)
        out = tmp_path / "toy"
        train(
            cinc2017_dir,
            out,
            preprocess_config=TINY_PREPROCESS,
            model_config=ModelConfig(network="toy", conv_filters=(4,), conv_kernel=5),
            train_config=TrainConfig(epochs=1, batch_size=16, window_s=10.0, val_fraction=0.25),
            limit=64,
            verbose=0,
        )
        config = json.loads((out / "config.json").read_text())
        assert config["model"]["network"] == "toy"
        model, loaded = load_model_dir(out)
        assert model.name == "toy_network" and loaded["model"].network == "toy"
        assert model.count_params() == config["metadata"]["parameters"] == _build_toy(1, 4, loaded["model"]).count_params()
        prediction = RhythmClassifier.load(out).predict_records([cinc2017_dir / "A00001.hea", cinc2017_dir / "A00002.hea"])
        assert prediction.probabilities.shape == (2, 4)
        np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, atol=1e-5)
    finally:
        NETWORKS.pop("toy", None)
    with pytest.raises(ModelFolderError, match="network='toy'"):
        load_model_dir(out)
