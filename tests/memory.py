"""Peak Python memory of a block of code, for the tests that check memory stays bounded whatever a file claims."""

import contextlib
import tracemalloc


@contextlib.contextmanager
def peak_memory():
    """Trace the block's allocations (`tracemalloc`); yields a list that holds their peak, in bytes, once the block has
    ended, whether it returned or raised."""
    peak = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
