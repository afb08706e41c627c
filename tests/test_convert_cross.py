"""Across formats: the meaning survives (calls stay answered, system stays system), and one
provider's private fields never reach another provider's request."""

import json
from typing import Any

import pytest

from ctxbudget.convert import (
    from_anthropic,
    from_anthropic_tools,
    from_openai_chat,
    from_openai_chat_tools,
    from_openai_responses,
    to_anthropic,
    to_anthropic_tools,
    to_openai_chat,
    to_openai_chat_tools,
    to_openai_responses,
)
from ctxbudget.errors import ConversionError
from ctxbudget.session.exchanges import find_orphans

CHAT: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris and Rome?", "name": "ana"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
            },
        ],
        "extra": {"cost": 0.01},
        "provider_specific_fields": {"refusal": None},
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18C", "extra": {"returncode": 0}},
    {"role": "tool", "tool_call_id": "call_2", "content": "20C"},
    {"role": "user", "content": "And tomorrow?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_3", "type": "function", "function": {"name": "forecast", "arguments": ""}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_3", "content": "rain"},
    {"role": "assistant", "content": "Rain tomorrow."},
]


def test_openai_chat_with_parallel_calls_renders_as_anthropic() -> None:
    system, messages = to_anthropic(from_openai_chat(CHAT))
    assert system == "Be brief."
    assert messages == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "20C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_3", "name": "forecast", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_3", "content": "rain"}],
        },
        {"role": "assistant", "content": "Rain tomorrow."},
    ]
    for index, message in enumerate(messages):
        if not isinstance(message["content"], list):
            continue
        calls = {b["id"] for b in message["content"] if b["type"] == "tool_use"}
        if calls:
            answered = {b.get("tool_use_id") for b in messages[index + 1]["content"]}
            assert calls <= answered
    assert not find_orphans(from_anthropic(messages, system=system))


ANTHROPIC: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?", "cache_control": {"type": "ephemeral"}},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
            },
        ],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Look it up.", "signature": "sig"},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "png"}},
            {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"q": "logo"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "an image format"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "content": [{"type": "text", "text": "none"}],
                "is_error": True,
            },
            {"type": "text", "text": "so?"},
        ],
    },
]


def test_anthropic_renders_as_openai_chat() -> None:
    items = from_anthropic(
        ANTHROPIC, system=[{"type": "text", "text": "Sys", "cache_control": {"type": "ephemeral"}}]
    )
    messages = to_openai_chat(items)
    assert messages == [
        {"role": "system", "content": "Sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "png"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "logo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "an image format"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "none"}]},
        {"role": "user", "content": "so?"},
    ]
    assert not find_orphans(from_openai_chat(messages))


def test_anthropic_renders_as_openai_responses() -> None:
    instructions, items = to_openai_responses(from_anthropic(ANTHROPIC, system="Sys"))
    assert instructions is None
    assert [i.get("type", i.get("role")) for i in items] == [
        "system",
        "user",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "user",
    ]
    assert items[2] == {
        "type": "function_call",
        "call_id": "toolu_1",
        "name": "lookup",
        "arguments": '{"q": "png"}',
    }
    assert "signature" not in json.dumps(items)
    assert not find_orphans(from_openai_responses(items))


def test_responses_turn_renders_as_anthropic_without_openai_reasoning() -> None:
    input_items = [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_a",
            "name": "f",
            "arguments": '{"x": 1}',
        },
        {"type": "function_call", "call_id": "call_b", "name": "f", "arguments": '{"x": 2}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "1"},
        {"type": "function_call_output", "call_id": "call_b", "output": "2"},
    ]
    system, messages = to_anthropic(from_openai_responses(input_items, instructions="Sys"))
    assert system == "Sys"
    assert messages == [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_a", "name": "f", "input": {"x": 1}},
                {"type": "tool_use", "id": "call_b", "name": "f", "input": {"x": 2}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "1"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": "2"},
            ],
        },
    ]


def test_openai_chat_round_trips_through_responses_semantically() -> None:
    _, input_items = to_openai_responses(from_openai_chat(CHAT))
    assert isinstance(input_items, list)
    assert "extra" not in json.dumps(input_items)
    back = to_openai_chat(from_openai_responses(input_items))
    calls = [c["id"] for m in back for c in m.get("tool_calls", [])]
    results = [m["tool_call_id"] for m in back if m["role"] == "tool"]
    assert calls == results == ["call_1", "call_2", "call_3"]


def test_what_cannot_be_expressed_raises_or_is_quoted_never_dropped() -> None:
    bad_json = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
            ],
        }
    ]
    _, (assistant,) = to_anthropic(from_openai_chat(bad_json))
    assert assistant["content"][0]["input"] == {"input": "{oops"}  # Anthropic takes objects
    audio = [
        {
            "role": "user",
            "content": [{"type": "input_audio", "input_audio": {"data": "A", "format": "wav"}}],
        }
    ]
    server = [
        {
            "role": "assistant",
            "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}],
        }
    ]
    # a block of another format with no equivalent is quoted whole as text, never dropped
    _, (user,) = to_anthropic(from_openai_chat(audio))
    assert user["content"] == [
        {
            "type": "text",
            "text": '[openai_chat input_audio, kept as JSON: {"input_audio": {"data": "A", '
            '"format": "wav"}, "type": "input_audio"}]',
        }
    ]
    (assistant,) = to_openai_chat(from_anthropic(server))
    assert "server_tool_use" in assistant["content"][0]["text"]
    assert '"name": "web_search"' in assistant["content"][0]["text"]


def test_tools_convert_without_provider_only_fields() -> None:
    chat_tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {"type": "object"},
                "strict": True,
            },
        }
    ]
    assert to_anthropic_tools(from_openai_chat_tools(chat_tools)) == [
        {"name": "f", "description": "d", "input_schema": {"type": "object"}}
    ]
    assert to_anthropic_tools(
        from_openai_chat_tools([{"type": "function", "function": {"name": "g"}}])
    ) == [{"name": "g", "input_schema": {"type": "object", "properties": {}}}]
    anthropic_tools = [
        {"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}
    ]
    assert to_openai_chat_tools(from_anthropic_tools(anthropic_tools)) == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    with pytest.raises(ConversionError, match="built-in tool"):
        to_openai_chat_tools(from_anthropic_tools([{"type": "bash_20250124", "name": "bash"}]))
