"""Exported files that lie (issue #37, items 3, 4 and 5): metadata numbers out of bounds or disagreeing with the
file's config.json are refused at load; a network of zeros gives no label; SIGTERM stops a graph that loops for ever."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ecgrhythm.cli import main
from ecgrhythm.inference.classifier import NonFiniteOutputError, RhythmClassifier
from ecgrhythm.inference.onnx_backend import OnnxModelError, read_onnx_metadata
from ecgrhythm.inference.onnx_metadata import OUTPUT
from ecgrhythm.records import read_record

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402


def _rewrite(src, dst, meta=None, graph=None):
    """A copy of the exported file `src` at `dst`: metadata keys replaced by `meta`, the graph edited by `graph(model.graph)`."""
    model = onnx.load(src)
    if graph is not None:
        graph(model.graph)
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    for key, value in (meta or {}).items():
        props[key] = value(props) if callable(value) else value
    helper.set_model_props(model, {key: json.dumps(value) for key, value in props.items()})
    onnx.save(model, dst)
    return dst


def _after_output(graph, nodes, initializers=()):
    """Compute the graph's `probabilities` by `nodes` from the networks' own output, renamed `raw`."""
    for node in graph.node:
        node.output[:] = ["raw" if name == OUTPUT else name for name in node.output]
    graph.initializer.extend(initializers)
    graph.node.extend(nodes)


def _zeros(graph):
    """The network's output times 0: probabilities of exactly 0 (a class prior then divides 0 by 0)."""
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    _after_output(graph, [helper.make_node("Mul", ["raw", "zero"], [OUTPUT])], [zero])


def _endless_loop(graph):
    """The network's output passed through a Loop of 2**62 iterations that changes nothing."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None),
        ],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)],
    )
    trips = helper.make_tensor("trips", TensorProto.INT64, [], [2**62])
    true = helper.make_tensor("true", TensorProto.BOOL, [], [True])
    _after_output(graph, [helper.make_node("Loop", ["trips", "true", "raw"], [OUTPUT], body=body)], [trips, true])


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"networks": 10**9, "outputs": {OUTPUT: 10**9}}, r"invalid metadata: Invalid argument `networks`: expected an integer from 1 to 5"),
        ({"networks": 1e9}, r"invalid metadata: Invalid argument `networks`"),
        (
            {"config.json": lambda p: {**p["config.json"], "model": {**p["config.json"]["model"], "conv_filters": [8] * 27}}},
            r"invalid metadata: Invalid argument `conv_filters`: expected a list of 1 to 10",
        ),
        ({"config.json": lambda p: {**p["config.json"], "n_leads": 10**9}}, r"invalid metadata: Invalid argument `n_leads`"),
        ({"buckets": [10**12]}, r"its metadata's \['buckets'\] differ from those its config.json gives"),
        ({"fs": 1e9, "downsampling": 2**27}, r"its metadata's \['fs', 'downsampling'\] differ"),
    ],
)
def test_metadata_that_asks_for_too_much_is_refused_at_load(onnx_file, tmp_path, meta, message):
    hostile = _rewrite(onnx_file, tmp_path / "hostile.onnx", meta)
    with pytest.raises(OnnxModelError, match=f"hostile.onnx: {message}"):
        RhythmClassifier.load(hostile)
    with pytest.raises(OnnxModelError, match=message):
        read_onnx_metadata(hostile)


def test_a_network_of_zeros_gives_no_label(onnx_file, tmp_path, cinc2017_dir, capsys):
    prior = [0.25, 0.25, 0.25, 0.25]
    zeros = _rewrite(
        onnx_file, tmp_path / "zeros.onnx", {"class_prior": prior, "config.json": lambda p: {**p["config.json"], "class_prior": prior}}, _zeros
    )
    clf = RhythmClassifier.load(zeros)
    signal_ = clf.prepare(read_record(cinc2017_dir / "A00001.hea"))
    with pytest.raises(
        NonFiniteOutputError, match=r"invalid \(not in \[0, 1\], or not summing to 1\) probabilities \(\[0.0, 0.0, 0.0, 0.0\]\) after the networks"
    ):
        clf.predict_prepared([signal_])
    out = tmp_path / "out.csv"
    assert main(["classify", str(cinc2017_dir / "A00001.hea"), "--model", str(zeros), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert "A00001" in err and "invalid (not in [0, 1], or not summing to 1) probabilities" in err
    assert not out.exists() or "A00001" not in out.read_text()  # no row, no label


def test_a_non_finite_calibration_fails_the_record(onnx_file, cinc2017_dir, monkeypatch):
    clf = RhythmClassifier.load(onnx_file)
    signal_ = clf.prepare(read_record(cinc2017_dir / "A00001.hea"))
    assert np.isfinite(clf.predict_prepared([signal_])).all()
    monkeypatch.setattr(clf, "calibrate", lambda p: p / 0.0 * 0.0)  # 0/0 and inf*0: NaN after the calibration
    with np.errstate(all="ignore"), pytest.raises(NonFiniteOutputError, match=r"non-finite probabilities .* after the calibration"):
        clf.predict_prepared([signal_])


def test_sigterm_stops_a_graph_that_loops_for_ever_and_leaves_no_temporary_file(onnx_file, tmp_path, cinc2017_dir):
    looping = _rewrite(onnx_file, tmp_path / "loop.onnx", graph=_endless_loop)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    command = [sys.executable, "-m", "ecgrhythm.cli", "classify", str(cinc2017_dir / "A00001.hea"), "--model", str(looping)]
    proc = subprocess.Popen(
        [*command, "--output", str(out_dir / "x.csv")], stderr=subprocess.PIPE, text=True, env={**os.environ, "KERAS_BACKEND": "jax"}
    )
    try:
        for _ in range(1200):  # the output's temporary file is open while the records are classified
            if list(out_dir.iterdir()) or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None and [p.name for p in out_dir.iterdir()][0].endswith(".tmp"), proc.stderr.read() if proc.poll() else ""
        time.sleep(1)  # well inside the Loop by now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM  # before: ran on, ignoring SIGTERM, until SIGKILL
    finally:
        proc.kill()
    assert "ecgrhythm: terminated" in proc.stderr.read()
    assert list(out_dir.iterdir()) == []  # the temporary output was removed
