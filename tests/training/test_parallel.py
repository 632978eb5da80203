"""Data-parallel training over two forced host devices, and over two processes (subprocesses: JAX must start afresh)."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import TINY_CLI

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from ecgrhythm.config import PreprocessConfig, TrainConfig
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.networks.cnn_lstm import ModelConfig
    from ecgrhythm.training.parallel import data_parallel, resolve_devices
    from ecgrhythm.training.plan import compile_network
    from ecgrhythm.training.trainer import train

    data, out = sys.argv[1], sys.argv[2]
    devices = resolve_devices(2)
    kw = dict(preprocess_config=PreprocessConfig(fs=100.0), model_config=ModelConfig(conv_filters=(8, 8, 16, 16), lstm_units=8, dropout=0.0),
              train_config=TrainConfig(epochs=2, batch_size=16, window_s=10.0, val_fraction=0.25, seed=0), limit=64, verbose=0, devices=devices)
    with data_parallel(devices):
        net = compile_network(1, 4, kw["model_config"], kw["train_config"])
        spread = len(net.trainable_variables[0].value.sharding.device_set)

    class Stop(Exception):
        pass

    def stop(row):
        raise Stop

    whole = train(data, out + "/whole", **kw)
    try:
        train(data, out + "/broken", on_epoch=stop, **kw)
    except Stop:
        pass
    resumed = train(data, out + "/broken", resume=True, **kw)
    a, b = (RhythmClassifier.load(out + name) for name in ("/whole", "/broken"))
    same = all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.model_.weights, b.model_.weights, strict=True))
    probs = a.predict_records([data + "/A00001.hea", data + "/A00002.hea"]).probabilities
    meta = json.load(open(out + "/whole/config.json"))["metadata"]
    print(json.dumps({"devices": devices, "spread": spread, "same": same, "scores": [whole.best_score, resumed.best_score],
                      "epochs": [len(whole.history), len(resumed.history)], "probs": probs.tolist(), "meta_devices": meta["devices"]}))
""")


def _env(**extra):
    return {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "ECGRHYTHM_JAX_CACHE": "off", **extra}


def test_data_parallel_run_over_two_host_devices_resumes_to_the_uninterrupted_result(tmp_path, cinc2017_dir):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(cinc2017_dir), str(tmp_path)], env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["devices"] == ["cpu:0", "cpu:1"] and got["spread"] == 2 and got["meta_devices"] == 2
    assert got["epochs"] == [2, 2] and got["scores"][0] == got["scores"][1]
    assert got["same"], "the resumed data-parallel run has other weights than the uninterrupted one"
    probs = [row for row in got["probs"]]
    assert len(probs) == 2 and all(abs(sum(row) - 1) < 1e-4 and min(row) >= 0 for row in probs)


@pytest.mark.parametrize(
    "devices, message", [("3", "only 2 device(s) are visible"), ("two", "expected 'auto' or a positive integer. Received: devices='two'")]
)
def test_devices_the_machine_does_not_have_are_refused_before_training(tmp_path, cinc2017_dir, devices, message):
    cmd = [sys.executable, "-m", "ecgrhythm.cli", "train", "--data", str(cinc2017_dir), "--output", str(tmp_path / "m"), "--devices", devices]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and f"Invalid argument `devices`: {message}" in result.stderr
    assert not (tmp_path / "m").exists()


TINY_ARGS = [*TINY_CLI, "--val-fraction", "0.25", "--seed", "0"]


def _gloo_available() -> bool:
    """Whether this jaxlib has gloo, the CPU collectives that processes on CPUs exchange gradients with."""
    from jax._src.lib import _jax

    return hasattr(_jax, "make_gloo_tcp_collectives")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not _gloo_available(), reason="this jaxlib has no gloo CPU collectives, so CPU processes cannot train together")
def test_two_processes_train_the_model_of_one_process_over_two_devices(tmp_path, cinc2017_dir):
    """Two local processes of one CPU device each train exactly what one process does over two forced devices."""
    recipe = ["train", "--data", str(cinc2017_dir), "--limit", "48", "--epochs", "1", "--batch-size", "16", "--quiet", *TINY_ARGS]
    alone = {k: v for k, v in _env().items() if k != "XLA_FLAGS"}  # one CPU device per process
    coordinator = f"localhost:{_free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ecgrhythm.cli", *recipe, "--output", str(tmp_path / "multi"), "--coordinator", coordinator]
            + ["--num-processes", "2", "--process-id", str(i)],
            env=alone,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    single = subprocess.run(
        [sys.executable, "-m", "ecgrhythm.cli", *recipe, "--output", str(tmp_path / "single"), "--devices", "2"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        outputs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert single.returncode == 0, single.stderr[-3000:]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "model written to" in outputs[0][0] and "process 0 wrote the model" in outputs[1][0]
    assert (
        outputs[0][0].splitlines()[-1].split(";")[0] == outputs[1][0].splitlines()[-1].split(";")[0] == single.stdout.splitlines()[-1].split(";")[0]
    )

    from ecgrhythm.inference.classifier import RhythmClassifier

    multi, one = RhythmClassifier.load(tmp_path / "multi"), RhythmClassifier.load(tmp_path / "single")
    for a, b in zip(multi.model_.weights, one.model_.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    record = [cinc2017_dir / "A00001.hea"]
    np.testing.assert_allclose(multi.predict_records(record).probabilities, one.predict_records(record).probabilities, atol=1e-6)
    assert json.loads((tmp_path / "multi" / "config.json").read_text())["metadata"]["devices"] == 2


@pytest.mark.parametrize(
    "options, message",
    [
        (["--coordinator", "localhost:1234"], "--coordinator, --num-processes and --process-id go together"),
        (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], "expected HOST:PORT"),
        (["--coordinator", "localhost:1234", "--num-processes", "2", "--process-id", "2"], "0 <= process id < number of processes"),
    ],
)
def test_a_multi_host_run_named_incompletely_is_refused_before_joining(tmp_path, cinc2017_dir, options, message):
    cmd = [sys.executable, "-m", "ecgrhythm.cli", "train", "--data", str(cinc2017_dir), "--output", str(tmp_path / "m"), *options]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "m").exists()
