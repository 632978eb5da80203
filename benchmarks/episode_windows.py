"""The episode finder's window probabilities on a long 2-lead record: which networks, at what cost.

The record is synthesised as in `long_record.py` (the cpsc2021 sample records joined end to end, `--hours` long,
in a temporary folder); its lead I is held in memory and the windows of the default episode settings
(`EpisodeParams`: window, hop and batch) are classified by
`ecgrhythm.episodes.windows.iter_window_probabilities`, in process, each variant once after a short warm-up:

- `windows_only`: the windows cut and preprocessed, no network (the classifier's `predict_prepared` replaced by zeros);
- `first_network`: the default, the folder's first network alone (a folder of one network: its graph; of several,
  its `first_network.onnx`);
- `first_network_from_whole_graph` (a folder of several networks): the same probabilities from the whole graph's
  `first_probabilities` (what ran before `first_network.onnx`: onnxruntime runs every node whatever outputs are fetched);
- `ensemble`: the mean of all the networks (`EpisodeParams(networks=None)`), the whole graph (a folder of several networks);
- `ensemble_batch_64`: all the networks (one: that network) with 64 windows per onnxruntime call instead of 16;
- `ensemble_int8`: the whole graph with its LSTM and MatMul operators quantised to int8
  (`benchmarks/graph_variants.py`; not shipped).

Each gives its seconds and the seconds scaled to 24 hours, and, against `first_network`, the largest difference
of the windows' AF probability. Prints one JSON line; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/episode_windows.py --data ../shared/data/cpsc2021-sample --model models/cinc2017 --hours 2
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, fail, machine
from long_record import write_long_record


def windows(clf, signal, fs, params):
    """The windows' probabilities `(n_windows, n_classes)` and the seconds they took."""
    import numpy as np

    from ecgrhythm.episodes.windows import iter_window_probabilities

    start = time.perf_counter()
    rows = [p for _, _, p in iter_window_probabilities(clf, [signal], fs, params=params)]
    return np.asarray(rows), time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/cpsc2021-sample", help="folder of 2-lead 200 Hz WFDB records (default %(default)s)")
    p.add_argument("--model", default="models/cinc2017", help="model folder carrying model.onnx and first_network.onnx (default %(default)s)")
    p.add_argument("--hours", type=float, default=2.0, help="length of the synthesised record (default %(default)s)")
    p.add_argument("--output", metavar="FILE.json", help="also write the result here")
    args = p.parse_args(argv)
    if not Path(args.data).is_dir():
        fail(f"--data {args.data}: not a folder; pass the cpsc2021 sample folder")

    import numpy as np
    from graph_variants import INT8, quantise

    from ecgrhythm.episodes.params import DEFAULT_PARAMS
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.inference.onnx_backend import GRAPH_FILE
    from ecgrhythm.records import read_record

    clf = RhythmClassifier.load(args.model)
    several = clf.n_networks_ > 1
    if several and getattr(clf.backend_, "first_network", None) is None:
        fail(f"--model {args.model}: no first_network.onnx; write it with 'ecgrhythm export --model {args.model} --networks 1 --output ...'")
    with tempfile.TemporaryDirectory(prefix="ecgrhythm-windows-") as tmp:
        record = read_record(write_long_record(Path(args.data), Path(tmp), args.hours))
        signal, fs = record.signal[:, 0].copy(), record.fs
        del record
        int8 = RhythmClassifier.load(quantise(Path(args.model) / GRAPH_FILE, Path(tmp) / "int8.onnx", INT8["int8_lstm_matmul"]))
        ensemble = dataclasses.replace(DEFAULT_PARAMS, networks=None)
        windows(clf, signal[: round(120 * fs)], fs, DEFAULT_PARAMS)  # warm-up: imports, first calls
        result = {"benchmark": "episode_windows", "hours": args.hours, "params": dataclasses.asdict(DEFAULT_PARAMS), "variants": {}}
        first, _ = windows(clf, signal[: round(600 * fs)], fs, DEFAULT_PARAMS)  # the reference of the comparisons, first 10 minutes

        def run(name, classifier, params, *, zeros=False):
            if zeros:
                classifier = RhythmClassifier.load(args.model)
                classifier.predict_prepared = lambda signals, **_: np.zeros((len(signals), len(clf.classes_)))
            probs, seconds = windows(classifier, signal, fs, params)
            af = clf.classes_.index("A")
            result["variants"][name] = {
                "seconds": round(seconds, 2),
                "seconds_per_24_h": round(seconds * 24 / args.hours, 1),
                "windows": len(probs),
                **(
                    {} if zeros else {"max_af_probability_difference_from_first_network": float(np.abs(probs[: len(first), af] - first[:, af]).max())}
                ),
            }
            print(name, result["variants"][name], file=sys.stderr, flush=True)

        result["load_average_1m_before"] = round(os.getloadavg()[0], 2)
        run("windows_only", clf, DEFAULT_PARAMS, zeros=True)
        run("first_network", clf, DEFAULT_PARAMS)
        if several:
            alone, clf.backend_.first_network = clf.backend_.first_network, None
            run("first_network_from_whole_graph", clf, DEFAULT_PARAMS)
            clf.backend_.first_network = alone
            run("ensemble", clf, ensemble)
        clf.batch_size = 64
        run("ensemble_batch_64", clf, ensemble)
        run("ensemble_int8", int8, ensemble)
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    result["machine"] = machine()
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
