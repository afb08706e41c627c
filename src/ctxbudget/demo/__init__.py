"""A deterministic demo agent session, built from a frozen copy of ctxbudget's source tree.

Beside ``traces`` and ``integrations``: imports only ``errors`` and the standard library.

The main job needs a long, real-looking session with no API key and no network: it is the
default input of the CLI's demo and replays. This module scripts a coding agent fixing a
bug in ctxbudget's own sources (a copy frozen at one revision, ``data/sources.json.xz``,
so the session moves only when that copy is frozen again), call by call, the way
SWE-style agents work:
it orients (lists, greps), reproduces the failure, reads the files on the traceback,
chases a failure that turns out to be the sandbox's, tries a wrong fix and reverts it,
fixes the root cause, audits the package for the same pattern, verifies and sums up.

What the agent reads is real: listings, grep hits, whole files and numbered regions come
from those sources, so their sizes are realistic (a few reads are 5-20K tokens,
most outputs are small). What cannot run offline (pytest, linters, the network) is
scripted, but names only real files, lines and functions. The agent's words reuse what it
saw: mostly the last results, sometimes results from many calls before. No randomness:
the same frozen copy always yields the same session, byte for byte. The story lives
in private modules: ``_source`` (the files, grep, reads, diffs), ``_pytest``
(scripted test reports), ``_agent`` (state and tools), ``_script`` (the bug
fix) and ``_audit`` (the elastic middle).
"""

from __future__ import annotations

import json
import lzma
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ctxbudget.demo._script import Story
from ctxbudget.demo._source import Source
from ctxbudget.errors import UsageError

__all__ = ["DemoSession", "demo_session"]

_SYSTEM = """You are a careful software engineer working in a Python repository.
Use the tools to explore the code before you change it. Constraints:
- Never modify tests to make them pass.
- Keep every public function documented.
- Run the test suite after each change and report failures verbatim.
Think out loud briefly before each step. Call several tools at once when they are independent.
When the task is done, answer with a summary and no tool call."""


def _tool(
    name: str, description: str, properties: dict[str, Any], *required: str
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(required)},
        },
    }


def _string(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


_TOOLS: tuple[dict[str, Any], ...] = (
    _tool(
        "list_dir", "List a folder of the repository.", {"path": _string("Folder path.")}, "path"
    ),
    _tool(
        "grep",
        "Search files for a Python regular expression; prints path:line:text per match.",
        {"pattern": _string("Python regex."), "path": _string("Folder to search.")},
        "pattern",
    ),
    _tool(
        "read_file",
        "Read a file: whole, or lines start_line..end_line numbered like `cat -n`.",
        {
            "path": _string("File path."),
            "start_line": {"type": "integer", "description": "First line (1-based)."},
            "end_line": {"type": "integer", "description": "Last line (inclusive)."},
        },
        "path",
    ),
    _tool(
        "run_tests",
        "Run pytest: one test node id, a -k keyword expression, or the whole suite.",
        {
            "target": _string("A node id, e.g. tests/test_x.py::test_y."),
            "keyword": _string("A pytest -k expression."),
            "verbose": {"type": "boolean", "description": "One line per test (-v)."},
        },
    ),
    _tool(
        "str_replace",
        "Replace old_str, which must occur exactly once in the file, with new_str.",
        {
            "path": _string("File path."),
            "old_str": _string("Exact text to replace, whitespace included."),
            "new_str": _string("Replacement text."),
        },
        "path",
        "old_str",
        "new_str",
    ),
    _tool(
        "bash",
        "Run a shell command in the repository (120 s timeout); prints stdout and stderr.",
        {"command": _string("The command line.")},
        "command",
    ),
)


@dataclass(frozen=True, slots=True)
class DemoSession:
    """A scripted session: OpenAI Chat Completions messages and tool schemas."""

    messages: tuple[dict[str, Any], ...]
    """System, task, then assistant turns (thought plus one or more tool calls) each
    followed by their tool results; the last assistant turn is the final summary."""
    tools: tuple[dict[str, Any], ...]
    """The tool schemas the agent was offered (OpenAI format)."""
    name: str = "demo"
    """A one-line label for reports."""

    def calls(self) -> int:
        """How many model calls the session made (one per assistant message)."""
        return sum(1 for m in self.messages if m["role"] == "assistant")


_SOURCES = "sources.json.xz"
"""ctxbudget's sources at one revision (``scripts/freeze_demo_sources.py`` writes it)."""


def _package_sources() -> dict[str, str]:
    """The repository the agent works in: package-relative path → text, as frozen."""
    data = resources.files("ctxbudget.demo").joinpath("data", _SOURCES).read_bytes()
    files: dict[str, str] = json.loads(lzma.decompress(data))["files"]
    return files


def demo_session(turns: int = 150, *, sources: dict[str, str] | None = None) -> DemoSession:
    """Script ``turns`` model calls of an agent fixing a bug in ctxbudget's own source.

    The last call is the agent's final summary (from 2 calls up); every earlier call has a
    thought and one to three tool calls, each answered before the next call. ``sources``
    replaces the frozen files (for tests). Deterministic: the same sources
    give the same messages, byte for byte.
    """
    if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
        raise UsageError(f"turns must be an int >= 1, got {turns!r}")
    story = Story(Source(_package_sources() if sources is None else sources))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": story.task()},
    ]
    steps = story.steps(turns)
    last = turns - 1 if turns > 1 else 1
    for number in range(1, last + 1):
        story.now = number
        step = next(steps)
        calls = [
            (f"call_{number:04d}_{k}", name, args, out)
            for k, (name, args, out) in enumerate(step.calls, start=1)
        ]
        messages.append(
            {
                "role": "assistant",
                "content": step.thought,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                    for call_id, name, args, _ in calls
                ],
            }
        )
        messages.extend(
            {"role": "tool", "tool_call_id": call_id, "content": out}
            for call_id, _, _, out in calls
        )
    if turns > 1:
        story.now = turns
        messages.append({"role": "assistant", "content": story.answer()})
    return DemoSession(messages=tuple(messages), tools=_TOOLS, name=story.title(turns))
