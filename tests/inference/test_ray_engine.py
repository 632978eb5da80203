"""The Ray engine of `classify` (Ray Data actors) against the local engine, on real records; skipped without the ray extra."""

import csv
import shutil

import numpy as np
import pytest

from ecgrhythm.cli import main

NAMES = ["A00001", "A00002", "A00003", "A00004", "A00005", "A00006", "A00007", "A00009"]


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray cluster (2 CPUs) for the module: the CLI joins it instead of starting one per call."""
    pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
    from ecgrhythm.inference.ray_engine import ray_cluster

    with ray_cluster(workers=2) as cpus:
        yield cpus


@pytest.fixture
def folder(tmp_path, cinc2017_dir):
    """Eight real CinC 2017 records and one bad header among them."""
    out = tmp_path / "in"
    out.mkdir()
    for name in NAMES:
        for suffix in (".hea", ".mat"):
            shutil.copy(cinc2017_dir / f"{name}{suffix}", out)
    (out / "A00004b.hea").write_text("A00004b 1 300 9000\nA00004b.mat 16 1000 16 0 0 0 0 ECG\n")  # its signal file is missing
    return out


def _classify(capsys, *args):
    status = main(["classify", *map(str, args)])
    return status, capsys.readouterr().err.splitlines()


def test_ray_engine_writes_the_local_csv_and_reports_the_bad_file_the_same(ray_session, folder, tmp_path, capsys):
    status_local, err_local = _classify(capsys, folder, "-o", tmp_path / "local.csv")
    status_ray, err_ray = _classify(capsys, folder, "-o", tmp_path / "ray.csv", "--engine", "ray", "--workers", "2")
    assert status_local == status_ray == 1
    failures = [line for line in err_ray if line.startswith("ecgrhythm classify: cannot classify")]
    assert failures == [line for line in err_local if line.startswith("ecgrhythm classify: cannot classify")]
    assert len(failures) == 1 and "A00004b" in failures[0]
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    with open(tmp_path / "ray.csv", newline="") as f:
        assert [row[0] for row in list(csv.reader(f))[1:]] == NAMES


def test_parquet_output_reads_back_as_the_csv(ray_session, folder, tmp_path, capsys):
    import pyarrow.parquet as pq

    _classify(capsys, folder, "-o", tmp_path / "local.csv")
    assert _classify(capsys, folder, "-o", tmp_path / "out.parquet", "--engine", "ray")[0] == 1
    table = pq.read_table(tmp_path / "out.parquet")
    with open(tmp_path / "local.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert table.column_names == header
    assert table.column("record").to_pylist() == [r[0] for r in rows] == NAMES
    assert table.column("label").to_pylist() == [r[1] for r in rows]
    assert header[2] == "lead" and table.column("lead").to_pylist() == [r[2] for r in rows]
    assert header[-2:] == ["af_burden", "record_class"]  # empty for these short records, null in Parquet
    assert [r[-2:] for r in rows] == [["", ""]] * len(rows) and table.column("record_class").to_pylist() == [None] * len(rows)
    probs = np.column_stack([table.column(c).to_numpy() for c in header[3:-2]])
    np.testing.assert_allclose(probs, np.array([r[3:-2] for r in rows], dtype=float), atol=5e-7)


def test_engine_options_without_the_ray_engine_are_refused(folder, tmp_path, capsys):
    status, err = _classify(capsys, folder, "-o", tmp_path / "out.csv", "--workers", "2")
    assert status == 2 and "--engine ray" in err[-1]
    assert not (tmp_path / "out.csv").exists()


def test_a_text_file_of_paths_classifies_those_records_on_ray(ray_session, folder, tmp_path, capsys):
    listed = [folder / "A00003.hea", folder / "A00001.hea", tmp_path / "missing.hea"]
    (tmp_path / "paths.txt").write_text("".join(f"{p}\n" for p in listed))
    status, err = _classify(capsys, f"@{tmp_path / 'paths.txt'}", "-o", tmp_path / "listed.csv", "--engine", "ray")
    assert status == 1 and [line for line in err if "missing.hea" in line]
    with open(tmp_path / "listed.csv", newline="") as f:
        assert [row[0] for row in list(csv.reader(f))[1:]] == ["A00003", "A00001"]


def test_ray_engine_answers_a_long_record_from_its_episodes_as_the_local_engine(ray_session, cpsc2021_dir, tmp_path, capsys):
    out = tmp_path / "long"
    out.mkdir()
    for suffix in (".hea", ".dat"):
        shutil.copy(cpsc2021_dir / f"data_101_8{suffix}", out)  # 121 s, over the networks' training length
    assert _classify(capsys, out, "-o", tmp_path / "local.csv")[0] == 0
    assert _classify(capsys, out, "-o", tmp_path / "ray.csv", "--engine", "ray", "--workers", "1")[0] == 0
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    with open(tmp_path / "ray.csv", newline="") as f:
        header, row = list(csv.reader(f))
    assert header[-2:] == ["af_burden", "record_class"] and row[-1] in ("paroxysmal", "persistent") and row[1] == "A"
