"""Round trips on real agent logs (read at test time from ../shared/traces, never copied)."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _traces import TRACES, requires_traces
from ctxbudget.convert import from_anthropic, from_openai_chat, to_anthropic, to_openai_chat
from ctxbudget.errors import ConversionError
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import Component

pytestmark = requires_traces


def _files(folder: str) -> list[Path]:
    return sorted((TRACES / folder).glob("*.json")) if TRACES.is_dir() else []


def _sessions(folder: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Every (name, message list) in a trace folder, in each file's own layout."""
    for path in _files(folder):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list):  # tau-bench: an array of sessions
            for index, session in enumerate(data):
                yield f"{path.name}[{index}]", session["traj"]
        elif "messages" in data:  # mini-swe-agent, terminus-2 prompt.json
            yield path.name, data["messages"]
        elif "history" in data:  # SWE-agent .traj
            yield path.name, data["history"]


def _api_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop mini-swe-agent's final ``exit`` record: a log entry, not an API message."""
    return [m for m in messages if m.get("role") != "exit"]


FOLDERS = [
    "mini-swe-agent-v2-toolcalls",
    "tau-bench-openai-chat",
    "mini-swe-agent-v1",
    "swe-agent-traj",
    "terminus2-chat-messages",
]


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_message_round_trips_exactly(folder: str) -> None:
    sessions = list(_sessions(folder))
    assert sessions, f"no sessions found in {folder}"
    for name, raw in sessions:
        messages = _api_messages(raw)
        items = from_openai_chat(messages)
        assert to_openai_chat(items) == messages, name
        assert [i.id for i in items] == [f"m{n}" for n in range(len(messages))]


def test_tool_calls_become_exchanges_with_no_orphans() -> None:
    for name, raw in _sessions("mini-swe-agent-v2-toolcalls"):
        items = from_openai_chat(_api_messages(raw))
        assert not find_orphans(items), name
        for item in items:
            if item.role == "tool":
                assert item.component is Component.TOOL_RESULTS
                assert item.exchange_id is not None, name
            if item.tool_calls:
                assert item.exchange_id == f"x:{item.id}"


def test_extra_keys_are_kept_but_never_sent_to_anthropic() -> None:
    name, raw = next(_sessions("mini-swe-agent-v2-toolcalls"))
    items = from_openai_chat(_api_messages(raw))
    assert any("extra" in i.provider_details for i in items), name
    system, messages = to_anthropic(items)
    assert isinstance(system, str)
    text = json.dumps(messages)
    for key in ("extra", "provider_specific_fields", "annotations", "function_call", "_wire"):
        assert f'"{key}"' not in text


def test_exit_role_is_rejected_with_its_path() -> None:
    for _name, raw in _sessions("mini-swe-agent-v2-toolcalls"):
        roles = [m.get("role") for m in raw]
        if "exit" in roles:
            with pytest.raises(ConversionError) as caught:
                from_openai_chat(raw)
            assert caught.value.path == f"messages[{roles.index('exit')}].role"
            return
    pytest.skip("no session ends with an exit record")


@pytest.mark.parametrize("folder", ["tau-bench-openai-chat", "mini-swe-agent-v2-toolcalls"])
def test_real_tool_sessions_render_to_valid_anthropic(folder: str) -> None:
    """Every tool_use is answered in the very next user message, and it reads back cleanly."""
    for name, raw in _sessions(folder):
        system, messages = to_anthropic(from_openai_chat(_api_messages(raw)))
        for index, message in enumerate(messages):
            blocks = message["content"] if isinstance(message["content"], list) else []
            calls = {b["id"] for b in blocks if b["type"] == "tool_use"}
            if calls and index + 1 < len(messages):  # the last turn's calls may be pending
                answer = messages[index + 1]
                assert answer["role"] == "user", name
                results = {
                    b["tool_use_id"] for b in answer["content"] if b["type"] == "tool_result"
                }
                assert calls <= results, name
        back = from_anthropic(messages, system=system)
        assert not find_orphans(back), name
