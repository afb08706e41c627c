"""The demo agent's working state and tools.

What each tool call returns (from :class:`~ctxbudget.demo._source.Source` and the scripted
:class:`~ctxbudget.demo._pytest.Suite`), and what the agent remembers while it works: the
call at which it last saw each file, the tests failing right now, and a few facts from
early results that it comes back to later, as agents do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ctxbudget.demo._pytest import Suite, network_failure, scenario_failure
from ctxbudget.demo._source import ROOT, Def, Scenario, Source, find_scenario, shown, stem

__all__ = ["LOOP", "NETWORK_TEST", "Agent", "Call", "Step", "plural", "qualname"]

Call = tuple[str, dict[str, Any], str]
"""One tool call: tool name, arguments, the tool's answer."""

LOOP = re.compile(r"^\s*for (\w+) in ([\w.]+):\s*$")
"""A loop over a plain name or attribute (``for item_id in edit.remove:``)."""

NETWORK_TEST = "tests/test_tokens_encodings.py::test_constants_match_tiktoken"
"""A test that fails in the sandbox only: it asks tiktoken itself, which downloads."""


@dataclass(slots=True)
class Step:
    """One model call: the assistant's words and its tool calls."""

    thought: str
    """What the assistant says before calling the tools."""
    calls: list[Call] = field(default_factory=list)
    """The tool calls, in order (several when they are independent)."""


def plural(n: int, noun: str) -> str:
    """``1 loop``, ``3 loops``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def qualname(found: Def) -> str:
    """``Accountant.remove`` or ``find_orphans``."""
    return f"{found.owner}.{found.name}" if found.owner else found.name


def _node(path: str, name: str) -> str:
    return f"tests/test_{stem(path)}.py::test_{name.strip('_')}"


class Agent:
    """The agent's state while the session is written, and its tools."""

    def __init__(self, source: Source) -> None:
        self.src = source
        self.sc: Scenario | None = find_scenario(source)
        self.now = 0
        """The call being written (1-based), set by the session writer before each step."""
        self.seen: dict[str, int] = {}
        """Package path → the call that last showed it."""
        self.echoes: list[str] = []
        """Facts from early results, for back-references later on."""
        self.audited: list[str] = []
        """One path per loop the audit looked at."""
        self.flagged: list[str] = []
        """Loops the audit noted for a follow-up."""
        self.fixed = False
        self.value = "m37"
        """The repeated item id in the traceback."""
        extra = {NETWORK_TEST.split("::", maxsplit=1)[0]: [NETWORK_TEST.split("::")[1]]}
        self.target = self.contract = ""
        if self.sc is not None:
            sc = self.sc
            self.target = _node(sc.caller.path, f"{sc.caller.name}_with_a_repeated_{sc.arg}")
            self.contract = _node(sc.callee.path, f"{sc.callee.name}_unknown_{sc.arg}_raises")
            for node in (self.target, self.contract):
                extra.setdefault(node.split("::")[0], []).append(node.split("::")[1])
        self.suite = Suite(source, extra)
        self.failing = {NETWORK_TEST: network_failure(NETWORK_TEST, self.line(NETWORK_TEST))}
        if self.sc is not None:
            self.failing[self.target] = self.scenario_failure(self.sc)

    def line(self, node: str) -> int:
        """Where a test starts in its (scripted) file."""
        return 24 + 11 * self.suite.position(node)

    def scenario_failure(self, sc: Scenario) -> str:
        """The target test's failure block."""
        return scenario_failure(self.src, sc, self.target, self.line(self.target) + 8, self.value)

    # -- tools -----------------------------------------------------------------------------

    def read(self, path: str) -> Call:
        """``read_file`` of a whole package file."""
        self.seen[path] = self.now
        return "read_file", {"path": shown(path)}, self.src.files[path]

    def region(self, path: str, start: int, end: int) -> Call:
        """``read_file`` of lines ``start..end``, numbered."""
        self.seen[path] = self.now
        args = {"path": shown(path), "start_line": max(1, start), "end_line": end}
        return "read_file", args, self.src.numbered(path, start, end)

    def grep(self, pattern: str, limit: int = 120) -> tuple[Call, list[tuple[str, int, str]]]:
        """``grep`` over the package, and its hits."""
        out, hits = self.src.grep(pattern, limit)
        return ("grep", {"pattern": pattern, "path": ROOT}, out), hits

    def tests(self, select: str = "", *, verbose: bool = False) -> Call:
        """``run_tests``: a node id, ``-k`` words, or the whole suite."""
        args: dict[str, Any] = {}
        if select:
            args["target" if "::" in select else "keyword"] = select
        if verbose:
            args["verbose"] = True
        return "run_tests", args, self.suite.run(select, self.failing, verbose=verbose)

    def edit(self, path: str, old: str, new: str) -> Call:
        """``str_replace`` in a package file (an error when ``old`` is not there once)."""
        args = {"path": shown(path), "old_str": old, "new_str": new}
        out = self.src.replace(path, old, new)
        if out is None:
            out = (
                "Error: no replacement was performed: old_str did not appear verbatim in "
                f"{shown(path)}."
            )
        else:
            self.seen[path] = self.now
        return "str_replace", args, out

    @staticmethod
    def bash(command: str, output: str) -> Call:
        """``bash`` with a scripted output."""
        return "bash", {"command": command}, output

    def echo(self) -> str:
        """A fact from long ago, in turn (empty before there is any)."""
        if not self.echoes:
            return ""
        return " " + self.echoes[(self.now // 3) % len(self.echoes)]
