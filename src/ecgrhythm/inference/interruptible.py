"""An onnxruntime run that a signal stops: SIGTERM or Ctrl-C during inference ends it within moments.

Python runs a signal handler only between bytecodes of the main thread, so a handler cannot run while the main
thread is inside one long `InferenceSession.run` (a graph with a Loop of 2**62 iterations runs for ever, and
`timeout` or a service manager's SIGTERM would be ignored until SIGKILL). :func:`run_session` therefore runs the
session in a worker thread (onnxruntime releases the GIL while it runs) and waits for it in the main thread,
where the handler's exception (the CLI's `Terminated`, `KeyboardInterrupt`) arrives; it then sets the run's
`RunOptions.terminate`, which onnxruntime checks before every node, a Loop's iterations included, and re-raises
once the run has stopped, so that the caller's atomic writes remove their temporary files as on any error.
"""

from __future__ import annotations

import threading

__all__ = ["run_session"]


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
    result: dict = {}

    def work():
        try:
            result["outputs"] = session.run(outputs, feeds, options)
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread)
            result["error"] = exc

    worker = threading.Thread(target=work, name="onnxruntime-run", daemon=True)
    worker.start()
    try:
        worker.join()  # a signal's handler runs here, in the main thread, and its exception ends the wait
    except BaseException:
        options.terminate = True  # onnxruntime stops before its next node
        worker.join()
        result.clear()  # the stopped run's onnxruntime error must not outlive the interpreter's teardown with the traceback
        raise
    if "error" in result:
        raise result["error"]
    return result["outputs"]
