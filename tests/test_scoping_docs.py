"""Every Python example in docs/scoping.md runs offline and prints what its comments say."""

from __future__ import annotations

import re
import warnings
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "scoping.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_page_has_an_example_per_part() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_example_runs(index: int) -> None:
    source = BLOCKS[index]
    out = StringIO()
    with redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("error")  # no example may raise a cache-bust (or any) warning
        exec(compile(source, f"docs/scoping.md[python block {index}]", "exec"), {})
    printed = [line.strip() for line in out.getvalue().splitlines()]
    for comment in re.findall(r"^print\(.*\)\s+#\s*(.+)$", source, re.MULTILINE):
        assert comment.strip() in printed, (comment, printed)
