"""A model folder of untrained networks shaped like a trained one, to measure an architecture's speed before training it.

Inference costs the same whatever the weights, so `classify_throughput.py` on this folder tells whether a
candidate architecture (`--lstm-units`, `--lstm-layers`) in an ensemble of `--networks` networks keeps the
classification rate before hours go into cross-validating and training it. Its predictions mean nothing.

Example (three networks of 128 LSTM units per direction, then their throughput):
    python benchmarks/untrained_model.py --like models/cinc2017 --lstm-units 128 --networks 3 --output /tmp/untrained128
    python benchmarks/classify_throughput.py --data ../shared/data/cinc2017 --model /tmp/untrained128 --n 1279
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from _common import fail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--like", required=True, help="trained model folder whose classes, preprocessing and architecture to copy")
    parser.add_argument("--lstm-units", type=int, help="LSTM units per direction instead of --like's (a CNN + LSTM folder)")
    parser.add_argument("--lstm-layers", type=int, help="LSTM layers instead of --like's (a CNN + LSTM folder)")
    parser.add_argument("--networks", type=int, default=1, help="networks in the folder, 1 to the ensemble limit (default %(default)s)")
    parser.add_argument("--output", required=True, help="model folder to write (a new folder)")
    args = parser.parse_args()
    like, output = Path(args.like), Path(args.output)
    if not (like / "config.json").is_file():
        fail(f"--like {like}: not a model folder (no config.json)")
    if output.exists():
        fail(f"--output {output}: exists; choose a new folder")

    import keras

    from ecgrhythm.config import PreprocessConfig
    from ecgrhythm.networks.registry import build_network, config_from_dict
    from ecgrhythm.networks.saving import MAX_MEMBERS, assemble_ensemble, save_model_dir

    if not 1 <= args.networks <= MAX_MEMBERS:
        fail(f"--networks {args.networks}: expected 1 to {MAX_MEMBERS}")

    config = json.loads((like / "config.json").read_text(encoding="utf-8"))
    changes = {"lstm_units": args.lstm_units, "lstm_layers": args.lstm_layers}
    architecture = config_from_dict({**config["model"], **{k: v for k, v in changes.items() if v is not None}})  # LSTM options: a CNN + LSTM
    preprocess = PreprocessConfig.from_dict(config["preprocess"])
    with tempfile.TemporaryDirectory(prefix="ecgrhythm-untrained-") as tmp:
        folders = []
        for seed in range(args.networks):
            keras.utils.set_random_seed(seed)
            network = build_network(preprocess.n_channels(config["n_leads"]), len(config["classes"]), architecture)
            folders.append(Path(tmp) / f"network{seed}")
            save_model_dir(network, folders[-1], classes=config["classes"], preprocess=preprocess, architecture=architecture)
        assemble_ensemble(folders, output)  # also of one network: the folder is written whole, as any model folder
    print(f"{args.networks} untrained network(s) of {network.count_params():,} parameters each written to {output}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
