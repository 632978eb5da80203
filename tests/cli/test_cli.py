import argparse
import csv
import functools
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ecgrhythm.cli as cli
import ecgrhythm.inference.streaming as streaming
from ecgrhythm.cli import main
from ecgrhythm.inference.classifier import RhythmClassifier

GOOD = ["A00001", "A00002", "A00003", "A00004"]


@pytest.fixture(autouse=True)
def _no_compilation_cache(monkeypatch):
    """Keep in-process runs from writing a JAX cache into the home folder."""
    monkeypatch.setenv(cli.CACHE_ENV, "off")


COLUMNS = ["record", "label", "lead", "N", "A", "O", "~", "af_burden", "record_class"]


def _copy(cinc2017_dir, folder, names):
    folder.mkdir(exist_ok=True)
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(cinc2017_dir / f"{name}{suffix}", folder)
    return folder


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _check_rows(rows, names, lead="ECG"):
    assert rows[0] == COLUMNS
    assert [r[0] for r in rows[1:]] == names
    for r in rows[1:]:
        probs = np.array(r[3:7], dtype=float)
        assert r[1] == COLUMNS[3 + int(np.argmax(probs))] and r[2] == lead  # the one lead of a CinC 2017 record
        assert r[7:] == ["", ""]  # no AF burden or record class: a CinC 2017 record is as short as the training records
        assert probs.sum() == pytest.approx(1.0, abs=1e-4) and (probs >= 0).all()


