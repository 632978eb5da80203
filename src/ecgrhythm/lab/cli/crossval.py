"""`ecgrhythm crossval`: cross-validate a training recipe over seeded stratified folds."""

from __future__ import annotations

import os
import shlex
import sys

import ecgrhythm.cli.common as common
import ecgrhythm.cli.train as train_command


def add_parser(sub):
    p = sub.add_parser(
        "crossval",
        help="cross-validate a training recipe: one resumable training per fold, out-of-fold probabilities, a report",
        description="Split the labelled records into seeded stratified folds (saved as OUTPUT/folds.json), train one model per fold "
        "with that fold as its validation records (OUTPUT/foldK/), keep every record's out-of-fold probabilities (OUTPUT/oof.csv) and, "
        "once every fold is finished (or, with --partial-report, the folds finished so far), write the report, keep the folder without its networks "
        "beside it (RESULTS/NAME/run/) and regenerate the candidates table. Rerunning continues: finished folds are "
        "not trained again, an interrupted one resumes from its checkpoint; a lost OUTPUT continues from a copy of the kept run.",
    )
    p.add_argument("--data", help="folder of records with a REFERENCE.csv (default: the shared CinC 2017 data)")
    p.add_argument("--output", required=True, help="cross-validation folder: new, or one this command started with the same options")
    p.add_argument("--folds", type=int, default=5, help="number of folds (default %(default)s)")
    p.add_argument("--fold-seed", type=int, default=0, help="seed of the folds, apart from the training --seed (default %(default)s)")
    p.add_argument("--fold", type=int, action="append", metavar="K", help="run only fold K (0-based; repeatable), to spread folds over machines")
    p.add_argument("--folds-only", action="store_true", help="write OUTPUT/folds.json and show the folds; train nothing")
    p.add_argument("--name", help="the recipe's name in the reports (default: OUTPUT's folder name)")
    p.add_argument(
        "--results", default=os.path.join("docs", "results", "crossval"), help="folder of the reports and the candidates table (default %(default)s)"
    )
    p.add_argument(
        "--reference", default="baseline", help="recipe the candidates table compares each recipe with, fold by fold (default %(default)s)"
    )
    train_command.add_recipe_options(p)
    p.add_argument(
        "--partial-report",
        action="store_true",
        help="when other folds are unfinished, still write the report of the finished ones (marked 'k of n folds') and regenerate the candidates table",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")


def _show_folds(folds) -> None:
    for k, names in enumerate(folds.folds):
        counts = {c: sum(folds.labels[n] == c for n in names) for c in folds.classes}
        print(f"fold {k}: {len(names):,} records (" + ", ".join(f"{c} {v}" for c, v in counts.items()) + ")")


def run(args):
    from pathlib import Path

    from ecgrhythm.training.crossval import run_crossval
    from ecgrhythm.training.trainer import train

    pre, arch, tc, classes = train_command.recipe(args)
    teacher = train_command.teacher(args)
    if not args.quiet:
        common.show_progress(train.__module__)
        common.show_progress(run_crossval.__module__)
    result = run_crossval(
        common.data_dir(args.data),
        args.output,
        n_folds=args.folds,
        fold_seed=args.fold_seed,
        preprocess_config=pre,
        model_config=arch,
        train_config=tc,
        limit=args.limit,
        labels=args.labels,
        classes=classes,
        only=args.fold,
        folds_only=args.folds_only,
        verbose=common.keras_verbosity(args.quiet),
        teacher=teacher,
    )
    if args.folds_only:
        _show_folds(result.folds)
        print(f"folds written to {Path(args.output) / 'folds.json'}")
        return 0
    unfinished = [k for k in range(args.folds) if k not in result.finished]
    if unfinished:
        print(f"folds finished: {result.finished}; still to run: {unfinished} (rerun with the same options)")
        if not args.partial_report:
            return 0
    done = f"partial report ({len(result.finished)} of {args.folds} folds)" if unfinished else "cross-validation finished; report"
    write_reports(args.output, args.name, args.results, args.reference, partial=bool(unfinished), done=done)
    return 0


def write_reports(output, name, results, reference: str, *, partial: bool, done: str) -> None:
    """Write the report of the cross-validation folder `output` (named `name`, default its folder's name) under
    `results`, regenerate the candidates table there against `reference`, and say so, beginning with `done`."""
    from pathlib import Path

    from ecgrhythm.lab.candidates import write_candidates
    from ecgrhythm.lab.crossval_report import write_report

    name = name or Path(output).resolve().name
    command = "ecgrhythm " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] in (["crossval"], ["ensemble"]) else ""
    paths = write_report(output, Path(results) / name, command=command, name=name, partial=partial)
    table = write_candidates(results, reference=reference)
    print(
        f"{done} written to {paths['markdown']} and {paths['json']} (the run, less its networks, in {paths['run']}); candidates table {table['markdown']}"
    )
