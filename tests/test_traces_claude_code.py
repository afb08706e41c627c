"""Claude Code session files and stream-json output, from fixtures built here.

The records follow Claude Code's documented layout (``type``, ``message`` with an
Anthropic message, ``uuid`` / ``parentUuid`` / ``isSidechain`` / ``sessionId``; stream-json
``system``/``init``, ``assistant``, ``user`` and ``result``). Nothing is copied from a
real log.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.billing.usage import Usage
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import Component, ReasoningPart, ToolCallPart, ToolResultPart
from ctxbudget.traces import detect_format, load_sessions

SESSION = "0b7c6a52-1111-4222-8333-944455556666"
MODEL = "claude-sonnet-4-5-20250929"


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


class Log:
    """Builds session-file records with a linear uuid chain."""

    def __init__(self, *, sidechain: bool = False) -> None:
        self.records: list[dict[str, Any]] = []
        self.sidechain = sidechain
        self.n = 0

    def _add(self, kind: str, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
        self.n += 1
        uuids = [r["uuid"] for r in self.records if "uuid" in r]
        parent = uuids[-1] if uuids else None
        record = {
            "parentUuid": parent,
            "isSidechain": self.sidechain,
            "userType": "external",
            "cwd": "/work/project",
            "sessionId": SESSION,
            "version": "2.0.14",
            "type": kind,
            "message": message,
            "uuid": f"u-{self.n}-{'side' if self.sidechain else 'main'}",
            "timestamp": f"2025-10-01T10:00:{self.n:02d}.000Z",
            **extra,
        }
        self.records.append(record)
        return record

    def user(self, content: Any, **extra: Any) -> dict[str, Any]:
        return self._add("user", {"role": "user", "content": content}, **extra)

    def assistant(
        self, mid: str, blocks: list[dict[str, Any]], usage: dict[str, Any], **extra: Any
    ) -> None:
        """One API response, written one record per content block (as Claude Code does)."""
        for block in blocks:
            message = {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": extra.pop("model", MODEL),
                "content": [block],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            }
            self._add("assistant", message, requestId=f"req_{mid}", **extra)


def usage(
    inp: int, out: int, *, write: int = 0, read: int = 0, one_hour: int = 0
) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": write - one_hour,
            "ephemeral_1h_input_tokens": one_hour,
        },
        "output_tokens": out,
        "service_tier": "standard",
    }


def tool_use(call_id: str, command: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": "Bash", "input": {"command": command}}


def tool_result(call_id: str, text: str) -> list[dict[str, Any]]:
    return [{"type": "tool_result", "tool_use_id": call_id, "content": text, "is_error": False}]


def parallel_session() -> Log:
    log = Log()
    log.records.append({"type": "summary", "summary": "Fix the build", "leafUuid": "u-9"})
    log.user("Why does the build fail?")
    log.assistant(
        "msg_01",
        [
            {"type": "thinking", "thinking": "Check both logs.", "signature": "c2lnbmF0dXJl"},
            {"type": "text", "text": "Looking at both logs."},
            tool_use("toolu_a", "cat build.log"),
            tool_use("toolu_b", "cat test.log"),
        ],
        usage(3, 120, write=1500, read=20000, one_hour=500),
    )
    log.user(tool_result("toolu_a", "error: missing header"), toolUseResult={"stdout": "..."})
    log.user(tool_result("toolu_b", "2 failed"))
    log.records.append(
        {
            "type": "file-history-snapshot",
            "messageId": "x",
            "snapshot": {},
            "isSnapshotUpdate": False,
        }
    )
    log.assistant(
        "msg_02", [{"type": "text", "text": "The header is missing."}], usage(10, 30, read=21600)
    )
    return log


def test_one_response_over_several_lines_is_one_item_and_one_call(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / f"{SESSION}.jsonl", parallel_session().records)
    (session,) = load_sessions(path)
    assert session.format == "claude-code"
    assert [i.role for i in session.items] == ["user", "assistant", "user", "assistant"]
    first = session.items[1]
    assert [p.kind for p in first.parts] == ["reasoning", "text", "tool_call", "tool_call"]
    assert len(session.calls) == 2
    assert [c.position for c in session.calls] == [1, 3]
    # the usage of msg_01 is counted once, cache reads and writes inside input_tokens
    assert session.calls[0].usage == Usage(
        input_tokens=3 + 1500 + 20000,
        cache_read_tokens=20000,
        cache_write_5m_tokens=1000,
        cache_write_1h_tokens=500,
        output_tokens=120,
    )
    assert session.calls[1].usage is not None
    assert session.calls[1].usage.input_tokens == 21610
    assert session.calls[1].model == MODEL
    assert session.model == MODEL
    assert session.billed
    assert session.tools == ()
    assert not any(i.role == "system" for i in session.items)


def test_parallel_results_merge_and_thinking_stays_with_its_calls(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", parallel_session().records)
    (session,) = load_sessions(path)
    results = session.items[2]
    assert [p.call_id for p in results.parts if isinstance(p, ToolResultPart)] == [
        "toolu_a",
        "toolu_b",
    ]
    assert results.component == Component.TOOL_RESULTS
    assert not find_orphans(session.items)
    turn = session.items[1]
    reasoning = [p for p in turn.parts if isinstance(p, ReasoningPart)]
    assert reasoning[0].signature == "c2lnbmF0dXJl"
    assert turn.exchange_id is not None
    assert results.exchange_id == turn.exchange_id


def test_sidechains_synthetic_and_repeated_records_are_skipped(tmp_path: Path) -> None:
    log = parallel_session()
    side = Log(sidechain=True)
    side.user("Search the repo for the header")
    side.assistant("msg_side", [{"type": "text", "text": "Found it."}], usage(5, 5))
    log.records[3:3] = side.records
    log.records.append(log.records[-1])  # the same record written twice (resume)
    log.records.append(
        {
            "type": "system",
            "subtype": "compact_boundary",
            "content": "Conversation compacted",
            "sessionId": SESSION,
            "uuid": "u-sys",
            "parentUuid": None,
            "isSidechain": False,
        }
    )
    log.assistant(
        "msg_synth",
        [{"type": "text", "text": "No response requested."}],
        usage(0, 0),
        model="<synthetic>",
    )
    (session,) = load_sessions(write_jsonl(tmp_path / "s.jsonl", log.records))
    texts = [p for i in session.items for p in i.parts]
    assert len(session.calls) == 2
    assert "Found it." not in str(texts)
    assert "No response requested." not in str(texts)


def test_a_sub_agent_transcript_alone_is_its_own_session(tmp_path: Path) -> None:
    side = Log(sidechain=True)
    side.user("Search the repo")
    side.assistant("msg_s1", [tool_use("toolu_s", "grep -r header .")], usage(50, 8))
    side.user(tool_result("toolu_s", "src/a.h"))
    side.assistant("msg_s2", [{"type": "text", "text": "src/a.h"}], usage(70, 4))
    (session,) = load_sessions(write_jsonl(tmp_path / "agent-1234.jsonl", side.records))
    assert len(session.calls) == 2
    assert not find_orphans(session.items)


def test_old_records_with_cost_and_a_summary_only_file(tmp_path: Path) -> None:
    log = Log()
    log.user("hi")
    log.assistant("msg_1", [{"type": "text", "text": "hello"}], usage(9, 2), costUSD=0.00123)
    (session,) = load_sessions(write_jsonl(tmp_path / "a.jsonl", log.records))
    assert session.calls[0].cost == Decimal("0.00123")
    assert session.recorded_cost == Decimal("0.00123")
    only = write_jsonl(tmp_path / "b.jsonl", [{"type": "summary", "summary": "x", "leafUuid": "y"}])
    assert detect_format(only) == "claude-code"
    assert load_sessions(only) == []


def test_a_line_cut_short_at_the_end_is_ignored(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "live.jsonl", parallel_session().records)
    with path.open("a", encoding="utf-8") as f:
        f.write('{"type": "assistant", "message": {"id": "msg_03", "cont')
    (session,) = load_sessions(path)
    assert len(session.calls) == 2


def stream_records() -> list[dict[str, Any]]:
    common = {"session_id": SESSION, "parent_tool_use_id": None}

    def assistant(mid: str, block: dict[str, Any], use: dict[str, Any]) -> dict[str, Any]:
        message = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [block],
            "stop_reason": None,
            "usage": use,
        }
        return {"type": "assistant", "message": message, **common}

    return [
        {
            "type": "system",
            "subtype": "init",
            "cwd": "/w",
            "session_id": SESSION,
            "tools": ["Bash", "Read", "Task"],
            "model": MODEL,
            "permissionMode": "default",
        },
        assistant("msg_1", {"type": "text", "text": "Checking."}, usage(4, 40, write=3000)),
        assistant("msg_1", tool_use("toolu_1", "ls"), usage(4, 40, write=3000)),
        {
            "type": "user",
            "message": {"role": "user", "content": tool_result("toolu_1", "a b")},
            **common,
        },
        {
            "type": "assistant",
            "session_id": SESSION,
            "parent_tool_use_id": "toolu_9",
            "message": {
                "id": "msg_sub",
                "role": "assistant",
                "model": MODEL,
                "content": [{"type": "text", "text": "sub-agent"}],
                "usage": usage(1, 1),
            },
        },
        assistant("msg_2", {"type": "text", "text": "Two files."}, usage(6, 5, read=3000)),
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "duration_ms": 5100,
            "num_turns": 2,
            "result": "Two files.",
            "session_id": SESSION,
            "total_cost_usd": 0.0123456,
            "usage": usage(10, 45, write=3000, read=3000),
        },
    ]


def test_stream_json(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "run.jsonl", stream_records())
    assert detect_format(path) == "claude-code-stream"
    (session,) = load_sessions(path)
    assert session.format == "claude-code-stream"
    assert [i.role for i in session.items] == ["assistant", "user", "assistant"]
    assert len(session.calls) == 2
    assert session.calls[0].usage is not None
    assert session.calls[0].usage.input_tokens == 3004
    assert session.totals is not None
    assert session.totals.cost == Decimal("0.0123456")
    assert session.recorded_cost == Decimal("0.0123456")
    assert session.totals.input_tokens == 6010
    assert session.model == MODEL
    assert "sub-agent" not in str(session.items)


def test_detects_session_files(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", parallel_session().records)
    assert detect_format(path) == "claude-code"


@settings(max_examples=40, deadline=None)
@given(
    calls=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=5),
    thinking=st.booleans(),
)
def test_any_parallel_turns_stay_paired_and_counted_once(
    tmp_path_factory: Any, calls: list[int], thinking: bool
) -> None:
    log = Log()
    log.user("go")
    for turn, width in enumerate(calls):
        blocks: list[dict[str, Any]] = []
        if thinking:
            blocks.append({"type": "thinking", "thinking": "hm", "signature": f"sig{turn}"})
        ids = [f"toolu_{turn}_{k}" for k in range(width)]
        blocks += [tool_use(i, "true") for i in ids]
        log.assistant(f"msg_{turn}", blocks, usage(100 * (turn + 1), 7))
        for i in ids:
            log.user(tool_result(i, "ok"))
    log.assistant("msg_end", [{"type": "text", "text": "done"}], usage(1, 1))
    path = write_jsonl(tmp_path_factory.mktemp("cc") / "s.jsonl", log.records)
    (session,) = load_sessions(path)
    assert len(session.calls) == len(calls) + 1
    assert [session.items[c.position].role for c in session.calls] == ["assistant"] * (
        len(calls) + 1
    )
    assert not find_orphans(session.items, allow_pending_tail=False)
    for turn, width in enumerate(calls):
        item = session.items[session.calls[turn].position]
        assert len([p for p in item.parts if isinstance(p, ToolCallPart)]) == width
        use = session.calls[turn].usage
        assert use is not None
        assert use.input_tokens == 100 * (turn + 1)


def _stream_assistant(mid: str, block: dict[str, Any], use: dict[str, Any]) -> dict[str, Any]:
    message = {"id": mid, "type": "message", "role": "assistant", "model": MODEL}
    message |= {"content": [block], "stop_reason": None, "usage": use}
    return {"type": "assistant", "message": message, "session_id": SESSION}


def _result(use: dict[str, Any], cost: float) -> dict[str, Any]:
    return {"type": "result", "session_id": SESSION, "total_cost_usd": cost, "usage": use}


def test_stream_json_output_counts_come_from_the_result_not_the_first_event(
    tmp_path: Path,
) -> None:
    """Each assistant record of stream-json carries the usage of the stream's first
    event (output 1): the result's output total is spread over those calls."""
    records = [
        _stream_assistant("msg_1", tool_use("toolu_1", "ls"), usage(5, 1, write=3000)),
        {
            "type": "user",
            "message": {"role": "user", "content": tool_result("toolu_1", "a")},
            "session_id": SESSION,
        },
        _stream_assistant("msg_2", {"type": "text", "text": "Done."}, usage(6, 1, read=3000)),
        _result(usage(11, 7550, write=3000, read=3000), 0.15),
    ]
    (session,) = load_sessions(write_jsonl(tmp_path / "s.jsonl", records))
    outputs = [c.usage.output_tokens for c in session.calls if c.usage]
    assert sum(outputs) == 7550
    assert [c.usage.input_tokens for c in session.calls if c.usage] == [3005, 3006]


