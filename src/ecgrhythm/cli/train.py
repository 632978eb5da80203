"""`ecgrhythm train`: train a model on a labelled folder."""

from __future__ import annotations

import ecgrhythm.cli.common as common


def add_parser(sub):
    p = sub.add_parser(
        "train",
        help="train a model on a labelled folder",
        description="Train a CNN + LSTM network on the labelled records of a folder (REFERENCE.csv, or SNOMED-CT codes in "
        "the headers) and write a model folder that 'classify', 'episodes', 'evaluate', 'export' and 'serve' take with --model. "
        "A share of the records is held out for validation (its names in split.json); the epoch with the best validation "
        "score is kept. An interrupted run continues with --resume. Per-epoch lines go to standard output, with Keras' "
        "progress bar on a terminal and one plain line per epoch otherwise (a log file gets no terminal codes).",
    )
    p.add_argument(
        "--data",
        help="folder of labelled records: REFERENCE.csv (one label each) or SNOMED-CT 'Dx:' codes in the headers (several); default: the shared CinC 2017 data",
    )
    p.add_argument("--output", required=True, help="model folder to write: a new or empty folder, or a model folder (its other files are kept)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUTPUT/checkpoint")
    add_recipe_options(p)
    p.add_argument(
        "--devices",
        default=None,
        metavar="N|auto",
        help="train data-parallel over N devices (or all: auto), each batch "
        "split across them; on a CPU force N host devices with XLA_FLAGS=--xla_force_host_platform_device_count=N",
    )
    several = p.add_argument_group("several hosts", "run the same command on every host, each with its own --process-id")
    several.add_argument("--coordinator", metavar="HOST:PORT", help="join a multi-host run: process 0 listens at this address (default: one process)")
    several.add_argument("--num-processes", type=int, metavar="N", help="processes (hosts) in the run, with --coordinator")
    several.add_argument("--process-id", type=int, metavar="I", help="this process, 0 to N-1 (0 writes the model), with --coordinator")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")


def add_recipe_options(p):
    """The options of a training recipe (labels, preprocessing, network, training), shared with `crossval`."""
    from ecgrhythm.config import AUGMENTATIONS, CLASS_WEIGHTINGS, MAX_MODEL_FS, NORMALIZATIONS, PreprocessConfig, TrainConfig
    from ecgrhythm.networks.cnn_lstm import ModelConfig
    from ecgrhythm.records.labels import label_source_names

    p.add_argument(
        "--labels",
        choices=label_source_names(),
        default="auto",
        help="label source (default: REFERENCE.csv if the folder has one, else header codes)",
    )
    p.add_argument(
        "--classes",
        default=None,
        help="header codes: 'all' (default), 'scored', or a comma-separated list of abbreviations or codes; REFERENCE.csv: the label set (default N,A,O,~)",
    )
    p.add_argument(
        "--unlabelled",
        choices=["drop", "keep"],
        default="drop",
        help="header codes: leave out records with none of the classes (default) or keep them as all-negative",
    )
    p.add_argument("--leads", default=None, help="comma-separated lead names to use (default: every lead of the first record)")
    p.add_argument("--limit", type=int, help="use only the first N labelled records (quick runs)")
    t, m, q = TrainConfig(), ModelConfig(), PreprocessConfig()
    p.add_argument("--epochs", type=int, default=t.epochs)
    p.add_argument("--batch-size", type=int, default=t.batch_size)
    p.add_argument("--window", type=float, default=t.window_s, help="training window in seconds (default %(default)s; unused with --fixed-length)")
    p.add_argument("--learning-rate", type=float, default=t.learning_rate)
    p.add_argument(
        "--patience",
        type=int,
        default=t.patience,
        help="stop after N epochs without a better validation score (default: train every epoch and keep the best)",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=t.val_fraction,
        help="share of records held out for validation (default %(default)s); 0 trains on every record for all --epochs "
        "and keeps the last epoch (choose --epochs by crossval)",
    )
    p.add_argument("--class-weighting", choices=CLASS_WEIGHTINGS, default=t.class_weighting)
    p.add_argument("--seed", type=int, default=t.seed)
    p.add_argument(
        "--augment",
        default="",
        metavar="NAMES",
        help=f"comma-separated augmentations of the training windows: {', '.join(AUGMENTATIONS)} (default: none)",
    )
    p.add_argument("--fs", type=float, default=q.fs, help=f"model sampling rate in Hz, at most {MAX_MODEL_FS:,.0f} (default %(default)s)")
    p.add_argument("--normalization", choices=NORMALIZATIONS, default=q.normalization)
    band = p.add_mutually_exclusive_group()
    band.add_argument(
        "--bandpass", type=float, nargs=2, metavar=("LOW", "HIGH"), default=q.bandpass, help="band-pass filter in Hz (default: %(default)s)"
    )
    band.add_argument("--no-bandpass", dest="bandpass", action="store_const", const=None, help="no band-pass filter")
    p.add_argument(
        "--fixed-length",
        type=float,
        default=q.fixed_length_s,
        metavar="SECONDS",
        help="crop or zero-pad every record to SECONDS (the common advice: 30); default: whole records, padding masked",
    )
    p.add_argument(
        "--rr-channel",
        action="store_true",
        help="give the network one more input channel after the leads: the RR interval (s) of the beats of the first lead",
    )
    _add_network_options(p, m)
    p.add_argument(
        "--teacher",
        nargs="+",
        metavar="PATH",
        help="distil: mix each training record's label with a teacher's probabilities, those of out-of-fold CSVs or "
        "cross-validation folders (their folds' oof-last.csv), averaged (default: labels alone)",
    )
    p.add_argument("--teacher-weight", type=float, metavar="W", help="the teacher's share of each training target, in (0, 1] (default 0.5)")


