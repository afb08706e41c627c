"""Every Python example in the README runs, and prints what its comments say."""

from __future__ import annotations

import re
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int) -> None:
    source = BLOCKS[index]
    out = StringIO()
    with redirect_stdout(out):
        exec(compile(source, f"README.md[python block {index}]", "exec"), {})
    printed = out.getvalue().splitlines()
    # A comment of the form  print(...)  # "text"  or  # text  names what that line prints.
    expected = [
        m.group(1).strip().strip('"')
        for m in re.finditer(r"^print\(.*\)\s+#\s*(.+)$", source, re.MULTILINE)
    ]
    for want in expected:
        stem = want.split(":")[0].strip('"')
        assert any(stem in line for line in printed), (want, printed)
