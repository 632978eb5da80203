"""scripts/main.sh, without running the model: its `ecgrhythm` command lines parse and name real data.

Running the job end to end takes about a minute (it is what `bash scripts/main.sh` is for); here each
`run ...` line of the script is expanded by bash with the script's own variables and parsed by the
`ecgrhythm` command's parser, so a renamed flag, a missing record or a broken line fails fast.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from ecgrhythm.cli import build_parser

MAIN = Path(__file__).resolve().parents[1] / "scripts" / "main.sh"


def _command_lines(data: Path, out: Path) -> list[list[str]]:
    """The argument lists of every `run ...` line of main.sh (the `--training-score` one too), as bash expands them."""
    text = MAIN.read_text(encoding="utf-8").splitlines()
    kept = [line.strip() for line in text if line.lstrip().startswith(("run ", "records=", "cpsc="))]
    program = "\n".join([f"data={data}", f"out={out}", "run() { printf '%s\\0' \"$@\"; printf '\\n'; }", *kept])
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return [line.split("\0")[:-1] for line in done.stdout.splitlines()]


def test_every_command_of_the_main_job_parses_and_names_real_records(cinc2017_dir, cpsc2021_dir, tmp_path):
    data = cinc2017_dir.parent
    assert cpsc2021_dir.parent == data
    commands = _command_lines(data, tmp_path)
    assert [c[0] for c in commands] == ["episodes", "evaluate", "classify", "evaluate"]
    parser = build_parser()
    parsed = [parser.parse_args(c) for c in commands]  # an unknown flag or a bad value exits here
    episodes, scored, classify, training = parsed
    assert episodes.paths == [str(cpsc2021_dir)] and episodes.summary and episodes.output
    assert scored.task == "episodes" and scored.data == str(cpsc2021_dir)
    assert training.task == "rhythm" and training.all_records and training.data == str(cinc2017_dir)
    outputs = [episodes.output, episodes.summary, scored.output, classify.output, training.output]
    assert len(set(outputs)) == len(outputs) and all(Path(o).parent == tmp_path for o in outputs)
    # classify: bare WFDB record names of the CinC 2017 data, one of each reference class
    reference = dict(csv.reader(open(cinc2017_dir / "REFERENCE.csv", encoding="utf-8")))
    names = [Path(p) for p in classify.paths]
    assert all(p.parent == cinc2017_dir and p.suffix == "" and p.with_suffix(".hea").is_file() for p in names)
    assert {reference[p.name] for p in names} == {"N", "A", "O", "~"}


@pytest.mark.parametrize("argument", ["--bogus", "--training-scores"])
def test_an_unknown_argument_is_refused_before_the_set_up(argument):
    done = subprocess.run(["bash", str(MAIN), argument], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == f"main.sh: unknown argument '{argument}': the only option is --training-score"


def test_help_describes_the_job():
    done = subprocess.run(["bash", str(MAIN), "--help"], capture_output=True, text=True, timeout=30, check=True)
    assert "runs/main/" in done.stdout and "--training-score" in done.stdout and "never saw" in done.stdout
