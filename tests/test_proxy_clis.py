"""The real Claude Code and Codex CLIs through the proxy, against the local provider server.

Each CLI runs once per mode (observe, manage) through a real proxy (uvicorn) in front of
the provider server, whose scripted model drives 32 shell tool calls over the run's own
work folder, most of them printing a few thousand tokens. Then:

- both clients finish in both modes, and the folder holds what the commands wrote;
- the proxy stored one session for the client's thread, whose tool calls and billed
  usage, call by call, are those of the session file the client wrote itself (and of
  what the provider billed);
- in manage mode, with a window the observed run's requests outgrow, every request the
  upstream received fits the window (the provider server enforces it too), pairs every
  tool call with its result, and the upstream received fewer input tokens than in
  observe mode;
- the streamed events reached the client complete and in order.

The CLI versions are in the test ids (``-v``). Without the CLIs these tests skip, naming
the install command; under CI they fail (``_clis``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from _clis import cli_version, require_cli
from _proxy_scripts import (
    STEPS,
    CliProxyRun,
    requested_output,
    run_claude,
    run_codex,
    usage_key,
)
from _valid import pairs
from ctxbudget.convert.request import read_request
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.log import Compacted, Observed
from ctxbudget.store.events import decode_event
from ctxbudget.traces import Session, load_sessions
from ctxbudget.traces.stored import stored_session

CLAUDE = cli_version("claude") or "claude-not-installed"
CODEX = cli_version("codex") or "codex-not-installed"
CLIS = [pytest.param("claude", id=f"claude-{CLAUDE}"), pytest.param("codex", id=f"codex-{CODEX}")]
MODES = ["observe", "manage"]
WINDOWS = {"claude": 60_000, "codex": 24_000}
"""Manage mode's window: Claude Code's system prompt and tools take ~22K tokens and it
asks for 32K output tokens, so 60K leaves ~6K for a history that grows by ~2K a step;
Codex's take ~8K and the provider assumes 4K output."""


class Runs:
    """Each CLI in each mode, run once for the module (on first use)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.done: dict[tuple[str, str], CliProxyRun] = {}

    def __call__(self, cli: str, mode: str) -> CliProxyRun:
        key = (cli, mode)
        if key not in self.done:
            require_cli(cli)
            root = self.factory.mktemp(f"proxy-{cli}-{mode}")
            window = WINDOWS[cli] if mode == "manage" else None
            runner = run_claude if cli == "claude" else run_codex
            self.done[key] = runner(root, "manage" if mode == "manage" else "observe", window)
        return self.done[key]

    def close(self) -> None:
        for run in self.done.values():
            run.store.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    made = Runs(tmp_path_factory)
    yield made
    made.close()


def _client_sessions(run: CliProxyRun) -> list[Session]:
    """The session files the client wrote itself."""
    root = run.home / (".claude/projects" if run.cli == "claude" else ".codex/sessions")
    return load_sessions(root)


def _main_stored(run: CliProxyRun) -> tuple[Session, list[Any]]:
    """The stored session of the client's thread (as an imported session) and its events."""
    infos = run.store.sessions()
    assert infos, "the proxy stored no session"
    for info in infos:  # one segment per thread: no rewrite split the history
        assert info.session_id.endswith("-o1" if run.mode == "observe" else "-m1"), [
            i.session_id for i in infos
        ]
        assert info.meta["proxy"]["mode"] == run.mode
    mine = [stored_session(run.store, i.session_id) for i in infos]
    main = max(mine, key=lambda s: len(s.calls))
    info = run.store.require(main.name)
    assert info.meta["proxy"]["client_session"] == run.session, (info.meta, run.session)
    assert info.meta["proxy"]["source"] == ("claude-code" if run.cli == "claude" else "codex")
    return main, [decode_event(e) for e in run.store.load(main.name)]


def _call_ids(items: Any) -> list[str]:
    return [call.id for item in items for call in item.tool_calls]


def _upstream_calls(run: CliProxyRun, body: dict[str, Any]) -> list[str]:
    items = read_request(body, format=run.api).items
    return [call.id for item in items for call in item.tool_calls]


# --- both clients, both modes -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cli", CLIS)
def test_the_client_finishes_its_tool_calls_through_the_proxy(
    runs: Runs, cli: str, mode: str
) -> None:
    run = runs(cli, mode)
    run.result.check()
    print(f"{cli} {mode}: {run.seconds:.1f}s, {len(run.server.billed)} calls")
    records: list[dict[str, Any]] = run.result.records()
    if cli == "claude":
        final = records[-1]
        assert final["type"] == "result"
        assert final["subtype"] == "success", final
        assert final["result"] == "All done."
    else:
        messages = [
            r["item"]["text"]
            for r in records
            if r.get("type") == "item.completed" and r["item"].get("type") == "agent_message"
        ]
        assert messages[-1] == "All done."
        assert records[-1]["type"] == "turn.completed"
    # every request reached the upstream once and was answered: none refused, none retried
    assert len(run.server.requests) == len(run.server.billed) == STEPS + 1
    written = sorted(p.name for p in (run.work / "data").iterdir())
    assert written == [f"f{n:02d}.txt" for n in range(0, STEPS, 4)]
    assert (run.work / "data" / "f08.txt").read_text().splitlines()[0] == "8"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cli", CLIS)
