"""Fitting the R-R tagger (:mod:`ecgrhythm.episodes.rr_tagger`) and writing its ONNX graph.

The training beats come from long records joined from CinC 2017 records (:func:`~ecgrhythm.lab.episode_data.joined_records`,
seed 0): records `skip` onwards of that draw, so that the first `skip` (12), on which the episode scores are measured
(`scripts/episode_settings_crossfit.py`), share no source record with them. Each beat is AF when it lies in a source
record labelled A. A beat's inputs are :func:`~ecgrhythm.episodes.rr_tagger.tagger_inputs` of the record's beats mirrored
about its ends (:func:`~ecgrhythm.episodes.rr_tagger.mirrored`, the truth alike), standardised by their means and
spreads over the training beats.

The network: two bidirectional GRU layers of 16 units a direction and a dense output per beat (its AF log-odds),
trained with binary cross-entropy on stretches of :data:`TRAIN_BEATS` beats taken at half-overlapping steps from a
random offset each epoch, with one more at each end of a record, Adam at 3e-3, seeded. :func:`write_tagger_onnx` writes it as ONNX operators (the
standardisation, two `GRU` operators, `MatMul`), checked against the Keras network on a real record's beats.
"""

from __future__ import annotations

import numpy as np

from ecgrhythm.episodes.beats import record_beats
from ecgrhythm.episodes.rr_tagger import INPUT, INPUT_NAMES, OUTPUT, mirrored, tagger_inputs
from ecgrhythm.lab.episode_data import CINC_DIR, joined_records
from ecgrhythm.scoring.episodes import in_intervals

__all__ = ["training_beats", "fit_tagger", "write_tagger_onnx", "UNITS", "TRAIN_BEATS"]

UNITS = 16
TRAIN_BEATS = 128


def training_beats(n_records: int = 80, *, skip: int = 12, seed: int = 0, data_dir=CINC_DIR) -> list[tuple[np.ndarray, np.ndarray]]:
    """`(inputs (n_beats, len(INPUT_NAMES)), AF truth (n_beats,) bool)` of each training record (see the module docstring),
    from the CinC 2017 records of `data_dir`."""
    out = []
    for record in joined_records(skip + n_records, seed=seed, data_dir=data_dir)[skip:]:
        beats = record_beats(lambda a, b, x=record.signal: x[a:b], record.fs, len(record.signal))
        truth = in_intervals(beats, record.af_intervals())
        out.append((tagger_inputs(mirrored(beats), record.fs), mirrored(truth)))  # as the tagger reads a record
    return out


def _stretches(records, rng) -> tuple[np.ndarray, np.ndarray]:
    """Stretches of `TRAIN_BEATS` beats of every record (one at least `TRAIN_BEATS` long): half-overlapping from a random
    offset, and one at each end, so that every beat, the mirrored ends' too, is in a stretch every epoch."""
    xs, ys = [], []
    for x, y in records:
        offset = int(rng.integers(0, TRAIN_BEATS // 2))
        last = len(x) - TRAIN_BEATS
        for start in sorted({0, *range(offset, last + 1, TRAIN_BEATS // 2), last}):
            xs.append(x[start : start + TRAIN_BEATS])
            ys.append(y[start : start + TRAIN_BEATS])
    return np.stack(xs), np.stack(ys).astype(np.float32)[..., None]


def fit_tagger(records, *, epochs: int = 15, seed: int = 0, verbose: bool = False):
    """The Keras tagger fitted on `records` (from :func:`training_beats`), and the inputs' `(mean, scale)`."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = np.concatenate([x for x, _ in records])
    mean, scale = inputs.mean(axis=0), inputs.std(axis=0) + 1e-6
    standard = [((x - mean) / scale, y) for x, y in records]
    signal = keras.Input((None, len(INPUT_NAMES)), name=INPUT)
    h = signal
    for i in range(2):
        h = keras.layers.Bidirectional(keras.layers.GRU(UNITS, return_sequences=True), name=f"gru_{i}")(h)
    model = keras.Model(signal, keras.layers.Dense(1, name="logit")(h))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        x, y = _stretches(standard, rng)
        loss = model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=True).history["loss"][-1]
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f}", flush=True)
    return model, (mean.astype(np.float32), scale.astype(np.float32))


def write_tagger_onnx(model, standardisation, check_inputs: np.ndarray, tolerance: float = 1e-4) -> bytes:
    """The tagger as an ONNX model (input `features` `(batch, beats, n_inputs)`, output `logit` `(batch, beats)`), its
    output checked against the Keras network's on `check_inputs` `(n_beats, n_inputs)` (RuntimeError past `tolerance`)."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from ecgrhythm.export.onnx import checked_model
    from ecgrhythm.networks.gru import gru_weights
    from ecgrhythm.networks.onnx_graph import OnnxGraph, recurrent

    g = OnnxGraph(helper, numpy_helper)
    mean, scale = standardisation
    x = g.op("Div", [g.op("Sub", [INPUT, g.const(mean, "mean")]), g.const(scale, "scale")], "standard")
    x = g.op("Transpose", [x], "time_major", perm=[1, 0, 2])  # (beats, batch, inputs)
    for i in range(2):
        layer = model.get_layer(f"gru_{i}")
        w, r, b = (np.concatenate(parts) for parts in zip(gru_weights(layer.forward_layer), gru_weights(layer.backward_layer)))
        x = recurrent(g, "GRU", x, (w, r, b), "", "bidirectional", linear_before_reset=1)  # "": every step of every row
    dense = model.get_layer("logit")
    logit = g.op("Add", [g.op("MatMul", [x, g.const(np.asarray(dense.kernel), "w")]), g.const(np.asarray(dense.bias), "b")])
    logit = g.op("Transpose", [g.op("Squeeze", [logit, g.const([2], "axis", np.int64)])], perm=[1, 0])
    g.nodes.append(helper.make_node("Identity", [logit], [OUTPUT]))
    graph = helper.make_graph(
        g.nodes,
        "ecgrhythm_rr_tagger",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", "beats", len(INPUT_NAMES)])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", "beats"])],
        g.initializers,
    )
    data = checked_model(graph).SerializeToString()
    batch = check_inputs[None].astype(np.float32)
    expected = np.asarray(model.predict_on_batch((batch - mean) / scale))[..., 0]
    got = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run([OUTPUT], {INPUT: batch})[0]
    difference = float(np.max(np.abs(got - expected)))
    if not difference <= tolerance:
        raise RuntimeError(f"the tagger's ONNX graph differs from the Keras network by {difference:.2e} (more than {tolerance:.0e})")
    return data
