"""Where the real agent logs live: ../shared/traces beside the project root.

Tests that read them are marked ``requires_traces`` and skip where the folder is absent.
Nothing from the traces is ever copied into this repository.
"""

from pathlib import Path

import pytest

TRACES: Path = Path(__file__).resolve().parents[1].parent / "shared" / "traces"

requires_traces = pytest.mark.skipif(
    not TRACES.is_dir(),
    reason="needs ../shared/traces (real agent logs beside the project root); "
    "absent on a user's machine",
)
