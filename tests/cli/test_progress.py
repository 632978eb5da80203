"""The commands' progress bars: drawn on standard error only when it is a terminal, never into a pipe or a file."""

import io
import shutil
import sys

import pytest

import ecgrhythm.cli as cli
import ecgrhythm.cli.progress as progress
from ecgrhythm.cli import main


class _Terminal(io.StringIO):
    """Standard error as a terminal: what tqdm looks at (`isatty`) to decide whether to draw."""

    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def _no_compilation_cache(monkeypatch):
    monkeypatch.setenv(cli.CACHE_ENV, "off")


def test_bars_draw_records_and_hours_of_signal_on_a_terminal_only(monkeypatch):
    monkeypatch.setattr(progress, "_SIGNAL_DELAY_S", 0)  # draw the signal bar at once (normally after 2 s)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress.Bars(2, "episodes") as bars:
        bars.signal_done(1800, 7200)
        bars.signal_done(7200, 7200)
        bars.records_done()
        progress.write("ecgrhythm episodes: cannot classify x.hea: broken")
        bars.records_done()
    shown = terminal.getvalue()
    assert "/2.00 h of signal [" in shown  # the record's bar (tqdm redraws at most every 0.1 s, so not every update)
    assert "episodes: 100%" in shown and "2/2" in shown and "ecgrhythm episodes: cannot classify x.hea: broken\n" in shown

    piped = io.StringIO()  # isatty() is False, as for a pipe or a file
    monkeypatch.setattr(sys, "stderr", piped)
    with progress.Bars(2, "episodes") as bars:
        bars.signal_done(1800, 7200)
        bars.records_done(2)
        progress.write("a line")
    assert piped.getvalue() == "a line\n"


def test_classify_of_a_folder_shows_records_done_on_a_terminal(tmp_path, cinc2017_dir, tiny_model_dir, monkeypatch, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("A00001", "A00002", "A00003"):
        for suffix in (".hea", ".mat"):
            shutil.copy(cinc2017_dir / f"{name}{suffix}", folder)
    args = ["classify", str(folder), "--model", str(tiny_model_dir)]
    assert main(args) == 0
    piped = capsys.readouterr()
    assert piped.err.count("\n") == 1 and "%|" not in piped.err and "\r" not in piped.err  # a pipe gets the status line alone

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(args) == 0
    shown = terminal.getvalue()
    assert "classify: 100%" in shown and "3/3" in shown and "record/s" in shown
    assert shown.rstrip().splitlines()[-1].startswith("classified 3 records")
    assert capsys.readouterr().out == piped.out  # the CSV on stdout is the same either way


def test_episodes_show_the_hours_of_signal_of_a_record(cpsc2021_dir, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(progress, "_SIGNAL_DELAY_S", 0)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["episodes", str(cpsc2021_dir / "data_101_6"), "--model", str(tiny_model_dir)]) == 0
    shown = terminal.getvalue()
    assert "/0.03 h of signal [" in shown and "episodes: 100%" in shown and "1/1" in shown  # 111.8 s of signal
    assert capsys.readouterr().out.startswith("record,lead,start_s,end_s,label,probability\ndata_101_6,")


def test_a_real_terminal_gets_the_bar_and_a_pipe_does_not(cinc2017_dir, tiny_model_dir, tmp_path):
    """The command in its own process, its standard error a pseudo-terminal of 100 columns, then a pipe."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    args = [sys.executable, "-m", "ecgrhythm.cli", "classify", str(cinc2017_dir / "A00001"), str(cinc2017_dir / "A00002")]
    args += ["--model", str(tiny_model_dir), "-o", str(tmp_path / "out.csv")]
    env = {**os.environ, "KERAS_BACKEND": "jax", cli.CACHE_ENV: "off"}
    main_fd, terminal_fd = pty.openpty()
    fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    run = subprocess.Popen(args, stderr=terminal_fd, stdout=subprocess.DEVNULL, env=env)
    os.close(terminal_fd)
    shown = b""
    while chunk := _read(main_fd):
        shown += chunk
    os.close(main_fd)
    assert run.wait(timeout=120) == 0
    assert b"classify: 100%|" in shown and b"2/2 [" in shown and b"classified 2 records" in shown
    piped = subprocess.run(args, capture_output=True, env=env, timeout=120)
    assert piped.returncode == 0 and piped.stderr.startswith(b"classified 2 records") and piped.stderr.count(b"\n") == 1


def _read(fd) -> bytes:
    """The next bytes of a pseudo-terminal, empty once the other side has closed it."""
    import os

    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: every process writing to it has ended
        return b""
