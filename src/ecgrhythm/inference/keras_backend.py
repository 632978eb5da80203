"""The Keras backend of a classifier: a model folder written by `ecgrhythm train` (or `ensemble`, or `calibrate`).

An ensemble's networks share one architecture (:func:`ecgrhythm.networks.saving.assemble_ensemble`), so
they all run on the first network: it takes each other network's weights in turn and gets its own back
after. JAX compiles a network's function once per input shape and per network object, seconds each on a
small CPU, so each shape compiles once for the whole ensemble. Importing this module imports no Keras;
loading a folder does.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from ecgrhythm.inference.forward import keras_batch_function

__all__ = ["KerasBackend"]


class KerasBackend:
    """A model folder's networks on Keras (see :class:`~ecgrhythm.inference.backend.Backend`).

    Create one with :meth:`load`.

    Args:
        path: the model folder.
        networks: its Keras networks, the first one running them all.
        config: its configuration (see :class:`~ecgrhythm.inference.backend.Backend`).

    Attributes:
        path, networks, config: as given.
        classes: the model's class names.
        n_networks: `len(networks)`.
        any_batch: False: each batch shape is compiled once.
    """

    any_batch = False

    def __init__(self, path: Path, networks: list, config: dict):
        self.path = path
        self.networks = networks
        self.config = config
        self._swap_lock = threading.Lock()  # the networks run in turn on the first one

    @classmethod
    def load(cls, path) -> KerasBackend:
        """Load the model folder `path` (see :func:`~ecgrhythm.inference.keras_loading.load_networks_fast`).

        Raises:
            ModelFolderError: the folder is missing, incomplete, altered or cannot be loaded.
        """
        from ecgrhythm.inference.keras_loading import load_networks_fast
        from ecgrhythm.networks.saving import ModelFolderError

        path = Path(path)
        if not path.is_dir():
            raise ModelFolderError(
                f"{path}: model folder not found; `model_dir` takes a model folder (written by training) or an exported .onnx file"
            )
        try:
            networks, config = load_networks_fast(path)
        except ModelFolderError:
            raise
        except Exception as exc:
            raise ModelFolderError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from None
        return cls(path, networks, config)

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def n_networks(self) -> int:
        return len(self.networks)

    @property
    def split_source(self) -> str:
        """Where :meth:`training_split` reads the split, for messages (`"split.json"`)."""
        from ecgrhythm.networks.split import SPLIT_FILE

        return SPLIT_FILE

    def training_split(self) -> dict[str, list[str]] | None:
        """The folder's `split.json` (:func:`ecgrhythm.networks.split.load_split`), or None when it has none.

        Raises:
            ValueError: `split.json` is not such a mapping (naming the file).
        """
        from ecgrhythm.networks.split import load_split

        return load_split(self.path)

    @contextlib.contextmanager
    def batch_functions(self, networks: int):
        """Within the block, one batch function per network of the first `networks`, all run by the first network.

        The first network takes a network's weights when that network's function is first called on a
        batch, and its own back when the block ends, whatever happens in it. In a folder of several networks
        the block holds a lock, so that a block running the first network alone never sees another's weights.

        Yields:
            `[run_0, ..., run_{networks - 1}]`, functions `run(x, mask)` (see :data:`~ecgrhythm.inference.backend.BatchFunction`).
        """
        runner = self.networks[0]
        if len(self.networks) == 1:
            yield [keras_batch_function(runner)]
            return
        with self._swap_lock:
            if networks == 1:
                yield [keras_batch_function(runner)]
                return
            own, loaded = runner.get_weights(), [0]
            plain = keras_batch_function(runner)

            def member(k):
                def run(x, mask):
                    if loaded[0] != k:
                        loaded[0] = k
                        runner.set_weights(own if k == 0 else self.networks[k].get_weights())
                    return plain(x, mask)

                return run

            try:
                yield [member(k) for k in range(networks)]
            finally:
                runner.set_weights(own)