def teacher(args):
    """The :class:`~ecgrhythm.training.teacher.Teacher` of `--teacher` and `--teacher-weight`, or None."""
    if args.teacher is None:
        if args.teacher_weight is not None:
            raise common.UsageError("--teacher-weight goes with --teacher: give the teacher's probabilities too")
        return None
    weight = 0.5 if args.teacher_weight is None else args.teacher_weight
    if not 0 < weight <= 1:
        raise common.UsageError(f"--teacher-weight {weight:g}: expected the teacher's share of each training target, in (0, 1]")
    from ecgrhythm.training.teacher import read_teacher

    try:
        return read_teacher(args.teacher, weight)
    except (ValueError, FileNotFoundError) as exc:
        raise common.UsageError(f"--teacher: {exc}") from None


def _add_network_options(p, m):
    """The network's options: the CNN + LSTM's size (`m`: its defaults), or another family's `--network-config`.

    The size options default to None, so that one given beside `--network-config` is refused even at its default value.
    """
    p.add_argument("--conv-filters", help=f"filters per conv block, comma-separated (default {','.join(map(str, m.conv_filters))})")
    p.add_argument("--conv-kernel", type=int, help=f"kernel size of every convolution (default {m.conv_kernel})")
    p.add_argument("--lstm-layers", type=int, help=f"stacked LSTM layers (default {m.lstm_layers})")
    p.add_argument("--lstm-units", type=int, help=f"units per LSTM layer and direction (default {m.lstm_units})")
    p.add_argument("--unidirectional", action="store_const", const=True, help="one-directional LSTM layers")
    p.add_argument("--dropout", type=float, help=f"dropout rate before the output layer (default {m.dropout})")
    p.add_argument(
        "--network-config",
        metavar="JSON",
        help='another network family or architecture, as the "model" entry of a config.json (fields left out take the '
        'family\'s defaults), e.g. \'{"network": "resnet"}\'; replaces the six options above (default: the CNN + LSTM they describe)',
    )


_SIZE_OPTIONS = ("conv_filters", "conv_kernel", "lstm_layers", "lstm_units", "unidirectional", "dropout")  # their attributes


