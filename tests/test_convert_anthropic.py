"""Anthropic Messages ⇄ items, on fixtures written from the documented block shapes."""

import copy
import json
from typing import Any

import pytest

from ctxbudget.convert import (
    from_anthropic,
    from_anthropic_tools,
    to_anthropic,
    to_anthropic_tools,
)
from ctxbudget.errors import ConversionError
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import (
    Component,
    DocumentPart,
    ImagePart,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

EPHEMERAL = {"type": "ephemeral"}

SYSTEM: list[dict[str, Any]] = [
    {"type": "text", "text": "You are a careful agent."},
    {"type": "text", "text": "Long policy text.", "cache_control": EPHEMERAL},
]

MESSAGES: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Weather in Paris and Rome? See the map."},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
            },
            {"type": "image", "source": {"type": "url", "url": "https://x.test/map.jpg"}},
            {
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"},
                "title": "Report",
                "context": "quarterly",
                "citations": {"enabled": True},
                "cache_control": EPHEMERAL,
            },
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
            },
            {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}},
            {"type": "document", "source": {"type": "file", "file_id": "file_011"}},
        ],
    },
    {
        "role": "assistant",
        "content": [
            {
                "type": "thinking",
                "thinking": "Two cities: call the tool twice.",
                "signature": "EqQBCgIYAh",
            },
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Paris"}},
            {
                "type": "tool_use",
                "id": "toolu_02",
                "name": "weather",
                "input": {"city": "Rome", "units": ["°C", 1.5, None, True]},
                "cache_control": EPHEMERAL,
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C, clear"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_02",
                "content": [
                    {"type": "text", "text": "service down"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"},
                    },
                    {
                        "type": "search_result",
                        "source": "https://x.test",
                        "title": "t",
                        "content": [],
                    },
                ],
                "is_error": True,
                "cache_control": EPHEMERAL,
            },
        ],
    },
    {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_03", "name": "noop", "input": {}}],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_03"},
            {"type": "text", "text": "and now?"},
        ],
    },
    {"role": "assistant", "content": [{"type": "text", "text": "Sunny."}]},
    {"role": "user", "content": "thanks"},
    {"role": "assistant", "content": [{"type": "thinking", "thinking": "no signature"}]},
    {
        "role": "assistant",
        "content": [
            {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {"q": "x"},
            }
        ],
    },
    {"role": "user", "content": []},
]


def test_round_trip_is_exact() -> None:
    original = copy.deepcopy(MESSAGES)
    for system in (SYSTEM, "plain system", "", None):
        items = from_anthropic(MESSAGES, system=system)
        assert to_anthropic(items, alternate=False) == (system, MESSAGES)
    assert original == MESSAGES


def test_single_text_block_list_stays_a_list() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    system = [{"type": "text", "text": "s"}]
    assert to_anthropic(from_anthropic(messages, system=system), alternate=False) == (
        system,
        messages,
    )


def test_parts_roles_components_and_exchanges() -> None:
    items = from_anthropic(MESSAGES, system=SYSTEM)
    system, first, turn, results = items[:4]
    assert (system.role, system.component) == ("system", Component.SYSTEM)
    assert system.parts[1].provider_details["cache_control"] == EPHEMERAL
    assert isinstance(first.parts[1], ImagePart)
    assert (first.parts[1].data, first.parts[1].media_type) == ("iVBO", "image/png")
    assert isinstance(first.parts[3], DocumentPart)
    assert first.parts[3].title == "Report"
    assert first.parts[4] == DocumentPart(data="hi", media_type="text/plain")
    thinking, redacted = turn.parts[0], turn.parts[1]
    assert thinking == ReasoningPart(
        text="Two cities: call the tool twice.", signature="EqQBCgIYAh"
    )
    assert isinstance(redacted, ReasoningPart)
    assert redacted.redacted_data == "EmwKAhgBEgy3va3pzix"
    call = turn.parts[4]
    assert isinstance(call, ToolCallPart)
    assert json.loads(call.arguments) == {"city": "Rome", "units": ["°C", 1.5, None, True]}
    assert "°C" in call.arguments  # not \u-escaped
    assert (results.role, results.component) == ("user", Component.TOOL_RESULTS)
    error = results.parts[1]
    assert isinstance(error, ToolResultPart)
    assert error.is_error is True
    assert isinstance(error.content, tuple)
    assert error.content[0] == TextPart(text="service down")
    assert turn.exchange_id == results.exchange_id == f"x:{turn.id}"
    assert items[5].component is Component.HISTORY  # tool_result + text: a mixed user turn
    assert items[5].exchange_id == items[4].exchange_id
    assert not find_orphans(items)


def test_ids_start_after_the_system_item() -> None:
    items = from_anthropic(MESSAGES[:1], system="s", id_prefix="a", start=5)
    assert [i.id for i in items] == ["a5", "a6"]
    assert [i.id for i in from_anthropic(MESSAGES[:1])] == ["m0"]


TOOLS: list[dict[str, Any]] = [
    {
        "name": "weather",
        "description": "Current weather.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        "cache_control": EPHEMERAL,
    },
    {"name": "noop", "input_schema": {}},
    {"type": "custom", "name": "c", "input_schema": {"type": "object"}},
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    {"type": "bash_20250124", "name": "bash"},
]


def test_tools_round_trip() -> None:
    specs = from_anthropic_tools(TOOLS)
    assert to_anthropic_tools(specs) == TOOLS
    assert specs[0].parameters["properties"]["city"] == {"type": "string"}
    assert specs[0].provider_details["cache_control"] == EPHEMERAL
    assert [s.name for s in specs] == ["weather", "noop", "c", "web_search", "bash"]


@pytest.mark.parametrize(
    ("messages", "system", "path", "words"),
    [
        ([{"role": "system", "content": "x"}], None, "messages[0].role", "expected 'user' or"),
        ([{"role": "user"}], None, "messages[0]", "'content'"),
        (
            [{"role": "user", "content": [{"type": "text", "text": None}]}],
            None,
            "messages[0].content[0].text",
            "expected a string",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "n", "input": "x"}],
                }
            ],
            None,
            "messages[0].content[0].input",
            "expected an object",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}],
                }
            ],
            None,
            "messages[0].content[0].is_error",
            "expected a boolean",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}],
                        }
                    ],
                }
            ],
            None,
            "messages[0].content[0].content[0]",
            "expected a text, image or document block",
        ),
        (
            [{"role": "user", "content": [{"type": "image", "source": "x"}]}],
            None,
            "messages[0].content[0].source",
            "expected an object",
        ),
        ([], 3, "system", "expected an array"),
    ],
)
def test_malformed_input_names_the_path(messages: Any, system: Any, path: str, words: str) -> None:
    with pytest.raises(ConversionError) as caught:
        from_anthropic(messages, system=system)
    assert caught.value.path == path
    assert words in str(caught.value)
