"""OpenAI Responses ``input`` ⇄ items: one model turn is one assistant item, exactly reversible."""

import copy
from typing import Any

import pytest

from ctxbudget.convert import (
    from_openai_responses,
    from_openai_responses_tools,
    to_openai_responses,
    to_openai_responses_tools,
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

INPUT: list[dict[str, Any]] = [
    {"role": "developer", "content": "Answer briefly."},
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "Weather in Paris and Rome?"},
            {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "auto"},
            {"type": "input_image", "file_id": "file-img", "detail": "low"},
            {
                "type": "input_file",
                "filename": "r.pdf",
                "file_data": "data:application/pdf;base64,JVBER",
            },
            {"type": "input_file", "file_url": "https://x.test/r.pdf"},
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}},
        ],
    },
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [
            {"type": "summary_text", "text": "**Plan**\n\nTwo calls."},
            {"type": "summary_text", "text": "Then answer."},
        ],
        "encrypted_content": "gAAAAAB",
    },
    {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
    },
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_a",
        "name": "weather",
        "arguments": '{"city":"Paris"}',
        "status": "completed",
    },
    {
        "type": "function_call",
        "call_id": "call_b",
        "name": "weather",
        "arguments": '{"city":"Rome"}',
    },
    {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
    {
        "type": "function_call_output",
        "call_id": "call_b",
        "output": [{"type": "input_text", "text": "20C"}],
        "id": "fco_2",
        "status": "completed",
    },
    {"type": "reasoning", "id": "rs_2", "summary": []},
    {"role": "assistant", "content": "Paris 18C, Rome 20C."},
    {"role": "assistant", "content": "Anything else?"},
    {"role": "user", "content": [{"type": "input_text", "text": "no"}]},
    {
        "type": "reasoning",
        "id": "rs_3",
        "summary": [{"type": "summary_text", "text": ""}],
        "encrypted_content": None,
    },
    {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "completed",
        "action": {"type": "search", "query": "x"},
    },
    {
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "output_text", "text": "ok"},
            {"type": "refusal", "refusal": "but no"},
        ],
    },
    {"type": "custom_tool_call", "call_id": "call_c", "name": "grammar", "input": "raw"},
    {"type": "custom_tool_call_output", "call_id": "call_c", "output": "fine"},
    {"type": "message", "role": "assistant", "content": []},
    {"type": "item_reference", "id": "msg_0"},
    {"type": "computer_call_output", "call_id": "cc", "output": {"type": "computer_screenshot"}},
]


def test_round_trip_is_exact() -> None:
    original = copy.deepcopy(INPUT)
    for instructions in ("Be kind.", "", None):
        items = from_openai_responses(INPUT, instructions=instructions)
        assert to_openai_responses(items) == (instructions, INPUT)
    assert original == INPUT


def test_string_input_round_trips() -> None:
    items = from_openai_responses("hello", instructions="sys")
    assert [(i.role, i.component) for i in items] == [
        ("system", Component.SYSTEM),
        ("user", Component.HISTORY),
    ]
    assert to_openai_responses(items) == ("sys", "hello")
    assert to_openai_responses(from_openai_responses([])) == (None, [])


def test_one_model_turn_is_one_assistant_item() -> None:
    items = from_openai_responses(INPUT)
    roles = [i.role for i in items]
    assert roles[:6] == ["developer", "user", "assistant", "tool", "tool", "assistant"]
    turn = items[2]
    assert [p.kind for p in turn.parts] == ["reasoning", "text", "tool_call", "tool_call"]
    reasoning = turn.parts[0]
    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.text == "**Plan**\n\nTwo calls.\n\nThen answer."
    assert reasoning.encrypted_content == "gAAAAAB"
    assert reasoning.provider_details["id"] == "rs_1"
    assert turn.parts[2] == ToolCallPart(
        id="call_a",
        name="weather",
        arguments='{"city":"Paris"}',
        provider_details=turn.parts[2].provider_details,
    )
    assert turn.parts[2].provider_details["id"] == "fc_1"
    assert items[3].parts == (ToolResultPart(call_id="call_a", content="18C"),)
    assert items[3].component is Component.TOOL_RESULTS
    assert turn.exchange_id == items[3].exchange_id == items[4].exchange_id == f"x:{turn.id}"
    second = items[5]  # reasoning + two assistant messages: one turn, two messages
    assert [p.kind for p in second.parts] == ["reasoning", "text", "text"]
    assert not find_orphans(items)


def test_content_parts_map_to_typed_parts() -> None:
    parts = from_openai_responses(INPUT)[1].parts
    assert parts[0] == TextPart(text="Weather in Paris and Rome?")
    assert parts[1] == ImagePart(url="https://x.test/a.png", detail="auto")
    assert isinstance(parts[3], DocumentPart)
    assert (parts[3].media_type, parts[3].data, parts[3].title) == (
        "application/pdf",
        "JVBER",
        "r.pdf",
    )
    assert isinstance(parts[4], DocumentPart)
    assert parts[4].url == "https://x.test/r.pdf"


TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "weather",
        "description": "Current weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
    {"type": "function", "name": "noop", "parameters": {}},
    {"type": "function", "name": "bare"},
    {"type": "function", "name": "nulled", "parameters": None, "strict": False},
    {"type": "web_search"},
    {"type": "custom", "name": "grammar", "format": {"type": "text"}},
]


def test_tools_round_trip() -> None:
    specs = from_openai_responses_tools(TOOLS)
    assert to_openai_responses_tools(specs) == TOOLS
    assert [s.name for s in specs] == ["weather", "noop", "bare", "nulled", "web_search", "grammar"]
    assert specs[0].provider_details["strict"] is True


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ({"input": 3}, "input", "expected an array"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role", "unknown role 'robot'"),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0]",
            "'call_id'",
        ),
        ({"input": [{"type": "function_call_output", "call_id": "c"}]}, "input[0]", "'output'"),
        (
            {"input": [{"type": "reasoning", "id": "r", "summary": [{"type": "x"}]}]},
            "input[0].summary[0]",
            "summary_text",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0]",
            "'text'",
        ),
        ({"input": [], "instructions": 3}, "instructions", "expected a string"),
    ],
)
def test_malformed_input_names_the_path(value: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConversionError) as caught:
        from_openai_responses(value["input"], instructions=value.get("instructions"))
    assert caught.value.path == path
    assert words in str(caught.value)