def recipe(args):
    """`(preprocess, architecture, train config, classes)` of the recipe options (see :func:`add_recipe_options`)."""
    from ecgrhythm.config import PreprocessConfig, TrainConfig
    from ecgrhythm.networks.cnn_lstm import ModelConfig

    leads = tuple(v.strip() for v in args.leads.split(",") if v.strip()) if args.leads else None
    pre = PreprocessConfig(
        fs=args.fs,
        normalization=args.normalization,
        bandpass=tuple(args.bandpass) if args.bandpass else None,
        leads=leads,
        fixed_length_s=args.fixed_length,
        rr_channel=args.rr_channel,
    )
    classes = args.classes if args.classes in (None, "all", "scored") else tuple(v.strip() for v in args.classes.split(",") if v.strip())
    given = {name: getattr(args, name) for name in _SIZE_OPTIONS if getattr(args, name) is not None}
    if args.network_config is not None:
        if given:
            options = ", ".join("--" + name.replace("_", "-") for name in given)
            raise common.UsageError(f"--network-config replaces {options}: give one or the other")
        arch = _network_config(args.network_config)
    else:
        m = ModelConfig()
        arch = ModelConfig(
            conv_filters=tuple(int(v) for v in given["conv_filters"].split(",")) if "conv_filters" in given else m.conv_filters,
            conv_kernel=given.get("conv_kernel", m.conv_kernel),
            lstm_layers=given.get("lstm_layers", m.lstm_layers),
            lstm_units=given.get("lstm_units", m.lstm_units),
            bidirectional=not given.get("unidirectional", False),
            dropout=given.get("dropout", m.dropout),
        )
    tc = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        window_s=args.window,
        learning_rate=args.learning_rate,
        patience=args.patience,
        val_fraction=args.val_fraction,
        class_weighting=args.class_weighting,
        seed=args.seed,
        augment=tuple(v.strip() for v in args.augment.split(",") if v.strip()),
    )
    return pre, arch, tc, classes


def _network_config(text: str):
    """The architecture `--network-config` gives."""
    import json

    from ecgrhythm.networks.registry import config_from_dict

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise common.UsageError(f'--network-config: not JSON ({exc}): give an object such as \'{{"network": "resnet"}}\'') from None
    try:
        return config_from_dict(data)
    except (ValueError, TypeError) as exc:
        raise common.UsageError(f"--network-config: {exc}") from None


def _join(args) -> bool:
    """Join the multi-host run that --coordinator, --num-processes and --process-id name; whether there is one."""
    given = [args.coordinator is not None, args.num_processes is not None, args.process_id is not None]
    if not any(given):
        return False
    if not all(given):
        raise common.UsageError("--coordinator, --num-processes and --process-id go together: pass all three on every host, or none")
    from ecgrhythm.training.parallel import join_processes

    join_processes(args.coordinator, args.num_processes, args.process_id)
    return True


def run(args):
    pre, arch, tc, classes = recipe(args)
    data = common.data_dir(args.data)  # checked before Keras and JAX are imported (seconds)
    taught = teacher(args)

    from ecgrhythm.training.parallel import is_primary, resolve_devices
    from ecgrhythm.training.trainer import train

    several = _join(args)
    devices = resolve_devices("auto" if several and args.devices is None else args.devices)
    if not args.quiet:
        common.show_progress(train.__module__)
    result = train(
        data,
        args.output,
        preprocess_config=pre,
        model_config=arch,
        train_config=tc,
        resume=args.resume,
        limit=args.limit,
        labels=args.labels,
        classes=classes,
        unlabelled=args.unlabelled,
        verbose=common.keras_verbosity(args.quiet),
        devices=devices,
        teacher=taught,
    )
    written = f"model written to {result.model_dir}" if is_primary() else f"process 0 wrote the model to {result.model_dir} on its host"
    if result.best_score is None:
        print(f"trained {result.best_epoch} epochs on every record (no validation records; the last epoch kept); {written}")
    else:
        print(f"best validation score {result.best_score:.4f} at epoch {result.best_epoch}; {written}")
    return 0
