"""`ecgrhythm ensemble`: one model folder averaging the probabilities of several networks."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(  # the limit on networks is saving.MAX_MEMBERS (not imported here: parsing loads no Keras)
        "ensemble",
        help="assemble a few model folders of one architecture (fold or seed models) into one that averages their probabilities",
    )
    p.add_argument("models", nargs="+", metavar="MODEL_DIR", help="model folders of one network each, same classes, preprocessing and architecture")
    p.add_argument("--output", required=True, help="model folder to write: a new or empty folder, or a model folder")


def run(args):
    from ..saving import assemble_ensemble

    path = assemble_ensemble(args.models, args.output)
    print(f"ensemble of {len(args.models)} networks written to {path}")
    return 0
