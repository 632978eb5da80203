"""The resumable state of a training run: `OUTPUT/checkpoint/`.

After every epoch the whole state (weights, optimiser state, history, best
weights and the run's settings) is written as one file, atomically, so a run
killed at any point continues from the last finished epoch. The checkpoint
folder also keeps the run's train/validation split, and a resume is refused
when the settings or the split differ.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import numbers
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ecgrhythm.config import resolve_portable
from ecgrhythm.networks.registry import DEFAULT_NETWORK
from ecgrhythm.networks.saving import CHECKPOINT_DIR
from ecgrhythm.networks.split import SPLIT_FILE
from ecgrhythm.utils.io import atomic_write, atomic_write_text

__all__ = ["Checkpoint", "RunState", "STATE_FILE"]

logger = logging.getLogger(__name__)

STATE_FILE = "state.npz"


@dataclasses.dataclass
class RunState:
    """Where a run stands after its last finished epoch.

    Attributes:
        history: one log row (dict) per finished epoch.
        best: `{"epoch": 0-based or -1, "score", "f1", "extras"}` of the best epoch so far (the last one, with
            `score` None, in a run without validation records).
        best_values: the network's variable values at the best epoch.
        epoch: the last finished epoch (0-based), -1 before the first.
        train_seconds: training and validation time over all sessions.
    """

    history: list[dict]
    best: dict
    best_values: list[np.ndarray]
    epoch: int = -1
    train_seconds: float = 0.0


def _same_settings(stored: dict, current: dict) -> bool:
    """Whether two runs' settings match; the data folders are compared as resolved paths."""
    stored, current = dict(stored), json.loads(json.dumps(current))
    if isinstance(stored.get("model"), dict):  # runs started before networks had names used the default one
        stored["model"] = {"network": DEFAULT_NETWORK, **stored["model"]}
    return resolve_portable(stored.pop("data")) == resolve_portable(current.pop("data")) and stored == current


def _check_state(state, path: Path) -> None:
    """Refuse a checkpoint's state whose epoch numbers are impossible for its run (a damaged or edited file)."""
    epochs = state["settings"]["train"]["epochs"] if isinstance(state, dict) else None
    whole = lambda v, low, high: isinstance(v, numbers.Integral) and not isinstance(v, bool) and low <= v <= high  # noqa: E731
    epoch, best, seconds = state.get("epoch"), state.get("best"), state.get("train_seconds")
    if not (whole(epochs, 1, 10**6) and whole(epoch, 0, epochs - 1) and isinstance(best, dict) and whole(best.get("epoch"), -1, epoch)):
        shown = {"epoch": epoch, "best epoch": best.get("epoch") if isinstance(best, dict) else best, "epochs": epochs}
        raise ValueError(f"{path}: the checkpoint states impossible epochs {shown}; it is damaged: start a new run (`resume=False`) in a new folder")
    if not (isinstance(state.get("history"), list) and isinstance(seconds, numbers.Real) and math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"{path}: the checkpoint's history or training time is damaged; start a new run (`resume=False`) in a new folder")


def _assign(variables, values) -> None:
    for var, value in zip(variables, values, strict=True):
        var.assign(value)


class Checkpoint:
    """The checkpoint folder of the run writing `output_dir`.

    Args:
        output_dir: the run's model folder; the state lives in `output_dir/checkpoint`.
            A checkpoint that an interrupted final save (of an earlier version)
            left beside it, as `.NAME.checkpoint`, is put back in place.
        writes: `False` for a process that only reads the checkpoint (not process 0 of a multi-process run).
    """

    def __init__(self, output_dir, writes: bool = True):
        self.output_dir = Path(output_dir)
        self.folder = self.output_dir / CHECKPOINT_DIR
        self.writes = writes
        aside = self.output_dir.parent / f".{self.output_dir.name}.checkpoint"
        if writes and not self.has_state and (aside / STATE_FILE).is_file():
            self.output_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.folder, ignore_errors=True)
            shutil.move(str(aside), self.folder)

    @property
    def has_state(self) -> bool:
        """Whether a finished epoch's state is there to resume from."""
        return (self.folder / STATE_FILE).is_file()

    def begin(self, model, split_text: str) -> RunState:
        """Start a new run: keep its split; the state of a run before its first epoch."""
        if self.writes:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.folder / SPLIT_FILE, split_text)
        return RunState([], {"epoch": -1, "score": -1.0, "f1": {}, "extras": {}}, [v.numpy() for v in model.variables])

    def restore(self, model, settings: dict, split_text: str) -> RunState:
        """Load the saved state into `model` (weights and optimiser) and return where the run stands.

        Raises:
            ValueError: the checkpoint was made with other settings, on another
                split, or by a network with other variables; or it is damaged (a truncated file, impossible
                epoch numbers), naming the file.
        """
        path = self.folder / STATE_FILE
        sizes = {"model": len(model.variables), "optimizer": len(model.optimizer.variables), "best": len(model.variables)}
        try:
            with np.load(path, allow_pickle=False) as data:
                state = json.loads(str(data["state"]))
                _check_state(state, path)
                groups = {}
                for name, size in sizes.items():
                    found = sum(1 for key in data.files if key.startswith(f"{name}_"))
                    if found != size:
                        raise ValueError(
                            f"{path}: the checkpoint holds {found} {name} arrays, the network has {size}; it was made by another version"
                        )
                    groups[name] = [data[f"{name}_{i}"] for i in range(size)]
        except (zipfile.BadZipFile, EOFError, OSError, KeyError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
                raise
            raise ValueError(
                f"{path}: the checkpoint is damaged or not a checkpoint ({type(exc).__name__}: {exc}); start a new run (`resume=False`) in a new folder"
            ) from None
        if not _same_settings(state["settings"], settings):
            raise ValueError(
                f"{self.folder}: the checkpoint was made with other settings; train with the same settings, or start a new run (`resume=False`)"
            )
        if (self.folder / SPLIT_FILE).read_text() != split_text:
            raise ValueError(f"{self.folder}: the data folder has changed since the run started (another train/validation split); start a new run")
        _assign(model.variables, groups["model"])
        _assign(model.optimizer.variables, groups["optimizer"])
        run = RunState(state["history"], state["best"], groups["best"], state["epoch"], state["train_seconds"])
        best = "no validation" if run.best["score"] is None else f"best {run.best['score']:.4f} at epoch {run.best['epoch'] + 1}"
        logger.info("resuming at epoch %d (%s)", run.epoch + 2, best)
        return run

    def save(self, settings: dict, run: RunState, model_values, optimizer_values) -> None:
        """Write the whole state as one file, atomically: a kill leaves the old or the new state."""
        if not self.writes:
            return
        state = {"settings": settings, "epoch": run.epoch, "history": run.history, "best": run.best, "train_seconds": run.train_seconds}
        groups = {"model": model_values, "optimizer": optimizer_values, "best": run.best_values}
        arrays = {f"{name}_{i}": np.asarray(a) for name, values in groups.items() for i, a in enumerate(values)}
        buffer = io.BytesIO()
        np.savez(buffer, state=np.array(json.dumps(state)), **arrays)
        with atomic_write(self.folder / STATE_FILE, "wb") as f:
            f.write(buffer.getvalue())
