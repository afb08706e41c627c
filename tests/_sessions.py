"""Every real session in ../shared/traces, read once by ``ctxbudget.traces`` for replay tests.

Nothing is copied: the logs are read where they are, and not at all where they are absent.
"""

from __future__ import annotations

from functools import cache

from _traces import TRACES
from ctxbudget.traces import Session, load_sessions


@cache
def trace_sessions() -> tuple[Session, ...]:
    """Every session under ../shared/traces, in file order (empty where it is absent)."""
    return tuple(load_sessions(TRACES)) if TRACES.is_dir() else ()
