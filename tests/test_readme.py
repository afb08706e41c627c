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
    printed = [line.strip() for line in out.getvalue().splitlines()]
    # A comment after print(...) names exactly what that line prints: the quoted part when
    # the comment starts with a quote (the rest is commentary), else the whole comment.
    for comment in re.findall(r"^print\(.*\)\s+#\s*(.+)$", source, re.MULTILINE):
        quoted = re.match(r'"([^"]*)"', comment)
        want = quoted.group(1) if quoted else comment.strip()
        assert want in printed, (want, printed)


def test_ci_runs_the_readme_commands() -> None:
    """.ci/run runs the README's test command verbatim, and the main command's program."""
    text = README.read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", text)
    assert len(commands) == 2, commands  # the main job, the tests
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci.splitlines()
    assert "ctxbudget simulate" in commands[0]
    assert '/.venv/bin/ctxbudget" simulate' in ci
