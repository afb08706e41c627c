"""Codex CLI rollouts, from fixtures built here following the documented layout.

Current layout: ``{"timestamp", "type", "payload"}`` lines (``RolloutLine``); older
layout: a bare meta line, then bare Responses items and ``{"record_type": "state"}``.
Nothing is copied from a real log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.billing.usage import Usage
from ctxbudget.errors import ProviderError, TraceError
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import ReasoningPart, ToolCallPart, ToolResultPart, item_text
from ctxbudget.traces import detect_format, discover_user_logs, load_sessions

TS = "2025-11-02T09:15:00.000Z"


def line(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": TS, "type": kind, "payload": payload}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def message(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return line(
        "response_item",
        {"type": "message", "role": role, "content": [{"type": kind, "text": text}]},
    )


def reasoning(text: str) -> dict[str, Any]:
    return line(
        "response_item",
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": text}],
            "content": None,
            "encrypted_content": "gAAAA-opaque",
        },
    )


def call(call_id: str, command: str) -> dict[str, Any]:
    arguments = json.dumps({"command": ["bash", "-lc", command]})
    return line(
        "response_item",
        {"type": "function_call", "name": "shell", "arguments": arguments, "call_id": call_id},
    )


def output(call_id: str, text: str) -> dict[str, Any]:
    return line(
        "response_item", {"type": "function_call_output", "call_id": call_id, "output": text}
    )


def token_count(
    inp: int, cached: int, out: int, reasoning_out: int, total_in: int
) -> dict[str, Any]:
    last = {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_output_tokens": reasoning_out,
        "total_tokens": inp + out,
    }
    total = {**last, "input_tokens": total_in, "total_tokens": total_in + out}
    info = {"total_token_usage": total, "last_token_usage": last, "model_context_window": 272000}
    return line("event_msg", {"type": "token_count", "info": info, "rate_limits": None})


def meta() -> dict[str, Any]:
    return line(
        "session_meta",
        {
            "id": "019a2d7a-41c4-78b1-b7cc-a45d62a89cd5",
            "timestamp": TS,
            "cwd": "/home/me/project",
            "originator": "codex_cli_rs",
            "cli_version": "0.58.0",
            "source": "cli",
            "model_provider": "openai",
            "base_instructions": {"text": "You are Codex, a coding agent."},
        },
    )


def turn_context(model: str = "gpt-5-codex") -> dict[str, Any]:
    return line(
        "turn_context",
        {"cwd": "/home/me/project", "approval_policy": "on-request", "model": model},
    )


def rollout() -> list[dict[str, Any]]:
    return [
        meta(),
        message(
            "user", "<environment_context>\n  <cwd>/home/me/project</cwd>\n</environment_context>"
        ),
        message("user", "Run the tests"),
        line("event_msg", {"type": "user_message", "message": "Run the tests", "kind": "plain"}),
        turn_context(),
        line("event_msg", {"type": "token_count", "info": None, "rate_limits": None}),
        reasoning("Run both suites."),
        call("call_1", "pytest -q unit"),
        call("call_2", "pytest -q integration"),
        token_count(5000, 4000, 300, 200, 5000),
        line("response_item", {"type": "ghost_snapshot", "ghost_commit": {"id": "abc"}}),
        output("call_1", "3 passed"),
        output("call_2", "1 failed"),
        line("event_msg", {"type": "agent_message", "message": "One failure."}),
        message("assistant", "One integration test fails."),
        token_count(5400, 5000, 40, 0, 10400),
        token_count(5400, 5000, 40, 0, 10400),  # a rate-limit refresh: same figures again
    ]


def test_calls_items_and_usage(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rollout-2025-11-02T09-15-00-019a.jsonl", rollout())
    assert detect_format(path) == "codex"
    (session,) = load_sessions(path)
    assert session.format == "codex"
    roles = [i.role for i in session.items]
    assert roles == ["system", "user", "user", "assistant", "tool", "tool", "assistant"]
    assert item_text(session.items[0]) == "You are Codex, a coding agent."
    turn = session.items[3]
    assert [p.kind for p in turn.parts] == ["reasoning", "tool_call", "tool_call"]
    assert isinstance(turn.parts[0], ReasoningPart)
    assert turn.parts[0].encrypted_content == "gAAAA-opaque"
    assert not find_orphans(session.items, allow_pending_tail=False)
    assert [c.position for c in session.calls] == [3, 6]
    assert session.calls[0].usage == Usage(
        input_tokens=5000, cache_read_tokens=4000, output_tokens=300, reasoning_tokens=200
    )
    assert session.calls[1].usage == Usage(
        input_tokens=5400, cache_read_tokens=5000, output_tokens=40
    )
    assert session.calls[0].model == "gpt-5-codex"
    assert session.model == "gpt-5-codex"
    assert session.totals is not None
    assert session.totals.calls == 2
    assert session.totals.input_tokens == 10400
    assert "One failure." not in str(session.items)  # event_msg copies are not items


def test_a_count_written_before_its_output_goes_to_the_next_call(tmp_path: Path) -> None:
    records = [
        meta(),
        turn_context("gpt-5"),
        message("user", "hi"),
        token_count(900, 0, 12, 0, 900),
        call("call_1", "ls"),
        output("call_1", "a"),
        token_count(950, 900, 8, 0, 1850),
        message("assistant", "Done."),
    ]
    (session,) = load_sessions(write_jsonl(tmp_path / "rollout-x.jsonl", records))
    assert [c.usage.input_tokens if c.usage else None for c in session.calls] == [900, 950]
    assert session.calls[1].model == "gpt-5"


def test_more_cached_than_input_tokens_is_an_error_at_its_line(tmp_path: Path) -> None:
    records = [
        meta(),
        turn_context(),
        message("user", "hi"),
        message("assistant", "Hello."),
        token_count(900, 1200, 12, 0, 900),  # line 5: cached_input_tokens > input_tokens
    ]
    path = write_jsonl(tmp_path / "rollout-z.jsonl", records)
    with pytest.raises(TraceError, match=r"cache tokens \(1200\) exceed input_tokens \(900\)") as e:
        load_sessions(path)
    assert e.value.file == str(path)
    assert e.value.line == 5
    assert "token_count.info.last_token_usage" in str(e.value)
    assert isinstance(e.value.__cause__, ProviderError)  # raised by the shared mapper


def test_shell_custom_tools_and_compaction(tmp_path: Path) -> None:
    shell = {
        "type": "local_shell_call",
        "call_id": "call_sh",
        "status": "completed",
        "action": {"type": "exec", "command": ["ls", "-la"]},
    }
    patch = {
        "type": "custom_tool_call",
        "call_id": "call_p",
        "name": "apply_patch",
        "input": "*** Begin Patch",
    }
    records = [
        meta(),
        turn_context(),
        message("user", "tidy up"),
        line("response_item", shell),
        token_count(100, 0, 5, 0, 100),
        output("call_sh", "total 0"),
        line("response_item", patch),
        token_count(120, 100, 50, 0, 220),
        line(
            "response_item",
            {"type": "custom_tool_call_output", "call_id": "call_p", "output": "ok"},
        ),
        line("compacted", {"message": "Summary: the repo was tidied."}),
        message("assistant", "Tidied."),
    ]
    (session,) = load_sessions(write_jsonl(tmp_path / "rollout-y.jsonl", records))
    calls = [p for i in session.items for p in i.parts if isinstance(p, ToolCallPart)]
    assert [(c.name, c.id) for c in calls] == [
        ("local_shell", "call_sh"),
        ("apply_patch", "call_p"),
    ]
    results = [p for i in session.items for p in i.parts if isinstance(p, ToolResultPart)]
    assert [r.call_id for r in results] == ["call_sh", "call_p"]
    assert not find_orphans(session.items, allow_pending_tail=False)
    assert any(
        "Summary: the repo was tidied." in item_text(i) for i in session.items if i.role == "user"
    )
    assert len(session.calls) == 3
    assert session.calls[2].usage is None


def test_older_layout_without_the_wrapper(tmp_path: Path) -> None:
    records = [
        {
            "id": "c3c4b301-27c8-4c70-b6e4-46b99fdf0236",
            "timestamp": "2025-08-18T01:16:13.522Z",
            "instructions": None,
            "git": {"commit_hash": "abc123", "branch": "main"},
        },
        {"record_type": "state"},
        {
            "type": "message",
            "id": None,
            "role": "user",
            "content": [{"type": "input_text", "text": "hello codex"}],
        },
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": None},
        {
            "type": "function_call",
            "id": "fc_1",
            "name": "shell",
            "arguments": "{}",
            "call_id": "call_1",
        },
        {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": {"content": "ok", "success": True},
        },
        {"record_type": "state"},
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hi"}],
        },
    ]
    path = write_jsonl(tmp_path / "rollout-2025-08-18T01-16-13-c3c4.jsonl", records)
    assert detect_format(path) == "codex"
    (session,) = load_sessions(path)
    assert [i.role for i in session.items] == ["user", "assistant", "tool", "assistant"]
    assert len(session.calls) == 2
    assert all(c.usage is None for c in session.calls)
    assert not find_orphans(session.items, allow_pending_tail=False)


def test_discovery_with_a_fake_home_and_environment(tmp_path: Path) -> None:
    import os

    home = tmp_path / "home"
    old = write_jsonl(home / ".claude/projects/-home-me-app/a.jsonl", [{"type": "summary"}])
    newer = write_jsonl(
        home / ".codex/sessions/2025/11/02/rollout-2025-11-02T09-15-00-x.jsonl", rollout()
    )
    write_jsonl(home / ".codex/sessions/2025/11/02/notes.jsonl", rollout())  # not a rollout name
    write_jsonl(home / ".claude/projects/-home-me-app/deeper/b.jsonl", [])  # not at the right depth
    os.utime(old, (1_700_000_000, 1_700_000_000))
    os.utime(newer, (1_800_000_000, 1_800_000_000))
    assert discover_user_logs(home=home, environ={}) == [newer, old]
    assert discover_user_logs(home=tmp_path / "nobody", environ={}) == []
    elsewhere = tmp_path / "cfg"
    moved = write_jsonl(elsewhere / "claude/projects/p/c.jsonl", [{"type": "summary"}])
    env = {"CLAUDE_CONFIG_DIR": str(elsewhere / "claude"), "CODEX_HOME": str(tmp_path / "none")}
    assert discover_user_logs(home=home, environ=env) == [moved]


def usage_record(inp: int, cached: int, out: int) -> dict[str, Any]:
    """``token_usage_record`` (Codex 0.17x): the usage of the response just written."""
    use = {"input_tokens": inp, "cached_input_tokens": cached, "output_tokens": out}
    return {
        "timestamp": TS,
        "type": "token_usage_record",
        "payload": {"response_id": "resp_1", "usage": use, "model": None},
    }


def test_unknown_line_types_are_counted_and_passed_over(tmp_path: Path) -> None:
    records = [
        meta(),
        line("world_state", {"full": True, "state": {}}),
        turn_context(),
        message("user", "hi"),
        line("brand_new_kind", {"anything": 1}),
        line("brand_new_kind", {"anything": 2}),
        message("assistant", "Hello."),
        token_count(900, 0, 12, 0, 900),
    ]
    (session,) = load_sessions(write_jsonl(tmp_path / "rollout-u.jsonl", records))
    assert session.skipped == {"brand_new_kind": 2}
    assert len(session.calls) == 1
    assert session.calls[0].usage is not None


def test_a_fork_starts_with_its_parents_counts_which_shift_nothing(tmp_path: Path) -> None:
    forked = meta()
    forked["payload"]["forked_from_id"] = "019a0000-0000-7000-8000-000000000001"
    records = [
        forked,
        token_count(777, 700, 70, 0, 50_000),  # the parent's last count, copied
        turn_context(),
        message("user", "go on"),
        call("call_1", "ls"),
        token_count(1000, 0, 10, 0, 51_000),
        output("call_1", "a"),
        message("assistant", "Done."),
        token_count(1100, 1000, 5, 0, 52_100),
    ]
    (session,) = load_sessions(write_jsonl(tmp_path / "rollout-f.jsonl", records))
    assert [c.usage.input_tokens if c.usage else None for c in session.calls] == [1000, 1100]
    assert session.totals is not None
    assert session.totals.calls == 2
    assert session.totals.input_tokens == 2100  # the fork's own, not the parent's


def test_an_old_rollout_without_turn_context_keeps_its_model(tmp_path: Path) -> None:
    old = meta()
    old["payload"]["cli_version"] = "0.34.0"
    old["payload"]["model"] = "gpt-5"
    records = [old, message("user", "hi"), message("assistant", "Hello.")]
    records.append(token_count(900, 0, 12, 0, 900))
    (session,) = load_sessions(write_jsonl(tmp_path / "rollout-o.jsonl", records))
    assert session.model == "gpt-5"
    assert [c.model for c in session.calls] == ["gpt-5"]


def test_each_call_carries_the_model_in_force(tmp_path: Path) -> None:
    records = [
        meta(),
        turn_context("gpt-5"),
        message("user", "hi"),
        message("assistant", "Hello."),
        token_count(900, 0, 12, 0, 900),
        turn_context("gpt-5-mini"),
        message("user", "again"),
        message("assistant", "Hello again."),
        token_count(950, 900, 8, 0, 1850),
    ]
    (session,) = load_sessions(write_jsonl(tmp_path / "rollout-m.jsonl", records))
    assert [c.model for c in session.calls] == ["gpt-5", "gpt-5-mini"]


def test_usage_records_and_a_compaction_right_after_an_answer(tmp_path: Path) -> None:
    """0.17x: one ``token_usage_record`` per response; the compaction's summary response
    follows the turn's last answer directly and is its own call; the context restarts
    from the replacement history (zero counts after it are no call)."""
    history = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "additional_tools", "role": "developer"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Sum."}]},
    ]
    records = [
        meta(),
        turn_context(),
        message("user", "hi"),
        message("assistant", "Hello."),
        usage_record(900, 0, 12),
        token_count(900, 0, 12, 0, 900),
        message("assistant", "Sum."),
        usage_record(950, 0, 3),
        token_count(950, 0, 3, 0, 1850),
        line("compacted", {"message": "Sum.", "replacement_history": history}),
        token_count(0, 0, 0, 0, 1850),
        message("user", "again"),
        message("assistant", "Hello again."),
        usage_record(300, 0, 4),
    ]
    (session,) = load_sessions(write_jsonl(tmp_path / "rollout-c.jsonl", records))
    assert [c.usage.input_tokens if c.usage else None for c in session.calls] == [900, 950, 300]
    assert session.skipped == {"compacted.additional_tools": 1}
    (reset,) = session.resets
    assert [item_text(i) for i in session.items[reset:]] == ["hi", "Sum.", "again", "Hello again."]
    assert session.context_start(session.calls[-1].position) == reset
    assert session.context_start(session.calls[0].position) == 0
    request = session.request(session.calls[-1].position)
    assert [i.role for i in request] == ["system", "user", "user", "user"]  # prompt kept
    assert not find_orphans(session.items, allow_pending_tail=False)


def test_a_bad_item_is_named_by_its_own_line(tmp_path: Path) -> None:
    records = [
        meta(),
        turn_context(),
        message("user", "hi"),
        message("assistant", "Hello."),
        usage_record(900, 0, 12),
        message("assistant", "Back to back."),
        usage_record(950, 0, 3),
        line("response_item", {"type": "message", "role": "user", "content": 5}),  # line 8
    ]
    with pytest.raises(TraceError, match="expected an array") as e:
        load_sessions(write_jsonl(tmp_path / "rollout-b.jsonl", records))
    assert e.value.line == 8
