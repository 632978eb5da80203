"""Distillation targets: a teacher's out-of-fold probabilities mixed with the labels (ecgrhythm.training.teacher)."""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CLI, TINY_MODEL, TINY_PREPROCESS, TINY_TRAIN

from ecgrhythm.training.oof import read_oof
from ecgrhythm.training.teacher import read_teacher

RUNS = Path(__file__).resolve().parents[2] / "docs" / "results" / "crossval"
PAIR = [RUNS / "seed1-lstm128" / "run", RUNS / "seed1-augment-lstm128" / "run"]
CLASSES = ["N", "A", "O", "~"]


def _fold_probabilities(run: Path) -> dict:
    table = {}
    for k in range(5):
        names, _, _, probs, _ = read_oof(run / f"fold{k}" / "oof-last.csv")
        table.update(zip(names, probs))
    return table


def test_a_teacher_averages_its_sources_and_mixes_them_with_each_label():
    teacher = read_teacher(PAIR, weight=0.3)
    first, second = (_fold_probabilities(run) for run in PAIR)
    assert teacher.classes == tuple(CLASSES) and len(teacher.probabilities) == len(first) == 7249
    names = ["A00001", "A00004", "A00013", "A00022"]
    mean = np.stack([(first[n] + second[n]) / 2 for n in names])
    np.testing.assert_allclose(np.stack([teacher.probabilities[n] for n in names]), mean / mean.sum(axis=1, keepdims=True))
    labels = [0, 1, 2, 3]
    targets = teacher.targets(names, labels, CLASSES)
    np.testing.assert_allclose(targets, 0.7 * np.eye(4) + 0.3 * mean / mean.sum(axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    csv_teacher = read_teacher([PAIR[0] / "fold2" / "oof-last.csv"], weight=1.0)  # one fold's file: its records only
    assert len(csv_teacher.probabilities) == len(read_oof(PAIR[0] / "fold2" / "oof-last.csv")[0])
    assert teacher.settings() == {"weight": 0.3, "records": 7249, "sha256": teacher.digest}
    assert read_teacher(PAIR[:1]).digest != teacher.digest, "another teacher, another digest"


def test_a_teacher_refuses_what_it_cannot_teach(tmp_path):
    with pytest.raises(ValueError, match=r"expected the teacher's share of the target, in \(0, 1\]. Received: weight=0"):
        read_teacher(PAIR, weight=0)
    with pytest.raises(FileNotFoundError, match="nowhere.csv: no such out-of-fold CSV"):
        read_teacher([tmp_path / "nowhere.csv"])
    with pytest.raises(ValueError, match="name one twice"):
        read_teacher([PAIR[0], PAIR[0] / ".." / "run"])
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValueError, match="binary.csv: not an out-of-fold probability file"):
        read_teacher([binary])
    unfinished = tmp_path / "unfinished"
    shutil.copytree(PAIR[0], unfinished)
    (unfinished / "fold3" / "oof-last.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"unfinished: a teacher needs every fold's oof-last.csv.*finish that cross-validation first"):
        read_teacher([unfinished])
    partial = tmp_path / "partial.csv"
    partial.write_text("record,fold,true_label,N,A,O,~\nA00001,0,N,0.9,0.0,0.1,0.0\n")
    with pytest.raises(ValueError, match=r"partial.csv: its records or their labels differ from those of .*seed1-lstm128/run, such as A00002"):
        read_teacher([PAIR[0], partial])
    teacher = read_teacher([partial])
    assert teacher.class_weighting is None, "a CSV does not say how its networks were trained"
    with pytest.raises(ValueError, match=r"no probabilities for 1 training record\(s\), such as A00004"):
        teacher.targets(["A00001", "A00004"], [0, 1], CLASSES)
    with pytest.raises(ValueError, match=r"has classes \['N', 'A', 'O', '~'\], the training records \['N', 'A'\]"):
        teacher.targets(["A00001"], [0], ["N", "A"])
    with pytest.raises(ValueError, match=r"scored against other labels for 1 record\(s\), such as A00001 \(N there, A here\)"):
        teacher.targets(["A00001"], [1], CLASSES)
    with pytest.raises(ValueError, match="one label per record, not a multi-label one"):
        teacher.targets(["A00001"], [[1, 0, 0, 0]], CLASSES)
    pair = read_teacher(PAIR)
    assert pair.class_weighting == "balanced"
    with pytest.raises(ValueError, match="trained with class_weighting 'balanced', the student with 'none'"):
        pair.targets(["A00001"], [0], CLASSES, "none")
    other = tmp_path / "other.csv"
    other.write_text("record,fold,true_label,N,A\nA00001,0,N,0.9,0.1\n")
    with pytest.raises(ValueError, match=r"other.csv: its classes \['N', 'A'\] differ"):
        read_teacher([partial, other])


def _constant_teacher(path: Path, cinc2017_dir: Path, label: str) -> Path:
    """A teacher that gives every record of `cinc2017_dir` 0.97 for `label`."""
    reference = [line.split(",") for line in (cinc2017_dir / "REFERENCE.csv").read_text().splitlines() if line.strip()]
    row = ",".join("0.970000" if c == label else "0.010000" for c in CLASSES)
    path.write_text("record,fold,true_label," + ",".join(CLASSES) + "\n" + "".join(f"{n},0,{truth},{row}\n" for n, truth in reference))
    return path


def test_a_student_learns_its_teachers_answer_and_resumes_only_with_the_same_teacher(tmp_path, cinc2017_dir):
    """A teacher calling every record noisy, at full weight, turns a tiny network's answers towards noise."""
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.training.trainer import train

    teacher = read_teacher([_constant_teacher(tmp_path / "noisy.csv", cinc2017_dir, "~")], weight=1.0)
    tc = dataclasses.replace(TINY_TRAIN, epochs=3, learning_rate=0.01, class_weighting="none")
    common = {"preprocess_config": TINY_PREPROCESS, "model_config": TINY_MODEL, "train_config": tc, "limit": 64, "verbose": 0}
    plain, student = (train(cinc2017_dir, tmp_path / name, teacher=t, **common) for name, t in (("plain", None), ("student", teacher)))
    records = [str(cinc2017_dir / n) for n in ("A00001", "A00002", "A00003", "A00004", "A00005", "A00006")]
    noisy = [RhythmClassifier.load(r.model_dir).predict_records(records).probabilities[:, 3].mean() for r in (plain, student)]
    assert noisy[1] > noisy[0] + 0.2, f"mean probability of ~: {noisy[0]:.3f} without the teacher, {noisy[1]:.3f} with it"
    metadata = json.loads((student.model_dir / "config.json").read_text())["metadata"]
    assert metadata["teacher"] == {**teacher.settings(), "sources": [str(tmp_path / "noisy.csv")]}
    normal = read_teacher([_constant_teacher(tmp_path / "normal.csv", cinc2017_dir, "N")], weight=1.0)
    with pytest.raises(ValueError, match="the checkpoint was made with other settings"):
        train(cinc2017_dir, student.model_dir, teacher=normal, resume=True, **common)
    command = [sys.executable, "-m", "ecgrhythm.cli", "train", "--data", str(cinc2017_dir), "--output", str(tmp_path / "new"), *TINY_CLI]
    missing = subprocess.run([*command, "--teacher", str(tmp_path / "gone.csv"), "--quiet"], capture_output=True, text=True)
    assert missing.returncode == 2 and f"--teacher: {tmp_path / 'gone.csv'}: no such out-of-fold CSV" in missing.stderr, missing.stderr
    alone = subprocess.run([*command, "--teacher-weight", "0.3", "--quiet"], capture_output=True, text=True)
    assert alone.returncode == 2 and "--teacher-weight goes with --teacher" in alone.stderr, alone.stderr
    zero = subprocess.run([*command, "--teacher", str(PAIR[0]), "--teacher-weight", "0", "--quiet"], capture_output=True, text=True)
    assert zero.returncode == 2 and "--teacher-weight 0: expected the teacher's share" in zero.stderr, zero.stderr
    assert not (tmp_path / "new").exists()
