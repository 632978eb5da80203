"""`ecgrhythm ensemble`: one model folder averaging the probabilities of several networks, or (`--crossval`) the
cross-validation of such an ensemble from cross-validations run on the same folds."""

from __future__ import annotations

import os

import ecgrhythm.cli.common as common

REPORT_OPTIONS = ("name", "results", "reference", "partial_report")  # apply to --crossval only


def add_parser(sub):
    p = sub.add_parser(  # the limit on networks is saving.MAX_MEMBERS (not imported here: parsing loads no Keras)
        "ensemble",
        help="assemble a few model folders of one architecture (fold or seed models) into one that averages their probabilities; "
        "with --crossval, cross-validate such an ensemble",
        description="Without --crossval: write one model folder (OUTPUT) whose networks are those of the MODEL_DIRs, their probabilities "
        "averaged. With --crossval the folders are cross-validation folders ('ecgrhythm crossval' OUTPUTs, for example one recipe "
        "run with two --seed values) on the same folds (same --folds and --fold-seed): OUTPUT becomes a cross-validation folder whose "
        "fold K averages the members' fold-K networks, with their out-of-fold probabilities averaged record by record; a member may "
        "be a run its report kept without networks (REPORT_DIR/run), and then the folds hold the averaged probabilities only. Folds "
        "unfinished in some member are left out until a rerun; once every fold is there (or, with --partial-report, the folds there "
        "so far) the report is written and the candidates table regenerated, as 'ecgrhythm crossval' does.",
    )
    p.add_argument(
        "models",
        nargs="+",
        metavar="DIR",
        help="model folders of one network each, same classes, preprocessing and architecture; with --crossval, 2 or more cross-validation folders",
    )
    p.add_argument(
        "--output",
        required=True,
        help="folder to write: a new or empty folder, or a model folder; with --crossval, a new or empty folder or an earlier "
        "output of the same members (rerunning adds the folds finished since)",
    )
    p.add_argument("--crossval", action="store_true", help="the DIRs are cross-validation folders: cross-validate their ensemble")
    p.add_argument("--name", help="with --crossval: the ensemble's name in the reports (default: OUTPUT's folder name)")
    p.add_argument(
        "--results",
        help=f"with --crossval: folder of the reports and the candidates table (default {os.path.join('docs', 'results', 'crossval')})",
    )
    p.add_argument("--reference", help="with --crossval: recipe the candidates table compares each recipe with, fold by fold (default baseline)")
    p.add_argument(
        "--partial-report",
        action="store_true",
        help="with --crossval: when some fold is unfinished in a member, still write the report of the folds averaged so far",
    )


def run(args):
    if not args.crossval:
        given = [f"--{o.replace('_', '-')}" for o in REPORT_OPTIONS if getattr(args, o) not in (None, False)]
        if given:
            raise common.UsageError(f"{', '.join(given)} apply to --crossval only: add --crossval to cross-validate an ensemble of cross-validations")
        from ecgrhythm.networks.saving import assemble_ensemble

        path = assemble_ensemble(args.models, args.output)
        print(f"ensemble of {len(args.models)} networks written to {path}")
        return 0
    return _run_crossval(args)


def _run_crossval(args):
    from ecgrhythm.lab.cli.crossval import write_reports
    from ecgrhythm.lab.crossval_ensemble import average_crossvals
    from ecgrhythm.lab.crossval_report import DEFAULT_RESULTS
    from ecgrhythm.training.folds import fold_dir
    from ecgrhythm.training.oof import OOF_FILE

    result = average_crossvals(args.models, args.output)
    n_folds = len(result.folds.folds)
    missing = [k for k in range(n_folds) if k not in result.finished]
    print(f"folds averaged: {result.finished} (this run: {result.trained}) in {args.output}")
    for k in missing:
        unfinished = [m for m in args.models if not (fold_dir(m, k) / OOF_FILE).is_file()]
        print(f"fold {k}: unfinished in {', '.join(unfinished)}")
    if missing and (not args.partial_report or not result.finished):
        print("rerun this command once those folds are finished" + (" (no fold to report yet)" if args.partial_report else ""))
        return 0
    results = args.results if args.results is not None else DEFAULT_RESULTS
    done = f"partial report ({len(result.finished)} of {n_folds} folds)" if missing else "report"
    write_reports(args.output, args.name, results, args.reference or "baseline", partial=bool(missing), done=done)
    return 0
