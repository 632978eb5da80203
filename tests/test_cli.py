import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ecgrhythm.cli as cli
import ecgrhythm.inference as inference
from ecgrhythm.cli import main
from ecgrhythm.inference import RhythmClassifier

GOOD = ["A00001", "A00002", "A00003", "A00004"]


@pytest.fixture(autouse=True)
def _no_compilation_cache(monkeypatch):
    """Keep in-process runs from writing a JAX cache into the home folder."""
    monkeypatch.setenv(cli.CACHE_ENV, "off")
COLUMNS = ["record", "label", "N", "A", "O", "~"]


def _copy(cinc2017_dir, folder, names):
    folder.mkdir(exist_ok=True)
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(cinc2017_dir / f"{name}{suffix}", folder)
    return folder


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _check_rows(rows, names):
    assert rows[0] == COLUMNS
    assert [r[0] for r in rows[1:]] == names
    for r in rows[1:]:
        probs = np.array(r[2:], dtype=float)
        assert r[1] == COLUMNS[2 + int(np.argmax(probs))]
        assert probs.sum() == pytest.approx(1.0, abs=1e-4) and (probs >= 0).all()


def test_classify_keeps_going_past_an_unreadable_file(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    folder = _copy(cinc2017_dir, tmp_path / "in", GOOD)
    (folder / "A00002b.hea").write_text("A00002b 1 300 9000\nA00002b.mat 16 1000 16 0 0 0 0 ECG\n")  # no signal file
    (folder / "noise.npy").write_bytes(b"\x93NUMPY garbage")
    out = tmp_path / "out.csv"
    assert main(["classify", str(folder), "--output", str(out), "--model", str(tiny_model_dir), "--fs", "300"]) == 1
    captured = capsys.readouterr()
    _check_rows(_rows(out), GOOD)
    bad_lines = captured.err.strip().splitlines()
    assert len(bad_lines) == 2 and "Traceback" not in captured.err
    assert "A00002b.hea: " in bad_lines[0] and "A00002b.mat" in bad_lines[0]  # the file and the reason
    assert "noise.npy" in bad_lines[1]
    assert "classified 4 records" in captured.out and "2 failed" in captured.out


def test_classify_all_good_folder_exits_0_and_matches_the_python_api(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    folder = _copy(cinc2017_dir, tmp_path / "in", GOOD)
    out = tmp_path / "sub" / "out.csv"
    assert main(["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)]) == 0
    assert capsys.readouterr().err == ""
    rows = _rows(out)
    _check_rows(rows, GOOD)
    api = RhythmClassifier.load(tiny_model_dir).predict_records([folder / "A00003.hea"])
    cli = np.array(rows[3][2:], dtype=float)
    np.testing.assert_allclose(api.probabilities[0], cli, atol=2e-6)
    assert api.labels[0] == rows[3][1]
    assert [p.name for p in out.parent.iterdir()] == ["out.csv"]  # no temporary files left


def test_classify_a_folder_with_a_records_index(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    folder = _copy(cinc2017_dir, tmp_path / "in", GOOD + ["A00005"])
    (folder / "RECORDS").write_text("A00004\nA00001\nA00005\n")
    shutil.copy(cinc2017_dir / "REFERENCE.csv", folder)
    out = tmp_path / "out.csv"
    assert main(["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)]) == 0
    _check_rows(_rows(out), ["A00004", "A00001", "A00005"])
    assert "REFERENCE" not in capsys.readouterr().err


def test_classify_headerless_files_need_fs(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    from ecgrhythm.records import read_record

    record = read_record(cinc2017_dir / "A00001.hea")
    np.save(tmp_path / "rec.npy", record.signal[:, 0])
    out = tmp_path / "out.csv"
    assert main(["classify", str(tmp_path / "rec.npy"), "-o", str(out), "--model", str(tiny_model_dir)]) == 1
    assert "rec.npy" in capsys.readouterr().err and _rows(out) == [COLUMNS]
    assert main(["classify", str(tmp_path / "rec.npy"), "-o", str(out), "--model", str(tiny_model_dir), "--fs", "300"]) == 0
    _check_rows(_rows(out), ["rec"])


def test_classify_command_line_errors_exit_2_in_one_line(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    record = str(cinc2017_dir / "A00001.hea")
    out = tmp_path / "out.csv"
    bad_model = tmp_path / "not_a_model"
    bad_model.mkdir()
    (bad_model / "config.json").write_text("{}")
    for args in (["--model", str(bad_model)], ["--model", str(tmp_path / "missing")]):
        assert main(["classify", record, "-o", str(out), *args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(tmp_path) in err
    assert main(["classify", record, "-o", str(tmp_path), "--model", str(tiny_model_dir)]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["classify", str(tmp_path / "empty"), "-o", str(out), "--model", str(tiny_model_dir)]) == 2
    assert "no records found" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", record, "-o", str(out), "--fs", "-3"])
    assert exit_info.value.code == 2


def test_a_crash_mid_way_leaves_no_half_file(tmp_path, cinc2017_dir, tiny_model_dir, monkeypatch, capsys):
    folder = _copy(cinc2017_dir, tmp_path / "in", GOOD)
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    real = inference.RhythmClassifier._classify_chunk
    calls = []

    def crash_on_second_chunk(self, read, failures):
        calls.append(len(read))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, read, failures)

    monkeypatch.setattr(cli, "_load_classifier", lambda model_dir: RhythmClassifier.load(model_dir, chunk_size=2))
    monkeypatch.setattr(inference.RhythmClassifier, "_classify_chunk", crash_on_second_chunk)
    assert main(["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)]) == 130
    assert calls == [2, 2]
    assert out.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.csv"]


def test_installed_console_script(tmp_path, cinc2017_dir, tiny_model_dir):
    script = Path(sys.executable).with_name("ecgrhythm")
    if not script.exists():
        pytest.skip("the ecgrhythm console script is not installed beside this Python")
    out = tmp_path / "out.csv"
    env = {**os.environ, "KERAS_BACKEND": "jax", cli.CACHE_ENV: str(tmp_path / "cache")}
    result = subprocess.run(
        [str(script), "classify", str(cinc2017_dir / "A00001.hea"), str(tmp_path / "nope.mat"), "-o", str(out), "--model", str(tiny_model_dir)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 1, result.stderr
    assert "nope.mat" in result.stderr and "Traceback" not in result.stderr
    _check_rows(_rows(out), ["A00001"])
    assert (tmp_path / "cache").is_dir()


def test_compilation_cache_location():
    assert cli._compilation_cache_dir({"HOME": "/h", "XDG_CACHE_HOME": "/c"}) == Path("/c/ecgrhythm/jax")
    assert cli._compilation_cache_dir({cli.CACHE_ENV: "/tmp/x"}) == Path("/tmp/x")
    assert cli._compilation_cache_dir({cli.CACHE_ENV: "off"}) is None
