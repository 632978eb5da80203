"""The `ecgrhythm` command: train, evaluate, classify, download.

The CLI only parses arguments, builds configs and calls the library; errors
reach the user as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]

logger = logging.getLogger("ecgrhythm")


def _add_train(sub):
    from .config import ModelConfig, PreprocessConfig, TrainConfig

    p = sub.add_parser("train", help="train a model on a labelled folder")
    p.add_argument("--data", help="folder with records and REFERENCE.csv (default: the shared CinC 2017 data)")
    p.add_argument("--output", required=True, help="model folder to write")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUTPUT/checkpoint")
    p.add_argument("--limit", type=int, help="use only the first N labelled records (quick runs)")
    t, m, q = TrainConfig(), ModelConfig(), PreprocessConfig()
    p.add_argument("--epochs", type=int, default=t.epochs)
    p.add_argument("--batch-size", type=int, default=t.batch_size)
    p.add_argument("--window", type=float, default=t.window_s, help="training window in seconds (default %(default)s)")
    p.add_argument("--learning-rate", type=float, default=t.learning_rate)
    p.add_argument("--patience", type=int, default=t.patience)
    p.add_argument("--val-fraction", type=float, default=t.val_fraction)
    p.add_argument("--class-weighting", choices=["balanced", "none"], default=t.class_weighting)
    p.add_argument("--seed", type=int, default=t.seed)
    p.add_argument("--fs", type=float, default=q.fs, help="model sampling rate in Hz (default %(default)s)")
    p.add_argument("--normalization", choices=["zscore", "minmax", "robust", "none"], default=q.normalization)
    p.add_argument("--bandpass", type=float, nargs=2, metavar=("LOW", "HIGH"), help="band-pass filter in Hz (default: none)")
    p.add_argument("--conv-filters", default=",".join(map(str, m.conv_filters)), help="filters per conv block, comma-separated")
    p.add_argument("--conv-kernel", type=int, default=m.conv_kernel)
    p.add_argument("--lstm-layers", type=int, default=m.lstm_layers)
    p.add_argument("--lstm-units", type=int, default=m.lstm_units)
    p.add_argument("--unidirectional", action="store_true", help="one-directional LSTM layers")
    p.add_argument("--dropout", type=float, default=m.dropout)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_train(args):
    from .config import ModelConfig, PreprocessConfig, TrainConfig
    from .training import train

    pre = PreprocessConfig(fs=args.fs, normalization=args.normalization, bandpass=tuple(args.bandpass) if args.bandpass else None)
    arch = ModelConfig(
        conv_filters=tuple(int(v) for v in args.conv_filters.split(",")),
        conv_kernel=args.conv_kernel,
        lstm_layers=args.lstm_layers,
        lstm_units=args.lstm_units,
        bidirectional=not args.unidirectional,
        dropout=args.dropout,
    )
    tc = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, window_s=args.window, learning_rate=args.learning_rate,
        patience=args.patience, val_fraction=args.val_fraction, class_weighting=args.class_weighting, seed=args.seed,
    )
    result = train(_data_dir(args.data), args.output, preprocess_config=pre, model_config=arch, train_config=tc,
                   resume=args.resume, limit=args.limit, verbose=0 if args.quiet else 1)
    print(f"best validation CinC score {result.best_score:.4f} at epoch {result.best_epoch}; model written to {result.model_dir}")
    return 0


def _data_dir(given, subset="cinc2017"):
    from pathlib import Path

    from .config import default_data_dir

    if given:
        return Path(given)
    root = default_data_dir()
    if root is None:
        raise SystemExit(f"ecgrhythm: no data folder given and no default found: pass --data, or fetch the data with 'ecgrhythm download {subset} DIR'")
    return root / subset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgrhythm", description="Classify ECG recordings into rhythm classes with Keras LSTM networks.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import ecgrhythm  # noqa: F401  (selects the Keras backend)

    runners = {"train": _run_train}
    try:
        return runners[args.command](args)
    except KeyboardInterrupt:
        print("ecgrhythm: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        print(f"ecgrhythm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
