"""The residual convolutional family: registered like the others, it trains from the command line, keeps padding out
of its predictions, and exports to ONNX within the parity tolerance."""

import json

import numpy as np
import pytest
from conftest import TINY_PREPROCESS, TINY_TRAIN, assert_padding_changes_nothing

from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.networks.resnet import ResNetConfig, build_resnet_classifier

TINY_RESNET = ResNetConfig(stem_pool=2, stem_filters=8, stem_kernel=5, stage_filters=(8, 12, 16), blocks_per_stage=2, kernel=5, dropout=0.0)
RECORDS = ["A00001", "A00002", "A00003", "A00004", "A00005", "A00093"]


@pytest.fixture(scope="module")
def resnet_model_dir(tmp_path_factory, cinc2017_dir):
    """The residual network trained for 2 epochs on 64 real CinC 2017 records by `ecgrhythm train --network-config`."""
    from ecgrhythm.cli import main

    out = tmp_path_factory.mktemp("models") / "resnet"
    pre, tc = TINY_PREPROCESS, TINY_TRAIN
    args = ["train", "--data", str(cinc2017_dir), "--output", str(out), "--limit", "64", "--epochs", str(tc.epochs), "--quiet"]
    args += ["--batch-size", str(tc.batch_size), "--window", str(tc.window_s), "--fs", str(pre.fs), "--seed", str(tc.seed)]
    args += ["--val-fraction", str(tc.val_fraction)]
    args += ["--network-config", json.dumps(TINY_RESNET.to_dict())]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def resnet_clf(resnet_model_dir):
    return RhythmClassifier.load(resnet_model_dir)


def test_resnet_config_checks_its_fields_and_shortens_by_its_stem_and_stages():
    from ecgrhythm.networks.registry import config_from_dict

    assert TINY_RESNET.downsampling == 2 * 2**3 and ResNetConfig().downsampling == 2 * 2**5
    assert config_from_dict(json.loads(json.dumps(TINY_RESNET.to_dict()))) == TINY_RESNET
    with pytest.raises(ValueError, match=r"`blocks_per_stage`: expected an integer from 1 to 4. Received: blocks_per_stage=5"):
        ResNetConfig(blocks_per_stage=5)
    with pytest.raises(ValueError, match="at most 1024 for stem_pool"):
        ResNetConfig(stem_pool=4, stage_filters=(8,) * 9)


def test_the_default_resnet_has_22_convolutional_layers_in_11_residual_blocks():
    model = build_resnet_classifier(1, 4)
    blocks = [layer for layer in model.layers if layer.name == "stem" or layer.name.startswith("block_")]
    assert len(blocks) == 11 and [b.pool_size for b in blocks] == [2] + [1, 2] * 5
    assert [b.filters for b in blocks] == [16, 16, 16, 24, 24, 32, 32, 48, 48, 64, 64]


def test_a_resnet_trained_from_the_command_line_records_its_family(resnet_model_dir, resnet_clf):
    config = json.loads((resnet_model_dir / "config.json").read_text())
    assert config["model"]["network"] == "resnet" and resnet_clf.architecture_ == TINY_RESNET
    assert resnet_clf.model_.name == "ecgrhythm_resnet" and all(b % 16 == 0 for b in resnet_clf.buckets_)
    assert config["metadata"]["parameters"] == resnet_clf.model_.count_params() == build_resnet_classifier(1, 4, TINY_RESNET).count_params()


def test_padding_never_changes_a_resnet_prediction(resnet_clf, cinc2017_dir):
    assert_padding_changes_nothing(resnet_clf, cinc2017_dir, 16)


def test_a_resnet_exports_to_onnx_within_the_parity_tolerance_and_classifies_alike(resnet_model_dir, resnet_clf, cinc2017_dir, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnx

    from ecgrhythm.export.onnx import PARITY_TOLERANCE, export_onnx

    path, difference = export_onnx(resnet_model_dir, tmp_path / "resnet.onnx")
    assert difference <= PARITY_TOLERANCE
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"Conv", "BatchNormalization", "Add"} <= ops and not ops & {"LSTM", "GRU"}
    onnx_clf = RhythmClassifier.load(path)
    paths = [cinc2017_dir / f"{n}.hea" for n in RECORDS]
    expected, got = resnet_clf.predict_records(paths), onnx_clf.predict_records(paths)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=1e-4, rtol=0)
    assert got.labels == expected.labels


def test_network_config_refuses_bad_json_and_the_cnn_lstm_options_beside_it(cinc2017_dir, tmp_path, capsys):
    from ecgrhythm.cli import main

    base = ["train", "--data", str(cinc2017_dir), "--output", str(tmp_path / "m"), "--limit", "8", "--epochs", "1"]
    assert main([*base, "--network-config", "{resnet}"]) == 2
    assert "--network-config: not JSON" in capsys.readouterr().err
    assert main([*base, "--network-config", '{"network": "resnet", "kernel": 99}']) == 2
    assert "`kernel`: expected an integer from 1 to 31" in capsys.readouterr().err
    for size in (["--lstm-units", "8"], ["--lstm-units", "64"], ["--unidirectional"]):  # 64 is the default: refused all the same
        assert main([*base, "--network-config", '{"network": "resnet"}', *size]) == 2
        assert f"--network-config replaces {size[0]}: give one or the other" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
