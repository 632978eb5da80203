"""`ecgrhythm study`: the controlled experiments behind the defaults."""

from __future__ import annotations

import os

import ecgrhythm.cli.common as common


def add_parser(sub):
    from ecgrhythm.lab.studies import DEFAULT_STORE, STUDIES, Budget

    b = Budget()
    p = sub.add_parser(
        "study",
        help="run a controlled experiment: normalisation, variable-length strategy or depth",
        description="Train every variant of a study once per seed on one fixed split, record each run in an Optuna store as it "
        "finishes (rerunning resumes), and write OUTPUT/STUDY.csv, .md and .png.",
    )
    p.add_argument("name", choices=sorted(STUDIES), help="the study")
    p.add_argument("--data", metavar="DIR", help="folder with records and REFERENCE.csv (default: the shared CinC 2017 data)")
    p.add_argument("--store", default=str(DEFAULT_STORE), help="Optuna storage: a SQLite file or a database URL (default %(default)s)")
    p.add_argument("--output", default=os.path.join("docs", "studies"), metavar="DIR", help="folder for the report (default %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="run seeds (default 0 1 2)")
    p.add_argument("--epochs", type=int, default=b.epochs, help="epochs per run (default %(default)s)")
    p.add_argument(
        "--train-records", type=int, default=b.train_records, help="training records per run: a fixed stratified subset (default %(default)s)"
    )
    p.add_argument("--margin", type=float, default=0.01, help="smallest gain in mean CinC score that counts (default %(default)s)")
    p.add_argument("--variants", help="comma-separated variant names to run (default: all)")
    p.add_argument("--max-runs", type=int, help="stop after N runs (the rest run next time)")
    p.add_argument("--device", help="label for the rows' machine column (default: this machine's description)")
    p.add_argument("--report-only", action="store_true", help="only write the report from the runs already recorded")
    p.add_argument("--note", help="keep this note with the study in the store (its reports list the notes), then write the report")
    p.add_argument(
        "--notes-file",
        metavar="FILE",
        help="keep each paragraph of this text file (paragraphs are separated by blank lines) as a note, "
        "skipping those already kept, then write the report",
    )
    imports = p.add_mutually_exclusive_group()
    imports.add_argument(
        "--import-csv",
        metavar="FILE",
        help="record the runs of a published STUDY.csv in the store (the setup is worked out from "
        "--data, --epochs, --train-records and --margin as for a run); rows that conflict with recorded runs are refused",
    )
    imports.add_argument(
        "--import-crossval",
        metavar="DIR",
        nargs="+",
        help="record the finished folds of these `ecgrhythm crossval` folders as full-budget runs (each folder's recipe must be "
        "the shipped recipe with one of the study's changes; the study must be in the store already), then write the report",
    )


def run(args):
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise common.UsageError("the study command records runs with Optuna, which is not installed: pip install 'ecgrhythm[study]'") from None
    from ecgrhythm.lab.studies import Budget, run_study, write_report

    budget = Budget(epochs=args.epochs, train_records=args.train_records)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None

    def report():
        return write_report(args.name, args.output, args.store)["md"]

    def on_run(variant, seed, measured):
        print(
            f"{args.name}: {variant.name}, seed {seed}: CinC {measured['val_cinc_score']:.4f}, {measured['train_seconds']:.0f} s; report {report()}",
            flush=True,
        )

    if args.import_csv:
        from ecgrhythm.lab.studies import import_runs

        if not os.path.isfile(args.import_csv):
            raise common.UsageError(f"--import-csv {args.import_csv}: no such file; give a study CSV such as docs/studies/{args.name}.csv")
        made = import_runs(args.name, args.import_csv, common.data_dir(args.data), storage=args.store, budget=budget, margin=args.margin)
        print(f"{args.name}: {made} runs imported into {args.store}; write the report with --report-only")
        return 0
    if args.import_crossval:
        from ecgrhythm.lab.studies import import_crossval

        made = import_crossval(args.name, args.import_crossval, args.store, machine=args.device)
        print(f"{args.name}: {made} full-budget runs imported into {args.store}")
    notes = [args.note] if args.note else []
    if args.notes_file:
        try:
            text = open(args.notes_file, encoding="utf-8").read()
        except OSError as exc:
            raise common.UsageError(f"--notes-file {args.notes_file}: {exc.strerror or exc}") from None
        notes += [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    if notes:
        from ecgrhythm.lab.studies import add_note

        for note in notes:
            add_note(args.name, note, args.store)
    if not args.report_only and not notes and not args.import_crossval:
        common.enable_compilation_cache()
        made = run_study(
            args.name,
            common.data_dir(args.data),
            storage=args.store,
            budget=budget,
            seeds=args.seeds,
            margin=args.margin,
            variants=variants,
            max_runs=args.max_runs,
            device=args.device,
            on_run=on_run,
        )
        print(f"{args.name}: {made} runs made now")
    print(f"report written to {report()}")
    return 0