def test_the_stored_session_matches_the_clients_session_file(
    runs: Runs, cli: str, mode: str
) -> None:
    run = runs(cli, mode)
    run.result.check()
    sessions = _client_sessions(run)
    assert len(sessions) == 1, [s.name for s in sessions]
    own = sessions[0]
    stored, events = _main_stored(run)
    # tool calls: the same calls, in the same order, as the client's own file
    own_calls = _call_ids(own.items)
    assert len(own_calls) == STEPS
    assert _call_ids(stored.items) == own_calls
    assert not find_orphans(stored.items)
    # the client copied every reply back (nothing retracted); observe changes nothing
    compacted = [e.record.strategy for e in events if isinstance(e, Compacted)]
    assert "retract" not in compacted
    if mode == "observe":
        assert not compacted
    # tokens: each call's billed usage, as the file records it and as it was billed
    observed = [usage_key(e.usage) for e in events if isinstance(e, Observed)]
    calls = [usage_key(c.usage) for c in stored.calls if c.usage is not None]
    recorded = [usage_key(c.usage) for c in own.calls if c.usage is not None]
    billed = [usage_key(b) for b in run.server.billed]
    assert len(own.calls) == len(billed) == STEPS + 1
    assert observed == billed
    assert calls == billed
    assert recorded == billed
    print(
        f"{stored.name}: {len(own_calls)} tool calls, {len(calls)} calls, "
        f"{sum(k[0] for k in calls):,} input tokens"
    )


# --- manage mode ------------------------------------------------------------------------


@pytest.mark.parametrize("cli", CLIS)
def test_managed_requests_fit_the_window_and_keep_calls_with_results(runs: Runs, cli: str) -> None:
    observed, managed = runs(cli, "observe"), runs(cli, "manage")
    observed.result.check()
    managed.result.check()
    window = WINDOWS[cli]

    def sizes(run: CliProxyRun) -> list[int]:
        bodies = run.server.requests
        return [run.server.count_input(run.api, b) + requested_output(b) for b in bodies]

    # the window binds: the observed run's requests outgrow it
    assert max(sizes(observed)) > window
    managed_sizes = sizes(managed)
    assert max(managed_sizes) <= window, managed_sizes
    own = [c.id for s in _client_sessions(managed) for i in s.items for c in i.tool_calls]
    assert len(own) == STEPS
    shown: list[int] = []
    for n, body in enumerate(managed.server.requests):
        items = read_request(body, format=managed.api).items
        # every call the upstream sees comes with its result, every result with its call
        assert pairs(items)
        assert not find_orphans(items, allow_pending_tail=False)
        ids = _upstream_calls(managed, body)
        assert set(ids) <= set(own[:n])
        if n:  # the newest exchange is always there
            assert ids[-1] == own[n - 1]
        shown.append(len(ids))
    _, events = _main_stored(managed)
    compactions = [e for e in events if isinstance(e, Compacted)]
    assert compactions, "a window this small makes the manager compact"
    strategies = sorted({e.record.strategy for e in compactions})
    observed_in = sum(b.input_tokens for b in observed.server.billed)
    managed_in = sum(b.input_tokens for b in managed.server.billed)
    print(
        f"{cli}: window {window:,}; largest request observe {max(sizes(observed)):,} vs manage "
        f"{max(managed_sizes):,}; upstream input observe {observed_in:,} vs manage "
        f"{managed_in:,}; {len(compactions)} compactions {strategies}; calls per request {shown}"
    )
    assert managed_in < observed_in


# --- streaming ------------------------------------------------------------------------

_ORDER = {
    "message_start": 0,
    "content_block_start": 1,
    "content_block_delta": 1,
    "content_block_stop": 1,
    "message_delta": 2,
    "message_stop": 3,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cli", CLIS)
def test_streamed_events_reach_the_client_in_order(runs: Runs, cli: str, mode: str) -> None:
    run = runs(cli, mode)
    run.result.check()
    records: list[dict[str, Any]] = run.result.records()
    if cli == "claude":
        events = [r["event"] for r in records if r.get("type") == "stream_event"]
        messages: list[list[dict[str, Any]]] = []
        for event in events:
            if event["type"] == "message_start":
                messages.append([])
            assert messages, "an event before message_start"
            messages[-1].append(event)
        assert len(messages) == STEPS + 1
        for message in messages:
            kinds = [e["type"] for e in message]
            ranks = [_ORDER[k] for k in kinds if k in _ORDER]
            assert ranks == sorted(ranks), kinds
            assert kinds[0] == "message_start"
            assert kinds[-1] == "message_stop"
            open_blocks: set[int] = set()
            for e in message:  # each block: start, its deltas, stop
                if e["type"] == "content_block_start":
                    open_blocks.add(e["index"])
                elif e["type"] == "content_block_delta":
                    assert e["index"] in open_blocks
                elif e["type"] == "content_block_stop":
                    open_blocks.remove(e["index"])
            assert not open_blocks
        text = "".join(
            e["delta"].get("text", "")
            for m in messages
            for e in m
            if e["type"] == "content_block_delta"
        )
        assert text.startswith("Step 0.Step 1.")
        assert text.endswith("Step 31.All done.")
    else:
        kinds = [str(r.get("type")) for r in records]
        assert kinds[0] == "thread.started"
        assert kinds[1] == "turn.started"
        assert kinds[-1] == "turn.completed"
        started: set[str] = set()
        completed: list[str] = []
        for r in records:
            item = r.get("item")
            if not isinstance(item, dict):
                continue
            if r["type"] == "item.started":
                started.add(item["id"])
            elif r["type"] == "item.completed":
                assert item["id"] not in completed
                completed.append(item["id"])
        commands = [
            r["item"]
            for r in records
            if r.get("type") == "item.completed" and r["item"].get("type") == "command_execution"
        ]
        assert len(commands) == STEPS
        assert all(c["id"] in started for c in commands)
        steps = [int(c["command"].split("step-")[1].split()[0]) for c in commands]
        assert steps == list(range(STEPS))