def test_stream_events_give_each_call_its_complete_usage(tmp_path: Path) -> None:
    def event(kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": "stream_event", "event": {"type": kind, **fields}, "session_id": SESSION}

    start = {"id": "msg_1", "usage": usage(5, 1, write=3000)}
    records = [
        event("message_start", message=start),
        _stream_assistant("msg_1", {"type": "text", "text": "Hi."}, usage(5, 1, write=3000)),
        event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 42}),
        _result(usage(5, 42, write=3000), 0.01),
    ]
    (session,) = load_sessions(write_jsonl(tmp_path / "s.jsonl", records))
    assert session.calls[0].usage == Usage(
        input_tokens=3005, cache_write_5m_tokens=3000, output_tokens=42
    )


def test_a_response_keeps_the_usage_of_its_complete_record(tmp_path: Path) -> None:
    log = Log()
    log.user("hi")
    log.assistant("msg_1", [{"type": "text", "text": "Hello."}], usage(3, 2, write=2000))
    final = dict(log.records[-1], uuid="u-final")
    final["message"] = {**final["message"], "stop_reason": "end_turn", "usage": usage(3, 90)}
    log.records.append(final)
    late = dict(log.records[-2], uuid="u-late")  # a partial copy written after it
    log.records.append(late)
    (session,) = load_sessions(write_jsonl(tmp_path / "s.jsonl", log.records))
    assert session.calls[0].usage is not None
    assert session.calls[0].usage.output_tokens == 90


