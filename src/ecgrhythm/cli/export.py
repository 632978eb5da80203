"""`ecgrhythm export`: the model as one portable ONNX file."""

from __future__ import annotations

import ecgrhythm.cli.common as common


def add_parser(sub):
    p = sub.add_parser(
        "export",
        help="write a model as one .onnx file for onnxruntime",
        description="Write a model folder as one ONNX file (dynamic length; class names, preprocessing, thresholds and buckets in "
        "its metadata). The export is checked against the Keras network before the file is written.",
    )
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: the shipped models/cinc2017)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="output format (default: %(default)s)")
    p.add_argument("--output", "-o", required=True, metavar="FILE.onnx", help="file to write (replaced atomically)")
    p.add_argument(
        "--networks",
        type=int,
        metavar="N",
        help="export the folder's first N networks only (default: all). Written into the folder as first_network.onnx with N=1, "
        "it runs instead of the whole graph where the first network alone is asked for (AF episode windows)",
    )


def run(args):
    from pathlib import Path

    from ecgrhythm.export.onnx import export_onnx

    common.check_model(args.model)  # before the networks load
    if Path(args.output).is_dir():
        raise common.UsageError(f"--output {args.output} is a folder; pass a file name such as {Path(args.output) / 'model.onnx'}")
    common.enable_compilation_cache()
    try:
        path, difference = export_onnx(args.model, args.output, networks=args.networks)
    except ImportError as exc:
        raise common.UsageError(str(exc)) from None
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); largest probability difference from the Keras network on a check batch: {difference:.1e}"
    )
    return 0
