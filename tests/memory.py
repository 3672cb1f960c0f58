"""Measuring what a piece of work leaves allocated (tracemalloc), for tests of bounded memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable


def grown_by(work: Callable[[], None]) -> int:
    """Bytes of memory that ``work`` leaves allocated."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
