"""An onnxruntime run that a signal stops: SIGTERM or Ctrl-C during inference ends it within moments.

Python runs a signal handler only between bytecodes of the main thread, so a handler cannot run while the main
thread is inside one long `InferenceSession.run` (a graph with a Loop of 2**62 iterations runs for ever, and
`timeout` or a service manager's SIGTERM would be ignored until SIGKILL). :func:`run_session` therefore runs the
session in a worker thread (onnxruntime releases the GIL while it runs) and waits for it in the main thread,
where the handler's exception (the CLI's `Terminated`, `KeyboardInterrupt`) arrives; it then sets the run's
`RunOptions.terminate`, which onnxruntime checks before every node, a Loop's iterations included, and re-raises
once the run has stopped, so that the caller's atomic writes remove their temporary files as on any error.

The worker is one thread kept for the process's life (made again in a forked child), not one per run: starting a
thread and waiting for it to start cost about 0.7 ms a run on this project's 2-core machine, about 2 s of the 2,700
runs of the episode windows of a 24-hour record.
"""

from __future__ import annotations

import os
import queue
import threading

__all__ = ["run_session"]

_worker: tuple[int, queue.SimpleQueue] | None = None  # (pid, the worker's queue of runs)
_worker_lock = threading.Lock()


def run_session(session, outputs: list[str], feeds: dict):
    """`session.run(outputs, feeds)`, stopped by an exception (a signal's) raised in the main thread while it runs.

    Off the main thread (a service's workers), where no signal handler runs, it is `session.run` itself.

    Returns:
        The list of output arrays, as `session.run` gives it.

    Raises:
        Whatever `session.run` raises, or the exception that interrupted the wait (after the run has stopped).
    """
    import onnxruntime

    options = onnxruntime.RunOptions()
    options.log_severity_level = 4  # fatal only: a failed run raises its message; a stopped one would log an error besides
    if threading.current_thread() is not threading.main_thread():
        return session.run(outputs, feeds, options)
    done, result = threading.Event(), {}
    _runs().put((session, outputs, feeds, options, done, result))
    try:
        done.wait()  # a signal's handler runs here, in the main thread, and its exception ends the wait
    except BaseException:
        options.terminate = True  # onnxruntime stops before its next node
        done.wait()
        result.clear()  # the stopped run's onnxruntime error must not outlive the interpreter's teardown with the traceback
        raise
    if "error" in result:
        raise result.pop("error")
    return result["outputs"]


def _runs() -> queue.SimpleQueue:
    """The queue of the process's worker thread, started on first use (and again in a forked child, which has none)."""
    global _worker
    with _worker_lock:
        if _worker is None or _worker[0] != os.getpid():
            runs: queue.SimpleQueue = queue.SimpleQueue()
            threading.Thread(target=_work, args=(runs,), name="onnxruntime-run", daemon=True).start()
            _worker = (os.getpid(), runs)
        return _worker[1]


def _work(runs: queue.SimpleQueue) -> None:
    """Run each `(session, outputs, feeds, options, done, result)` of `runs` in turn, setting `done` after each."""
    while True:
        session, outputs, feeds, options, done, result = runs.get()
        try:
            result["outputs"] = session.run(outputs, feeds, options)
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread)
            result["error"] = exc
        finally:
            del session, feeds
            done.set()
