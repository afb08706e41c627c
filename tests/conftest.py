"""Fixtures shared by every test module (helpers live in the ``_*.py`` modules beside)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _traces import check_traces


@pytest.fixture
def needs_traces() -> Path:
    """../shared/traces; skips where it is absent, fails under CI (``requires_traces``)."""
    return check_traces()
