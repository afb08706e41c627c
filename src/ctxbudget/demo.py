"""A deterministic demo agent session, built from ctxbudget's own source tree.

The main job needs a real-looking long session with no API key and no network. This module
scripts a coding agent that explores the installed ``ctxbudget`` package: it lists folders,
greps for names, reads whole files, and runs a (scripted) test report, the way SWE-style
agents do. Tool outputs are real reads of the package files, so sizes are realistic; the
assistant's words are templates. The same package version always yields the same session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from typing import Any

__all__ = ["DemoSession", "demo_session"]

_SYSTEM = """You are a careful software engineer working in a Python repository.
Use the tools to explore the code before you change it. Constraints:
- Never modify tests to make them pass.
- Keep every public function documented.
- Run the test suite after each change and report failures verbatim.
Answer with one tool call per step until the task is done."""

_TASK = (
    "Task: audit the `ctxbudget` package. Find where token counts are computed, check that "
    "every count is marked exact or estimate, and list the modules that would need changes "
    "to support a new provider."
)

_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "list_dir",
            "description": "List the files in a folder of the repository.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Folder path."}},
                "required": ["path"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "grep",
            "description": "Search the repository for a regular expression.",
            "parameters": {
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Python regex."},
                    "path": {"type": "string", "description": "Folder to search."},
                },
                "required": ["pattern"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a whole file of the repository.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "File path."}},
                "required": ["path"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "run_tests",
            "description": "Run the test suite, optionally filtered by keyword.",
            "parameters": {
                "type": "object",
                "properties": {
                    "keyword": {"type": "string", "description": "pytest -k expression."}
                },
            },
        },
    },
]

_GREP_TERMS = ("exact", "TokenCount", "def ", "class ", "estimate", "raise ", "provider")


@dataclass(frozen=True, slots=True)
class DemoSession:
    """A scripted session: OpenAI Chat Completions messages and tool schemas."""

    messages: tuple[dict[str, Any], ...]
    """System, task, then alternating assistant tool calls and tool results."""
    tools: tuple[dict[str, Any], ...]
    """The tool schemas the agent was offered (OpenAI format)."""

    def calls(self) -> int:
        """How many model calls the session made (one per assistant message)."""
        return sum(1 for m in self.messages if m["role"] == "assistant")


def _source_files(root: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    """Every ``.py`` file under ``root``, sorted by path, so the order never varies."""
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.startswith((".", "__pycache__")):
            continue
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _source_files(entry, f"{path}/")
        elif entry.name.endswith(".py"):
            yield path, entry


def _grep(files: dict[str, str], pattern: str, limit: int = 60) -> str:
    regex = re.compile(pattern)
    hits = [
        f"ctxbudget/{path}:{number}: {line.strip()}"
        for path, text in files.items()
        for number, line in enumerate(text.splitlines(), start=1)
        if regex.search(line)
    ]
    shown = "\n".join(hits[:limit])
    more = f"\n... {len(hits) - limit} more matches" if len(hits) > limit else ""
    return f"{shown}{more}" if hits else "(no matches)"


def _test_report(files: dict[str, str], keyword: str) -> str:
    """A scripted pytest report naming the package's real functions (no tests are run)."""
    names = sorted(
        {m for text in files.values() for m in re.findall(r"^def (\w+)", text, re.MULTILINE)}
    )
    chosen = [n for n in names if keyword in n] or names[:12]
    lines = [f"tests/test_{name}.py::test_{name} PASSED" for name in chosen[:25]]
    return (
        "============================= test session starts =============================\n"
        + "\n".join(lines)
        + f"\n============================== {len(lines)} passed =============================="
    )


def demo_session(turns: int = 60) -> DemoSession:
    """Script ``turns`` model calls of an agent exploring ctxbudget's own source.

    Deterministic: the same installed package gives the same messages, byte for byte.
    """
    root = resources.files("ctxbudget")
    files = {path: entry.read_text(encoding="utf-8") for path, entry in _source_files(root)}
    folders = sorted({p.rsplit("/", 1)[0] if "/" in p else "." for p in files})
    paths = sorted(files)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": _TASK},
    ]
    for step in range(turns):
        call_id = f"call_{step:04d}"
        phase = step % 6
        if phase == 0:
            folder = folders[(step // 6) % len(folders)]
            name, args = "list_dir", {"path": f"ctxbudget/{folder}"}
            prefix = "" if folder == "." else f"{folder}/"
            listing = [p for p in paths if p.startswith(prefix) and "/" not in p[len(prefix) :]]
            output = "\n".join(listing) or "(empty)"
            thought = f"Let me see what lives in {args['path']}."
        elif phase in (1, 4):
            term = _GREP_TERMS[(step // 3) % len(_GREP_TERMS)]
            name, args = "grep", {"pattern": re.escape(term), "path": "ctxbudget"}
            output = _grep(files, re.escape(term))
            thought = f"Searching for `{term}` to find the relevant code."
        elif phase == 5:
            keyword = paths[step % len(paths)].rsplit("/", 1)[-1].removesuffix(".py")
            name, args = "run_tests", {"keyword": keyword}
            output = _test_report(files, keyword)
            thought = "Running the related tests before going further."
        else:
            path = paths[(step * 7) % len(paths)]
            name, args = "read_file", {"path": f"ctxbudget/{path}"}
            output = files[path]
            thought = f"Reading {args['path']} in full."
        messages.append(
            {
                "role": "assistant",
                "content": f"Step {step + 1}: {thought}",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
    return DemoSession(messages=tuple(messages), tools=tuple(_TOOLS))
