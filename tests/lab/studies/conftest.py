"""Fixtures of the study tests: a small real CinC 2017 folder, its study data, and a tiny budget."""

from __future__ import annotations

import pytest

pytest.importorskip("optuna")

from ecgrhythm.lab.studies import Budget, load_study_data  # noqa: E402
from ecgrhythm.records import read_reference  # noqa: E402

PER_CLASS = {"N": 30, "A": 14, "O": 20, "~": 8}
TINY = Budget(epochs=1, train_records=40, val_fraction=0.3, batch_size=16)


@pytest.fixture(scope="session")
def small_folder(tmp_path_factory, cinc2017_dir):
    """72 real CinC 2017 records (all four classes), linked into a folder with their REFERENCE.csv rows."""
    folder = tmp_path_factory.mktemp("cinc2017-small")
    reference = read_reference(cinc2017_dir / "REFERENCE.csv")
    wanted = dict(PER_CLASS)
    rows = []
    for name, label in sorted(reference.items()):
        if wanted.get(label, 0) > 0:
            wanted[label] -= 1
            rows.append(f"{name},{label}")
            for suffix in (".hea", ".mat"):
                (folder / f"{name}{suffix}").symlink_to(cinc2017_dir / f"{name}{suffix}")
    (folder / "REFERENCE.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="session")
def tiny() -> Budget:
    """One epoch on 40 records: seconds per run, not accuracy."""
    return TINY


@pytest.fixture(scope="session")
def small_data(small_folder):
    return load_study_data(small_folder, TINY)
