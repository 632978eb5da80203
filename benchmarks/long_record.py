"""A 24-hour record through `ecgrhythm episodes` and `ecgrhythm classify`: wall time and peak memory.

The record is a 2-lead 200 Hz WFDB record (format 16, 1000 units per mV)
synthesised by joining the real cpsc2021 sample records end to end until it
lasts `--hours`, written piece by piece into a temporary folder outside the
repository (removed afterwards). Each command runs once as a subprocess, from
launch to exit (start-up, model loading and compilation included); its peak
resident memory is the kernel's `ru_maxrss` for that process alone
(`os.wait4`). Targets: under 60 s and under 1 GB each for 24 hours.

Prints one JSON line; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/long_record.py --data ../shared/data/cpsc2021-sample --model models/cinc2017 --hours 24
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import emit, fail, machine

FS = 200
GAIN = 1000.0  # ADC units per mV


def write_long_record(data: Path, folder: Path, hours: float, name: str = "holter") -> Path:
    """Join the records of `data` (2-lead, 200 Hz) end to end into `folder/name.hea` + `.dat`, lasting `hours`."""
    from ecgrhythm.records import read_record

    sources = [read_record(p) for p in sorted(data.glob("*.hea"))]
    sources = [r for r in sources if r.fs == FS and r.n_leads == 2]
    if not sources:
        raise SystemExit(f"no 2-lead {FS} Hz WFDB records in {data}")
    total, written = round(hours * 3600 * FS), 0
    with open(folder / f"{name}.dat", "wb") as f:
        while written < total:
            for record in sources:
                piece = record.signal[: total - written]
                f.write(np.clip(np.round(piece * GAIN), -32768, 32767).astype("<i2").tobytes())
                written += len(piece)
                if written >= total:
                    break
    lines = [f"{name} 2 {FS} {total}"] + [f"{name}.dat 16 {GAIN:g}/mV 16 0 0 0 0 {lead}" for lead in ("I", "II")]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / f"{name}.hea"


def run_measured(command: list[str]) -> dict:
    """Run `command`; its wall time, peak resident memory (MB) and exit status."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    output = proc.stdout.read().decode(errors="replace").strip().splitlines()
    proc.stdout.close()
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit_status": os.waitstatus_to_exitcode(status),
        "last_line": output[-1] if output else "",
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/cpsc2021-sample", help="folder of 2-lead 200 Hz WFDB records (default %(default)s)")
    p.add_argument("--model", default="models/cinc2017", help="model folder (default %(default)s)")
    p.add_argument("--hours", type=float, default=24.0, help="length of the synthesised record (default %(default)s)")
    p.add_argument("--output", metavar="FILE.json", help="also write the result here")
    args = p.parse_args(argv)
    data = Path(args.data)
    if not data.is_dir():
        fail(f"--data {data}: not a folder; pass the cpsc2021 sample folder")
        return 2
    with tempfile.TemporaryDirectory(prefix="ecgrhythm-long-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        header = write_long_record(data, tmp, args.hours)
        write_s = time.perf_counter() - start
        cli = [sys.executable, "-m", "ecgrhythm.cli"]
        results = {
            "episodes": run_measured(
                [*cli, "episodes", str(header), "--model", args.model, "-o", str(tmp / "episodes.csv"), "--summary", str(tmp / "summary.csv")]
            ),
            "classify": run_measured([*cli, "classify", str(header), "--model", args.model, "-o", str(tmp / "classify.csv")]),
        }
        summary = (tmp / "summary.csv").read_text().splitlines() if (tmp / "summary.csv").exists() else []
        label = (tmp / "classify.csv").read_text().splitlines() if (tmp / "classify.csv").exists() else []
    emit(
        {
            "benchmark": "long_record",
            "record": {"hours": args.hours, "fs": FS, "leads": 2, "samples": round(args.hours * 3600 * FS), "write_s": round(write_s, 2)},
            **results,
            "episodes_summary": summary[1:2],
            "classify_row": label[1:2],
            "targets": {"seconds": 60, "peak_rss_mb": 1024},
            "machine": machine(),
        },
        args.output,
    )
    return 0 if all(r["exit_status"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
