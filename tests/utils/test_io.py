import os
import stat
import threading

import pytest

from ecgrhythm.utils.io import atomic_write, atomic_write_text


def _leftovers(*folders):
    return [p.name for folder in folders for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_symlink_stays_a_link_and_its_target_gets_the_new_content(tmp_path):
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "out.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(os.path.relpath(target, tmp_path))
    atomic_write_text(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == os.path.join("data", "out.csv")
    assert target.read_text() == "new\n" and not target.is_symlink()
    assert _leftovers(tmp_path, tmp_path / "data") == []


def test_a_failed_write_through_a_link_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with pytest.raises(RuntimeError), atomic_write(link) as f:
        f.write("half")
        raise RuntimeError("stop")
    assert link.is_symlink() and target.read_text() == "old\n" and _leftovers(tmp_path) == []


def test_a_dangling_link_creates_its_target(tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "sub" / "made.csv")
    atomic_write_text(link, "x\n")
    assert link.is_symlink() and (tmp_path / "sub" / "made.csv").read_text() == "x\n"


def test_a_fifo_is_written_directly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    atomic_write_text(fifo, "through the pipe\n")
    reader.join(timeout=30)
    assert received == ["through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _leftovers(tmp_path) == []


def test_a_character_device_stays_a_device(tmp_path):
    """As root a replace would put a regular file where the device was; a private null device checks that
    without risking the machine's /dev/null (which non-root users cannot replace, so there it is used itself)."""
    device = os.devnull
    if os.geteuid() == 0:
        device = tmp_path / "null"
        try:
            os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("root without the right to make device nodes")
    atomic_write_text(device, "discarded\n")
    assert stat.S_ISCHR(os.lstat(device).st_mode) and stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert _leftovers(tmp_path) == []


def test_a_descriptor_alias_is_written_directly(tmp_path):
    read_end, write_end = os.pipe()
    try:
        alias = f"/proc/self/fd/{write_end}" if os.path.isdir("/proc/self/fd") else f"/dev/fd/{write_end}"
        atomic_write_text(alias, "to the descriptor\n")
        assert os.read(read_end, 100) == b"to the descriptor\n"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_csv_rows_end_with_a_line_feed(tmp_path):
    from ecgrhythm.utils.io import csv_writer

    with atomic_write(tmp_path / "out.csv", "w", newline="") as f:
        csv_writer(f).writerows([["record", "label"], ["A00001", 'say "N", twice']])
    assert (tmp_path / "out.csv").read_bytes() == b'record,label\nA00001,"say ""N"", twice"\n'
