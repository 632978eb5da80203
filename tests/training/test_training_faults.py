"""Training that goes wrong (issue #37, items 6 and 9): a NaN loss stops the run with a non-zero exit and no NaN
model; a checkpoint with impossible epochs, or a truncated one, is refused with a message naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_CLI

from ecgrhythm.cli import main
from ecgrhythm.training.checkpoint import STATE_FILE


def _train(cinc2017_dir, out, *extra):
    return main(["train", "--data", str(cinc2017_dir), "--output", str(out), *TINY_CLI, "--limit", "32", "--batch-size", "16", *extra])


def test_a_diverging_run_exits_non_zero_and_saves_no_nan_model(cinc2017_dir, tmp_path, capsys):
    out = tmp_path / "nan"
    assert _train(cinc2017_dir, out, "--val-fraction", "0", "--learning-rate", "1e12", "--epochs", "2") == 2  # before: 0
    err = capsys.readouterr().err
    assert "training diverged and stopped, and no model was saved" in err and "lower `learning_rate`" in err
    assert not (out / "config.json").exists() and not (out / "model.weights.h5").exists()
    state = out / "checkpoint" / STATE_FILE
    if state.exists():  # the checkpoint keeps the last finite epoch only
        with np.load(state) as data:
            assert all(np.isfinite(data[k]).all() for k in data.files if k.startswith("model_"))


@pytest.fixture(scope="module")
def finished(cinc2017_dir, tmp_path_factory):
    """A finished run of 2 epochs (its checkpoint at the last epoch, index 1) and the arguments that made it."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert _train(cinc2017_dir, out, "--val-fraction", "0.25", "--epochs", "2") == 0
    return out


def _with_state(run, tmp_path, change):
    """A copy of the run's checkpoint whose state JSON `change` edited; returns the copy's folder."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    path = copy / "checkpoint" / STATE_FILE
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    state = json.loads(str(arrays.pop("state")))
    change(state)
    with open(path, "wb") as f:
        np.savez(f, state=np.array(json.dumps(state)), **arrays)
    return copy


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.update(epoch=10**9),  # before: --resume ended at once with exit 0
        lambda s: s.update(epoch=-5),
        lambda s: s.update(epoch=2),  # beyond the configured 2 epochs (0-based 0 and 1)
        lambda s: s["best"].update(epoch=7),
        lambda s: s.update(train_seconds=float("nan")),
    ],
)
def test_a_checkpoint_with_impossible_numbers_is_refused_naming_the_file(finished, cinc2017_dir, tmp_path, capsys, change):
    copy = _with_state(finished, tmp_path, change)
    assert _train(cinc2017_dir, copy, "--val-fraction", "0.25", "--epochs", "2", "--resume") == 2
    err = capsys.readouterr().err
    assert f"{copy / 'checkpoint' / STATE_FILE}: the checkpoint" in err and "start a new run" in err


def test_a_truncated_checkpoint_is_refused_naming_the_file(finished, cinc2017_dir, tmp_path, capsys):
    copy = _with_state(finished, tmp_path, lambda s: None)
    state = copy / "checkpoint" / STATE_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    assert _train(cinc2017_dir, copy, "--val-fraction", "0.25", "--epochs", "2", "--resume") == 2
    err = capsys.readouterr().err
    assert f"{state}: the checkpoint is damaged or not a checkpoint (BadZipFile" in err and "unexpected error" not in err