def test_a_compact_boundary_restarts_the_context(tmp_path: Path) -> None:
    log = parallel_session()
    boundary = {"type": "system", "subtype": "compact_boundary", "sessionId": SESSION}
    log.records.append({**boundary, "uuid": "b-1", "compactMetadata": {"trigger": "manual"}})
    log.user("This session is being continued from a previous conversation.")
    log.records[-1]["isCompactSummary"] = True
    log.assistant("msg_09", [{"type": "text", "text": "Continuing."}], usage(5, 3, read=900))
    log.records.append({"type": "atis-latch", "sessionId": SESSION})
    log.records.append({"type": "cost-state", "sessionId": SESSION, "totalCostUSD": 0.25})
    (session,) = load_sessions(write_jsonl(tmp_path / "s.jsonl", log.records))
    (reset,) = session.resets
    assert session.items[reset].role == "user"
    assert session.request(session.calls[-1].position) == session.items[reset:-1]
    assert session.skipped == {"atis-latch": 1}
    assert session.recorded_cost == Decimal("0.25")


def test_after_a_compact_the_replay_and_the_composition_use_what_was_sent(
    tmp_path: Path,
) -> None:
    """End to end: after a ``/compact`` the ``none`` replay and ``analyze``'s composition
    count the summary and what follows, not the history it replaced."""
    from ctxbudget.analyze.composition import composition_per_call
    from ctxbudget.budget.accounting import counter_for
    from ctxbudget.budget.models import resolve_model
    from ctxbudget.simulate import simulate_session

    log = parallel_session()
    boundary = {"type": "system", "subtype": "compact_boundary", "sessionId": SESSION}
    log.records.append({**boundary, "uuid": "b-1"})
    log.user("This session is being continued from a previous conversation.")
    log.records[-1]["isCompactSummary"] = True
    log.assistant("msg_09", [{"type": "text", "text": "Continuing."}], usage(5, 3, read=900))
    (session,) = load_sessions(write_jsonl(tmp_path / "s.jsonl", log.records))
    spec = resolve_model("gpt-4.1")
    counter = counter_for(spec)
    run = simulate_session(session, ["none"], spec, counter=counter).runs["none"]
    composition, positions = composition_per_call(session, counter)
    last = [sum(c) for c in zip(*composition.values(), strict=True)][-1]
    request = session.request(positions[-1])
    assert last == counter.count_tools(session.tools).tokens * bool(session.tools) + sum(
        counter.count_item(i).tokens for i in request
    )
    assert run.context[-1] < max(run.context[:-1])


def test_sub_agent_and_compaction_transcripts_in_a_folder(tmp_path: Path) -> None:
    main = write_jsonl(tmp_path / f"{SESSION}.jsonl", parallel_session().records)
    folder = tmp_path / SESSION / "subagents"
    folder.mkdir(parents=True)
    side = Log(sidechain=True)
    side.user("Count the files.")
    side.assistant("msg_s1", [{"type": "text", "text": "Two."}], usage(4, 2, write=1500))
    write_jsonl(folder / "agent-a1b2.jsonl", side.records)
    write_jsonl(folder / "agent-acompact-9f.jsonl", [*parallel_session().records])
    skipped: list[Any] = []
    sessions = load_sessions(tmp_path, skipped=skipped)
    assert [s.name for s in sessions] == [f"{SESSION}/subagents/agent-a1b2.jsonl", main.name]
    assert sessions[0].parent == SESSION
    assert sessions[1].parent is None
    assert [(s.path, s.log) for s in skipped] == [
        (f"{SESSION}/subagents/agent-acompact-9f.jsonl", False)
    ]
    assert "compaction transcript" in skipped[0].reason
