"""Where the real agent logs live: ../shared/traces beside the project root.

Tests that read them are marked ``requires_traces``: where the folder is absent they skip
with a reason, except under CI, where they fail (``_require.unavailable``; the fixture is
``needs_traces`` in ``conftest.py``). Nothing from the traces is ever copied into this
repository.
"""

from pathlib import Path

import pytest

from _require import unavailable

TRACES: Path = Path(__file__).resolve().parents[1].parent / "shared" / "traces"

requires_traces = pytest.mark.usefixtures("needs_traces")


def check_traces() -> Path:
    """The traces folder, or skip (fail under CI) saying where it should be."""
    if not TRACES.is_dir():
        unavailable(
            f"needs ../shared/traces (real agent logs beside the project root; looked in "
            f"{TRACES}); absent on a user's machine"
        )
    return TRACES