def test_classify_keeps_going_past_an_unreadable_file(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    folder = _copy(cinc2017_dir, tmp_path / "in", GOOD)
    (folder / "A00002b.hea").write_text("A00002b 1 300 9000\nA00002b.mat 16 1000 16 0 0 0 0 ECG\n")  # no signal file
    (folder / "noise.npy").write_bytes(b"\x93NUMPY garbage")
    out = tmp_path / "out.csv"
    assert main(["classify", str(folder), "--output", str(out), "--model", str(tiny_model_dir), "--fs", "300"]) == 1
    captured = capsys.readouterr()
    _check_rows(_rows(out), GOOD)
    *bad_lines, status = captured.err.strip().splitlines()
    assert len(bad_lines) == 2 and "Traceback" not in captured.err
    assert "A00002b.hea: " in bad_lines[0] and "A00002b.mat" in bad_lines[0]  # the file and the reason
    assert "noise.npy" in bad_lines[1]
    assert status.startswith("classified 4 records") and "2 failed" in status and captured.out == ""


def test_classify_all_good_folder_exits_0_and_matches_the_python_api(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    folder = _copy(cinc2017_dir, tmp_path / "in", GOOD)
    out = tmp_path / "sub" / "out.csv"
    assert main(["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("classified 4 records") and captured.err.endswith(f"wrote {out}\n")
    assert b"\r" not in out.read_bytes()  # lines end with \n alone
    rows = _rows(out)
    _check_rows(rows, GOOD)
    api = RhythmClassifier.load(tiny_model_dir).predict_records([folder / "A00003.hea"])
    cli = np.array(rows[3][3:7], dtype=float)
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
    _check_rows(_rows(out), ["rec"], lead="lead1")


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
    real_chunk, real_iter = streaming._classify_chunk, streaming.iter_classify_files
    calls = []

    def crash_on_second_chunk(classifier, read, failures, *rest):
        calls.append(len(read))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_chunk(classifier, read, failures, *rest)

    monkeypatch.setattr(streaming, "iter_classify_files", functools.partial(real_iter, chunk_samples=1))  # one record per chunk
    monkeypatch.setattr(streaming, "_classify_chunk", crash_on_second_chunk)
    assert main(["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)]) == 130
    assert calls == [1, 1]
    assert out.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.csv"]


def test_an_output_that_is_an_input_is_refused_before_anything_is_written(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    folder = _copy(cinc2017_dir, tmp_path / "same3", GOOD[:3])
    (folder / "RECORDS").write_text("A00001\nA00002\nA00003\n")
    shutil.copy(cinc2017_dir / "REFERENCE.csv", folder)
    os.link(folder / "A00002.mat", tmp_path / "second-name.mat")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    attempts = [
        [str(folder), "--output", str(folder / "A00003.mat")],  # the case: a signal file named inside a header
        [str(folder), "--output", str(folder / "A00001.hea")],
        [str(folder), "--output", str(folder / "RECORDS")],
        [str(folder), "--output", str(folder / "REFERENCE.csv")],
        [str(folder / "A00002.hea"), "--output", str(tmp_path / "second-name.mat")],  # a hard link to a signal file
        [str(folder / "A00002.mat"), "--output", str(folder / "A00002.hea")],  # the header a signal file is read through
    ]
    for args in attempts:
        assert main(["classify", *args, "--model", str(tiny_model_dir)]) == 2, args
        err = capsys.readouterr().err
        assert "would replace" in err and args[-1] in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # An earlier output of ours in the input folder is not a record, and is replaced.
    out = folder / "predictions.csv"
    for _ in range(2):
        assert main(["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)]) == 0
        _check_rows(_rows(out), GOOD[:3])


def test_an_output_symlink_stays_a_link(tmp_path, cinc2017_dir, tiny_model_dir):
    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "latest.csv"
    target.write_text("previous\n")
    link = tmp_path / "out.csv"
    link.symlink_to(target)
    assert main(["classify", str(cinc2017_dir / "A00001.hea"), "-o", str(link), "--model", str(tiny_model_dir)]) == 0
    assert link.is_symlink() and link.resolve() == target.resolve()
    _check_rows(_rows(target), ["A00001"])


def test_an_output_device_stays_a_device(tmp_path, cinc2017_dir, tiny_model_dir):
    device = os.devnull
    if os.geteuid() == 0:  # a private null device: a regression must not replace the machine's /dev/null
        device = tmp_path / "null"
        try:
            os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("root without the right to make device nodes")
    assert main(["classify", str(cinc2017_dir / "A00001.hea"), "-o", str(device), "--model", str(tiny_model_dir)]) == 0
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_a_model_giving_nan_fails_every_record_by_name(tmp_path, cinc2017_dir, tiny_model_dir, monkeypatch, capsys):
    broken = RhythmClassifier.load(tiny_model_dir)
    head = [v for v in broken.model_.trainable_variables if "kernel" in v.path][-1]
    head.assign(np.full(head.shape, np.nan, dtype="float32"))
    monkeypatch.setattr(cli.common, "load_classifier", lambda model_dir, backend="auto": broken)
    folder = _copy(cinc2017_dir, tmp_path / "in", GOOD)
    out = tmp_path / "out.csv"
    assert main(["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)]) == 1
    *err, status = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(GOOD) and all(f"{n}.hea" in line and "non-finite probabilities" in line for n, line in zip(GOOD, err))
    assert status.startswith("classified 0 records")
    assert _rows(out) == [COLUMNS]


def test_a_sigterm_python_dropped_still_keeps_the_old_output_and_ends_the_block(tmp_path, capsys):
    from ecgrhythm.cli.common import Terminated, _raise_terminated, sigterm_unwinds
    from ecgrhythm.utils.io import atomic_write

    out = tmp_path / "out.csv"
    out.write_text("previous\n")

    class Dropping:  # its finaliser raises the handler's exception where Python drops it, as a garbage-collection callback
        def __del__(self):
            _raise_terminated(signal.SIGTERM, None)

    with pytest.raises(Terminated), sigterm_unwinds():
        Dropping()
        with atomic_write(out) as f:
            f.write("new\n")
    assert out.read_text() == "previous\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    assert "Traceback" not in capsys.readouterr().err  # dropped and raised again, not printed
    with sigterm_unwinds():  # the next block starts afresh
        with atomic_write(out) as f:
            f.write("new\n")
    assert out.read_text() == "new\n"


def test_sigterm_removes_the_temporary_file_and_exits_143(tmp_path, cinc2017_dir, tiny_model_dir):
    import ecgrhythm

    folder = tmp_path / "many"
    folder.mkdir()
    for header in sorted(cinc2017_dir.glob("A0*.hea"))[:400]:
        for suffix in (".hea", ".mat"):
            (folder / header.with_suffix(suffix).name).symlink_to(header.with_suffix(suffix))
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    src = str(Path(ecgrhythm.__file__).parents[1])
    env = {**os.environ, "KERAS_BACKEND": "jax", cli.CACHE_ENV: "off", "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.Popen(
        [sys.executable, "-m", "ecgrhythm.cli", "classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob(".out.csv.*.tmp")) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(tmp_path.glob(".out.csv.*.tmp")), "the run never opened its temporary file"
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert out.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == ["many", "out.csv"]


def test_installed_console_script(tmp_path, cinc2017_dir, tiny_model_dir):
    script = Path(sys.executable).with_name("ecgrhythm")
    if not script.exists():
        pytest.skip("the ecgrhythm console script is not installed beside this Python")
    out = tmp_path / "out.csv"
    env = {**os.environ, "KERAS_BACKEND": "jax", cli.CACHE_ENV: str(tmp_path / "cache")}
    result = subprocess.run(
        [str(script), "classify", str(cinc2017_dir / "A00001.hea"), str(tmp_path / "nope.mat"), "-o", str(out), "--model", str(tiny_model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 1, result.stderr
    assert "nope.mat" in result.stderr and "Traceback" not in result.stderr
    _check_rows(_rows(out), ["A00001"])
    assert (tmp_path / "cache").is_dir()


def test_compilation_cache_location():
    assert cli.compilation_cache_dir({"HOME": "/h", "XDG_CACHE_HOME": "/c"}) == Path("/c/ecgrhythm/jax")
    assert cli.compilation_cache_dir({cli.CACHE_ENV: "/tmp/x"}) == Path("/tmp/x")
    assert cli.compilation_cache_dir({cli.CACHE_ENV: "off"}) is None


def test_a_record_named_twice_is_classified_once(tmp_path, cinc2017_dir, tiny_model_dir):
    out = tmp_path / "out.csv"
    header, signal = cinc2017_dir / "A00001.hea", cinc2017_dir / "A00001.mat"
    assert main(["classify", str(header), str(signal), str(header), "--model", str(tiny_model_dir), "-o", str(out)]) == 0
    assert [row.split(",")[0] for row in out.read_text().splitlines()[1:]] == ["A00001"]


def test_fixed_length_option_of_train_and_crossval(tmp_path, capsys):
    for command in ("train", "crossval"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--fixed-length SECONDS" in capsys.readouterr().out
        assert main([command, "--data", str(tmp_path / "no-data"), "--output", str(tmp_path / "out"), "--fixed-length", "0"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ecgrhythm {command}: error: Invalid argument `fixed_length_s`") and err.count("\n") == 1
        assert not (tmp_path / "out").exists()


def test_version_comes_from_the_one_version_of_the_package(capsys):
    import tomllib

    import ecgrhythm

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"ecgrhythm {ecgrhythm.__version__}\n"
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]  # no second copy of the number
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ecgrhythm.__version__"}


def test_classify_a_bare_record_name_prints_the_csv_on_stdout_and_the_status_on_stderr(cinc2017_dir, tiny_model_dir, tmp_path, capsys):
    record = str(cinc2017_dir / "A00005")  # a bare WFDB record name: A00005.hea is there
    assert main(["classify", record, "--model", str(tiny_model_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(",".join(COLUMNS) + "\n") and "\r" not in captured.out
    _check_rows(list(csv.reader(captured.out.splitlines())), ["A00005"])
    assert captured.err.startswith("classified 1 record in ") and captured.err.endswith("; 0 failed; wrote the CSV to standard output\n")
    assert captured.err.count("\n") == 1, "no progress bar reaches stderr when it is not a terminal"
    assert main(["classify", record, "-o", "-", "--model", str(tiny_model_dir)]) == 0
    assert capsys.readouterr().out == captured.out and not Path("-").exists()
    out = tmp_path / "out.csv"
    assert main(["classify", record, "-o", str(out), "--model", str(tiny_model_dir)]) == 0
    assert out.read_bytes() == captured.out.encode() and capsys.readouterr().out == ""


def test_episodes_go_to_stdout_and_the_summary_to_stdout_only_when_the_episodes_go_to_a_file(cinc2017_dir, tiny_model_dir, tmp_path, capsys):
    record, model = str(cinc2017_dir / "A00004"), ["--model", str(tiny_model_dir)]
    summary = tmp_path / "summary.csv"
    assert main(["episodes", record, "--summary", str(summary), *model]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("record,lead,start_s,end_s,label,probability\nA00004,ECG,0.000,") and "\r" not in captured.out
    assert captured.err.startswith("found the episodes of 1 record") and captured.err.count("\n") == 1
    assert f"wrote the episodes to standard output and {summary}" in captured.err
    assert summary.read_bytes().startswith(b"record,lead,duration_s,af_burden,af_episodes,longest_af_s,record_class\nA00004,ECG,30.000,")
    episodes = tmp_path / "episodes.csv"
    assert main(["episodes", record, "-o", str(episodes), "--summary", "-", *model]) == 0
    assert capsys.readouterr().out == summary.read_text() and episodes.read_text() == captured.out
    assert main(["episodes", record, "--summary", "-", *model]) == 2
    assert "both go to standard output" in capsys.readouterr().err


@pytest.fixture
def no_model_loads(monkeypatch):
    """Make loading a model fail the test: inputs must be checked before."""

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(cli.common, "load_classifier", loaded)
    monkeypatch.setattr("ecgrhythm.training.trainer.train", loaded)
    monkeypatch.setattr("ecgrhythm.evaluation.calibration.open_model", loaded)


def test_missing_inputs_are_reported_before_any_model_loads(tmp_path, cinc2017_dir, no_model_loads, capsys):
    missing = tmp_path / "A09999"
    for command in ("classify", "episodes"):
        assert main([command, str(missing)]) == 1
        err = capsys.readouterr().err
        assert f"{missing}: not found" in err and "no WFDB record of that name (A09999.hea)" in err and "nothing written" in err
    assert main(["classify", str(cinc2017_dir / "A00001.hea"), "--model", str(tmp_path / "no-model")]) == 2
    assert f"--model {tmp_path / 'no-model'}: no such model folder" in capsys.readouterr().err
    runs = [
        ["evaluate", "--data", str(tmp_path / "no-data"), "--output", str(tmp_path / "out")],
        ["evaluate", "--task", "episodes", "--data", str(tmp_path / "no-data"), "--output", str(tmp_path / "out")],
        ["evaluate", "--data", str(cinc2017_dir), "--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "out")],
        ["train", "--data", str(tmp_path / "no-data"), "--output", str(tmp_path / "out")],
        ["calibrate", str(tmp_path / "no-model"), "--predictions", str(tmp_path / "no-predictions.csv")],
        ["export", "--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "out.onnx")],
    ]
    for args in runs:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(tmp_path / "no-") in err and ("no such" in err or "No such" in err), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.onnx").exists()


def test_evaluate_warns_once_that_a_score_is_not_held_out(tmp_path, cinc2017_dir, tiny_model_dir, capsys, caplog):
    folder = _copy(cinc2017_dir, tmp_path / "in", GOOD)
    labels = dict(line.split(",") for line in (cinc2017_dir / "REFERENCE.csv").read_text().split())
    (folder / "REFERENCE.csv").write_text("".join(f"{n},{labels[n]}\n" for n in GOOD))
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns("checkpoint"))
    (model / "split.json").write_text('{"train": ["A00001", "A00002", "A00003", "A00004"], "val": []}')  # trained on all of them
    assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    said = captured.out + captured.err + caplog.text  # the library's warning goes to the log (stderr outside pytest)
    assert said.count("held-out score") == 1 and "NOT a held-out score" in said
    assert "scored 4 records, every one of which the model was trained on" in captured.out
    assert "wrote " in captured.err and "wrote " not in captured.out


def test_a_product_command_is_parsed_alike_by_a_parser_of_that_command_alone():
    argv = ["-v", "classify", "A.hea", "--output", "-", "--backend", "onnx", "--lead", "II"]
    assert cli._named_command(argv) == "classify"
    assert vars(cli.build_parser("classify").parse_args(argv)) == vars(cli.build_parser().parse_args(argv))
    [commands] = [a for a in cli.build_parser("classify")._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(commands.choices) == ["classify"]
    for argv in (["--help"], ["--version"], ["study", "--help"], ["clasify"], []):  # the whole parser: every command listed
        assert cli._named_command(argv) is None


def test_every_command_has_a_description_and_a_help_line(capsys):
    parser = cli.build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {a.dest: a.help for a in commands._choices_actions}
    assert set(cli.COMMANDS) <= set(commands.choices)
    for name, command in commands.choices.items():
        assert command.description and len(command.description) > 60 and helps.get(name), name
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "/docs" in capsys.readouterr().out


def _png_of(path):
    """The size in pixels of the PNG `path`, checking it is one."""
    from PIL import Image

    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(path) as image:
        return image.size


def test_episodes_plot_draws_one_picture_per_record_of_a_folder(cpsc2021_dir, tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("data_101_6", "data_101_8"):  # 2 min each, 2 leads at 200 Hz
        for suffix in (".hea", ".dat"):
            shutil.copy(cpsc2021_dir / f"{name}{suffix}", folder)
    pictures = tmp_path / "pictures"
    assert main(["episodes", str(folder), "--plot", str(pictures), "-o", str(tmp_path / "e.csv"), "--model", str(tiny_model_dir)]) == 0
    assert sorted(p.name for p in pictures.iterdir()) == ["data_101_6.png", "data_101_8.png"]
    for picture in pictures.iterdir():
        assert _png_of(picture) == (1600, 700) and 10_000 < picture.stat().st_size < 150_000
    assert f"and 2 pictures into {pictures}" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["data_101_6.dat", "data_101_6.hea", "data_101_8.dat", "data_101_8.hea"]


def test_episodes_plot_reports_a_record_that_fails_and_draws_the_others(cpsc2021_dir, tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("ECG\nnot a number\n")
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    (pictures / "data_101_8.png").write_text("a picture of someone else's")  # never replaced
    records = [str(cpsc2021_dir / "data_101_6"), str(bad), str(cpsc2021_dir / "data_101_8.hea")]
    code = main(["episodes", *records, "--fs", "200", "--plot", str(pictures), "--summary", str(tmp_path / "s.csv"), "--model", str(tiny_model_dir)])
    captured = capsys.readouterr()
    assert code == 1
    assert _png_of(pictures / "data_101_6.png") == (1600, 700)
    assert (pictures / "data_101_8.png").read_text() == "a picture of someone else's"
    assert f"cannot classify {bad}" in captured.err
    assert f"cannot draw {cpsc2021_dir / 'data_101_8.hea'}: data_101_8.png exists in {pictures} and is not a picture ecgrhythm drew" in captured.err
    assert "found the episodes of 2 records" in captured.err and "2 failed" in captured.err and "1 picture into" in captured.err
    assert [r[0] for r in _rows(tmp_path / "s.csv")[1:]] == ["data_101_6", "data_101_8"]  # its episodes are written still


def test_episodes_plot_into_a_file_is_refused_before_the_model_loads(cpsc2021_dir, tmp_path, no_model_loads, capsys):
    not_a_folder = tmp_path / "pictures"
    not_a_folder.write_text("")
    assert main(["episodes", str(cpsc2021_dir / "data_101_6"), "--plot", str(not_a_folder)]) == 2
    assert f"--plot {not_a_folder} is a file" in capsys.readouterr().err


def test_a_wrong_fs_warns_one_line_naming_the_file_and_strict_checks_fail_the_record(cinc2017_dir, tiny_model_dir, tmp_path, capsys):
    from ecgrhythm.records import read_record

    np.save(tmp_path / "A01519.npy", read_record(cinc2017_dir / "A01519.hea").signal)  # 300 Hz, given as 500 Hz below
    np.save(tmp_path / "A00001.npy", read_record(cinc2017_dir / "A00001.hea").signal)
    paths = [str(tmp_path / "A01519.npy"), str(tmp_path / "A00001.npy")]
    assert main(["classify", *paths, "--fs", "500", "--model", str(tiny_model_dir)]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if "warning" in line]
    assert warned == [line for line in warned if line.startswith(f"ecgrhythm classify: warning: {paths[0]}: implausible record at fs=500 Hz")]
    assert len(warned) == 1 and "looks like 300 Hz" in warned[0]
    assert [r[0] for r in csv.reader(captured.out.splitlines())][1:] == ["A01519", "A00001"]  # still classified
    assert main(["classify", *paths, "--fs", "500", "--model", str(tiny_model_dir), "--strict-checks"]) == 1
    captured = capsys.readouterr()
    assert f"ecgrhythm classify: cannot classify {paths[0]}: implausible record at fs=500 Hz" in captured.err
    assert [r[0] for r in csv.reader(captured.out.splitlines())][1:] == ["A00001"] and "1 failed" in captured.err
    assert main(["episodes", paths[0], "--fs", "500", "--model", str(tiny_model_dir), "--strict-checks"]) == 1
    assert f"ecgrhythm episodes: cannot classify {paths[0]}: implausible record at fs=500 Hz" in capsys.readouterr().err
    assert main(["classify", paths[0], "--fs", "300", "--model", str(tiny_model_dir), "--strict-checks"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_classify_answers_a_long_record_as_its_episodes_do(tmp_path, cpsc2021_dir, cinc2017_dir, capsys):
    """The issue's two records: `classify` (shipped model) says AF where `episodes --summary` finds it, with the same burden."""
    records = [str(cpsc2021_dir / "data_101_8"), str(cpsc2021_dir / "data_84_3"), str(cinc2017_dir / "A00001")]
    summary = tmp_path / "summary.csv"
    assert main(["episodes", *records, "-o", str(tmp_path / "episodes.csv"), "--summary", str(summary)]) == 0
    assert main(["classify", *records, "-o", str(tmp_path / "classify.csv")]) == 0
    capsys.readouterr()
    found = {r["record"]: r for r in csv.DictReader(open(summary, newline=""))}
    rows = {r["record"]: r for r in csv.DictReader(open(tmp_path / "classify.csv", newline=""))}
    assert [rows[n]["record_class"] for n in ("data_101_8", "data_84_3")] == ["paroxysmal", "persistent"]
    for name in ("data_101_8", "data_84_3"):  # labelled O and N before: the networks' P(A) over the whole record is 0.26 and 0.10
        assert rows[name]["label"] == "A" and float(rows[name]["A"]) < 0.3
        assert (rows[name]["af_burden"], rows[name]["record_class"]) == (found[name]["af_burden"], found[name]["record_class"])
    assert rows["A00001"]["label"] == "N" and rows["A00001"]["af_burden"] == rows["A00001"]["record_class"] == ""


def test_records_of_one_name_from_two_folders_are_not_two_identical_rows(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    first, second = _copy(cinc2017_dir, tmp_path / "a", ["A00001"]), tmp_path / "b"
    second.mkdir()
    for suffix in (".hea", ".mat"):  # another recording under the same name
        shutil.copy(cinc2017_dir / f"A00002{suffix}", second / f"A00001{suffix}")
    out = tmp_path / "out.csv"
    assert main(["classify", str(first / "A00001.hea"), str(second / "A00001.hea"), "--model", str(tiny_model_dir), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"cannot classify {second / 'A00001.hea'}: another record named 'A00001' ({first / 'A00001.hea'}) is already in this run" in err
    assert [row[0] for row in _rows(out)[1:]] == ["A00001"]  # the first one's row, once
