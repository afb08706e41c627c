"""What a test needs from outside the repository: skip where it is missing, fail under CI.

Locally a missing optional extra, browser or data folder skips the test with a reason that
says what to install or where to put it. Under CI (``CI`` set) the same absence fails the
test: CI installs everything, so a skip there would hide a test that never ran. Every test
that depends on something optional goes through :func:`unavailable` (directly, or through
:func:`require_module`, ``_traces.requires_traces`` or ``_browser.unavailable_reason``).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["in_ci", "require_module", "unavailable"]


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set and not empty, as ``tests/_stores.py`` reads it)."""
    return bool(os.environ.get("CI"))


def unavailable(reason: str) -> NoReturn:
    """Skip the current test (or module) with ``reason``; under CI, fail with it instead."""
    if in_ci():
        pytest.fail(f"CI is set, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, extra: str) -> ModuleType:
    """Import ``name``, or skip (fail under CI) naming the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"{name} cannot be imported ({exc}); install ctxbudget[{extra}] or [test]")
