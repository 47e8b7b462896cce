"""Child processes that do not outlive the process that started them."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to send SIGTERM to the child when its parent dies.

    A supervisor killed with ``kill -9`` then leaves no orphan behind: Redis shuts down
    cleanly (flushing its append-only file) and services stop. Elsewhere: ``None``.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)

    def set_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_death_signal


def stop_with_parent() -> None:
    """Make the calling process receive SIGTERM when its parent dies (a pool initializer)."""
    set_death_signal = die_with_parent()
    if set_death_signal is not None:
        set_death_signal()


def freeze_long_lived_objects() -> None:
    """Take the reference data just loaded out of the garbage collector's sight.

    A catalog and its mappings are tens of thousands of long-lived objects; left in the
    collected generations, every full collection walks them all and stalls the requests being
    served for tens of milliseconds.
    """
    gc.collect()
    gc.freeze()
