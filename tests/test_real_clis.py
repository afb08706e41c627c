"""The importers on logs the real Claude Code and Codex CLIs write during this run.

Each CLI runs against the local provider server (``provider_server``) with a scripted
model that drives real tool use over a temp folder: a dozen-odd steps, parallel calls, a
failing tool, a sub-agent (Claude Code) or a free-form ``apply_patch`` and a
``web_search_call`` (Codex), a compaction (``/compact``; Codex auto-compaction), a model
switch on resume and a fork (Codex). The logs the CLIs write are then imported and held
to what the server billed: as many calls as requests, each call's usage exactly the
billed usage, the model of each call, and the computed cost within 2% of the total the
log records. The CLI versions are in the test ids (``-v``).

No log is kept or committed: everything lives in pytest's temp folders. Without the CLIs
these tests skip, naming the install command; under CI they fail (``_clis``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from _clis import claude_run, cli_version, codex_config, codex_run, require_cli, usage_key
from ctxbudget.analyze import analyze_session
from ctxbudget.convert.anthropic import to_anthropic
from ctxbudget.convert.openai_chat import to_openai_chat
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.traces import Session, discover_user_logs, load_sessions
from provider_server import Billed, ProviderServer, Reply
from provider_server.anthropic_messages import MessagesWire
from provider_server.openai_chat import ChatWire
from provider_server.openai_common import PrefixCache

CLAUDE = cli_version("claude") or "claude-not-installed"
CODEX = cli_version("codex") or "codex-not-installed"
CLAUDE_MODEL = "claude-sonnet-4-5"
CODEX_MODEL = "gpt-5.5"
CODEX_SWITCHED = "gpt-6-astra"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


# --- Claude Code ------------------------------------------------------------------------


@dataclass
class ClaudeScript:
    """The fake model for Claude Code: main thread, sub-agent, compaction, after it."""

    work: Path
    compactions: int = 0
    """Summary requests answered (``/compact``)."""
    after: int = 0
    """Requests after the compaction."""

    def __call__(self, api: str, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        first, last = _text(messages[0]["content"]), _text(messages[-1]["content"])
        steps = sum(1 for m in messages if m["role"] == "assistant")
        if "Do NOT call any tools" in last:
            self.compactions += 1
            return Reply(text="<summary>Notes project: a.txt and b.txt written.</summary>")
        if "SUBTASK" in first:
            plan = [
                ("Counting.", [("Bash", {"command": "wc -l notes/a.txt", "description": "count"})]),
                ("Reading.", [("Read", {"file_path": str(self.work / "notes/a.txt")})]),
            ]
            return _step(plan, steps, "notes/a.txt has 3 lines.")
        if any("continued from a previous conversation" in _text(m["content"]) for m in messages):
            plan = [("Checking.", [("Bash", {"command": "cat notes/b.txt", "description": "b"})])]
            self.after += 1
            return _step(plan, self.after - 1, "Finished after the compaction.")
        return _step(self.main_plan(), steps, "All done.")

    def main_plan(self) -> list[tuple[str, list[tuple[str, dict[str, Any]]]]]:
        notes = self.work / "notes"
        return [
            (
                "Setting up.",
                [
                    (
                        "Bash",
                        {
                            "command": "mkdir -p notes && printf '1\\n2\\n3\\n' > notes/a.txt",
                            "description": "make a",
                        },
                    )
                ],
            ),
            (
                "Three things at once.",
                [
                    ("Write", {"file_path": str(notes / "b.txt"), "content": "old line\n"}),
                    ("Read", {"file_path": str(notes / "a.txt")}),
                    ("Read", {"file_path": str(notes / "missing.txt")}),
                ],
            ),
            ("Counting.", [("Bash", {"command": "wc -l notes/*.txt", "description": "count"})]),
            ("Reading b.", [("Read", {"file_path": str(notes / "b.txt")})]),
            (
                "Editing.",
                [
                    (
                        "Edit",
                        {
                            "file_path": str(notes / "b.txt"),
                            "old_string": "old",
                            "new_string": "new",
                        },
                    )
                ],
            ),
            (
                "Checking.",
                [
                    ("Bash", {"command": "ls notes", "description": "list"}),
                    ("Bash", {"command": "cat notes/b.txt", "description": "show"}),
                ],
            ),
            (
                "Delegating.",
                [
                    (
                        "Agent",
                        {
                            "description": "count lines",
                            "prompt": "SUBTASK: count the lines of notes/a.txt",
                            "subagent_type": "general-purpose",
                        },
                    )
                ],
            ),
        ]


def _step(plan: list[tuple[str, list[tuple[str, dict[str, Any]]]]], steps: int, done: str) -> Reply:
    if steps < len(plan):
        text, calls = plan[steps]
        return Reply(text=text, tool_calls=calls)
    return Reply(text=done)


@dataclass
class ClaudeRuns:
    home: Path
    work: Path
    server: ProviderServer
    script: ClaudeScript
    first: list[dict[str, Any]]
    """stream-json of the first run (``--include-partial-messages``)."""
    first_billed: int
    """Requests billed by the end of the first run."""
    plain: list[dict[str, Any]] = field(default_factory=list)
    """stream-json of a run without partial messages (another session)."""
    plain_billed: list[Billed] = field(default_factory=list)
    session_billed: list[Billed] = field(default_factory=list)
    """Requests billed for the first session (its three runs and its sub-agent)."""


@pytest.fixture(scope="module")
def claude(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClaudeRuns]:
    require_cli("claude")
    home, work = tmp_path_factory.mktemp("claude-home"), tmp_path_factory.mktemp("claude-work")
    script = ClaudeScript(work)
    with ProviderServer(script=script) as server:
        first = claude_run(
            server,
            home,
            work,
            ["-p", "Set up the notes project.", "--include-partial-messages"],
            model=CLAUDE_MODEL,
        ).check()
        records = first.records()
        session_id = str(records[0]["session_id"])
        billed = len(server.billed)
        claude_run(
            server, home, work, ["--resume", session_id, "-p", "/compact"], model=CLAUDE_MODEL
        ).check()
        claude_run(
            server, home, work, ["--resume", session_id, "-p", "Go on."], model=CLAUDE_MODEL
        ).check()
        runs = ClaudeRuns(home, work, server, script, records, billed)
        before = len(server.billed)
        runs.session_billed = server.billed[:before]
        plain_home, plain_work = (
            tmp_path_factory.mktemp("claude-plain"),
            tmp_path_factory.mktemp("claude-plain-work"),
        )
        script.work = plain_work
        plain = claude_run(
            server, plain_home, plain_work, ["-p", "Set up the notes project."], model=CLAUDE_MODEL
        ).check()
        runs.plain = plain.records()
        runs.plain_billed = server.billed[before:]
        script.work = work
        yield runs


def _stream_file(tmp: Path, records: list[dict[str, Any]]) -> Path:
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return tmp


@pytest.mark.parametrize("version", [CLAUDE])
def test_claude_code_session_files_match_what_the_server_billed(
    claude: ClaudeRuns, version: str
) -> None:
    print(f"Claude Code: {version}")
    root = claude.home / ".claude" / "projects"
    sessions = load_sessions(root)
    main = [s for s in sessions if "/subagents/" not in s.name]
    subs = [s for s in sessions if "/subagents/" in s.name]
    assert len(main) == 1, [s.name for s in sessions]  # one session, however many runs
    assert subs, "the Agent tool call left a sub-agent transcript"
    session = main[0]
    main_id = Path(session.name).stem
    assert all(s.parent == main_id for s in subs)
    billed = claude.session_billed
    calls = [c for s in sessions for c in s.calls]
    # every request billed is a call of some file, except the /compact summary request,
    # which Claude Code writes to no transcript (its cost is in the session's cost-state)
    assert len(calls) == len(billed) - claude.script.compactions
    assert all(c.usage is not None for c in calls)
    assert Counter(usage_key(c.usage) for c in calls if c.usage) <= Counter(
        usage_key(b) for b in billed
    )
    assert {c.model for c in calls} == {CLAUDE_MODEL}
    assert session.resets, "the /compact boundary restarts the context"
    after = [c for c in session.calls if c.position >= session.resets[-1]]
    assert len(after) >= 2
    assert all(session.context_start(c.position) > 0 for c in after)
    for s in sessions:
        assert not find_orphans(s.items)
    assert session.totals is not None
    assert session.totals.cost is not None
    found = discover_user_logs(home=claude.home, environ={})
    assert sorted(p.name for p in found) == sorted(Path(s.source).name for s in sessions)


@pytest.mark.parametrize("version", [CLAUDE])
def test_claude_code_stream_json_usage_and_total_cost(
    claude: ClaudeRuns, version: str, tmp_path: Path
) -> None:
    print(f"Claude Code: {version}")
    stream = load_sessions(_stream_file(tmp_path / "first.jsonl", claude.first))[0]
    first_billed = claude.server.billed[: claude.first_billed]
    subagent = [
        s for s in load_sessions(claude.home / ".claude" / "projects") if "/subagents/" in s.name
    ]
    assert stream.format == "claude-code-stream"
    sub_calls = sum(len(s.calls) for s in subagent)
    assert len(stream.calls) + sub_calls == len(first_billed)
    # message_delta events give each call its complete usage: exactly what was billed
    assert Counter(usage_key(c.usage) for c in stream.calls if c.usage) <= Counter(
        usage_key(b) for b in first_billed
    )
    recorded = stream.recorded_cost
    assert recorded is not None  # total_cost_usd: the sub-agent's calls are inside it
    analyses = [analyze_session(s) for s in [stream, *subagent]]
    assert {a.model for a in analyses} == {CLAUDE_MODEL}  # priced as the log's own model
    computed = sum((a.computed_cost or Decimal(0) for a in analyses), Decimal(0))
    assert abs(computed - recorded) <= recorded * Decimal("0.02"), (computed, recorded)


@pytest.mark.parametrize("version", [CLAUDE])
def test_claude_code_stream_json_without_partial_messages(
    claude: ClaudeRuns, version: str, tmp_path: Path
) -> None:
    print(f"Claude Code: {version}")
    stream = load_sessions(_stream_file(tmp_path / "plain.jsonl", claude.plain))[0]
    main_billed = list(claude.plain_billed)
    assert stream.totals is not None
    assert stream.totals.output_tokens is not None
    outputs = sum(c.usage.output_tokens for c in stream.calls if c.usage)
    assert outputs == stream.totals.output_tokens  # not 1 token per call
    inputs = sorted(c.usage.input_tokens for c in stream.calls if c.usage)
    assert all(any(b.input_tokens == n for b in main_billed) for n in inputs)
    assert stream.recorded_cost is not None
    computed = analyze_session(stream).computed_cost
    sub = claude.plain_billed[len(stream.calls) :]
    assert computed is not None
    assert len(sub) + len(stream.calls) == len(main_billed)


# --- Codex ------------------------------------------------------------------------------

PATCH = "*** Begin Patch\n*** Add File: proj/b.txt\n+hello from apply_patch\n*** End Patch\n"
SEARCH = {
    "id": "ws_0001",
    "type": "web_search_call",
    "status": "completed",
    "action": {"type": "search", "query": "line counting in bash"},
}


@dataclass
class CodexScript:
    """The fake model for Codex: a plan per phase, compaction requests answered apart."""

    phase: str = "main"
    step: int = 0
    compactions: int = 0

    def __call__(self, api: str, body: dict[str, Any]) -> Reply:
        inputs = body.get("input") or []
        last = _text(inputs[-1].get("content")) if inputs and isinstance(inputs[-1], dict) else ""
        if not body.get("tools") and "continue the work" in last:
            self.compactions += 1
            return Reply(text="SUMMARY: proj/a.txt and proj/b.txt exist.")
        plans: dict[str, list[Reply]] = {
            "main": [
                Reply(
                    text="Start.",
                    tool_calls=[
                        (
                            "exec_command",
                            {"cmd": "mkdir -p proj && printf 'a\\nb\\n' > proj/a.txt"},
                        ),
                        ("exec_command", {"cmd": "cat proj/missing.txt"}),
                    ],
                ),
                Reply(text="Patching.", custom_calls=[("apply_patch", PATCH)]),
                Reply(
                    text="Searched.",
                    output_items=[SEARCH],
                    tool_calls=[("exec_command", {"cmd": "wc -l proj/a.txt proj/b.txt"})],
                ),
                Reply(text="Trying a tool.", tool_calls=[("no_such_tool", {"x": 1})]),
                Reply(text="pad " * 2500, tool_calls=[("exec_command", {"cmd": "cat proj/b.txt"})]),
                Reply(text="Listing.", tool_calls=[("exec_command", {"cmd": "ls proj"})]),
            ],
            "switched": [
                Reply(text="Again.", tool_calls=[("exec_command", {"cmd": "cat proj/a.txt"})])
            ],
            "fork": [Reply(text="Forked.", tool_calls=[("exec_command", {"cmd": "echo fork"})])],
        }
        plan = plans[self.phase]
        self.step += 1
        return plan[self.step - 1] if self.step <= len(plan) else Reply(text="Done.")

    def start(self, phase: str) -> None:
        self.phase, self.step = phase, 0


@dataclass
class CodexRuns:
    home: Path
    server: ProviderServer
    script: CodexScript
    phases: dict[str, int]
    """Requests billed by the end of each phase."""
    thread: str


@pytest.fixture(scope="module")
def codex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodexRuns]:
    require_cli("codex")
    home, work = tmp_path_factory.mktemp("codex-home"), tmp_path_factory.mktemp("codex-work")
    script = CodexScript()
    with ProviderServer(script=script) as server:
        codex_config(server, home, model=CODEX_MODEL, compact_at=11_000)
        phases: dict[str, int] = {}
        first = codex_run(home, work, ["Set up proj."]).check()
        thread = str(first.records()[0]["thread_id"])
        phases["main"] = len(server.billed)
        script.start("switched")
        codex_run(
            home, work, ["resume", "--last", "Again."], options=["-m", CODEX_SWITCHED]
        ).check()
        phases["switched"] = len(server.billed)
        script.start("fork")
        codex_run(home, work, ["fork", thread, "Forked."]).check()
        phases["fork"] = len(server.billed)
        yield CodexRuns(home, server, script, phases, thread)


def _rollouts(runs: CodexRuns) -> tuple[Session, Session]:
    sessions = load_sessions(runs.home / ".codex" / "sessions")
    assert len(sessions) == 2, [s.name for s in sessions]  # the thread (resumed) and its fork
    fork = next(s for s in sessions if runs.thread not in s.name)
    return next(s for s in sessions if s is not fork), fork


@pytest.mark.parametrize("version", [CODEX])
def test_codex_rollouts_match_what_the_server_billed(codex: CodexRuns, version: str) -> None:
    print(f"Codex: {version}")
    thread, fork = _rollouts(codex)
    billed = codex.server.billed
    assert len(thread.calls) == codex.phases["switched"]
    assert len(fork.calls) == len(billed) - codex.phases["switched"]
    # the log's own usage, call by call, in order: a fork's copied counts shift nothing
    assert [usage_key(c.usage) if c.usage else None for c in (*thread.calls, *fork.calls)] == [
        usage_key(b) for b in billed
    ]
    models = [c.model for c in (*thread.calls, *fork.calls)]
    assert models == [b.model for b in billed]
    assert analyze_session(thread).model == CODEX_MODEL  # never another vendor's
    assert CODEX_SWITCHED in models
    assert CODEX_MODEL in models
    assert codex.script.compactions >= 1
    assert thread.resets
    assert thread.totals is not None
    assert fork.totals is not None
    assert fork.totals.calls == len(fork.calls)
    assert fork.totals.input_tokens == sum(
        b.input_tokens for b in billed[codex.phases["switched"] :]
    )
    for session in (thread, fork):
        assert not find_orphans(session.items)


@pytest.mark.parametrize("version", [CODEX])
@pytest.mark.parametrize("command", ["analyze", "simulate"])
def test_codex_rollout_with_web_search_and_apply_patch_renders(
    codex: CodexRuns, version: str, command: str, tmp_path: Path
) -> None:
    print(f"Codex: {version}")
    thread, _ = _rollouts(codex)
    kinds = {
        json.loads(line).get("payload", {}).get("type")
        for line in Path(thread.source).read_text(encoding="utf-8").splitlines()
    }
    assert {"web_search_call", "custom_tool_call", "custom_tool_call_output"} <= kinds
    extra = ["--html", str(tmp_path / "r.html")] if command == "simulate" else []
    done = subprocess.run(
        [sys.executable, "-m", "ctxbudget", command, thread.source, "--json", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(rf'"calls":\s*{len(thread.calls)}\b', done.stdout)


@pytest.mark.parametrize("version", [CODEX])
def test_codex_items_render_for_either_provider_with_calls_paired(
    codex: CodexRuns, version: str
) -> None:
    """Free-form ``apply_patch`` calls and ``web_search_call`` items, rendered for OpenAI
    chat and for Anthropic, pass the provider server's request validation (every call
    answered by its result, no result without its call)."""
    print(f"Codex: {version}")
    thread, _ = _rollouts(codex)
    items = list(thread.items)
    chat = to_openai_chat(items)
    ChatWire(PrefixCache()).validate({"model": CODEX_MODEL, "messages": chat})
    patch = [
        c for m in chat for c in m.get("tool_calls") or [] if c["function"]["name"] == "apply_patch"
    ]
    assert patch
    assert patch[0]["function"]["arguments"]
    assert any("web_search_call" in json.dumps(m) for m in chat)
    system, messages = to_anthropic(items)
    body = {"model": CLAUDE_MODEL, "max_tokens": 1024, "system": system, "messages": messages}
    MessagesWire().validate(body)
    uses = [
        b
        for m in messages
        for b in m["content"]
        if isinstance(b, dict) and b.get("type") == "tool_use"
    ]
    assert any(b["name"] == "apply_patch" and isinstance(b["input"], dict) for b in uses)
