"""OpenAI Chat Completions ⇄ items: exact round trips, the model it builds, clear errors."""

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.convert import (
    from_openai_chat,
    from_openai_chat_tools,
    to_openai_chat,
    to_openai_chat_tools,
)
from ctxbudget.errors import ConversionError
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import (
    Component,
    DocumentPart,
    ImagePart,
    Item,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

PNG = "iVBORw0KGgo="

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
    {"role": "user", "content": "hi", "name": "ana"},
    {"role": "user", "content": None},
    {"role": "user", "content": []},
    {"role": "user", "content": ""},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is in these?"},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": "https://x.test/legacy.png"},
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"},
            },
            {"type": "file", "file": {"file_id": "file-123"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{}"}},
            {"id": "call_2", "type": "function", "function": {"name": "cat", "arguments": "{bad"}},
        ],
        "refusal": None,
        "function_call": None,
        "annotations": [],
        "extra": {"cost": 0.1, "actions": [{"command": "ls"}]},
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "a\nb", "name": "ls"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "oops"}]},
    {"role": "assistant", "content": "done", "tool_calls": []},
    {"role": "assistant", "tool_calls": None},
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
    {"role": "assistant", "content": None, "refusal": "I can't help with that."},
    {"role": "assistant", "content": None, "function_call": {"name": "old", "arguments": "{}"}},
    {"role": "function", "name": "old", "content": "legacy result"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "c3", "function": {"name": "no_type", "arguments": ""}, "index": 0},
            {"id": "c4", "type": "custom", "custom": {"name": "grammar", "input": "raw text"}},
        ],
    },
    {"role": "tool", "tool_call_id": "c3", "content": None},
    {"role": "tool", "tool_call_id": "c4", "content": "ok"},
]


def test_round_trip_is_exact() -> None:
    original = copy.deepcopy(CONVERSATION)
    items = from_openai_chat(CONVERSATION)
    assert to_openai_chat(items) == CONVERSATION
    assert original == CONVERSATION  # the input was not touched


def test_items_share_no_mutable_state_with_input_or_output() -> None:
    messages = copy.deepcopy(CONVERSATION)
    items = from_openai_chat(messages)
    messages[7]["extra"]["cost"] = 99.0
    written = to_openai_chat(items)
    assert written == CONVERSATION
    written[7]["extra"]["actions"].append("mutated")
    assert to_openai_chat(items) == CONVERSATION


def test_items_have_ids_components_and_exchanges() -> None:
    items = from_openai_chat(CONVERSATION, id_prefix="s1:", start=10)
    assert [i.id for i in items] == [f"s1:{n}" for n in range(10, 10 + len(CONVERSATION))]
    components = {i.role: i.component for i in items}
    assert components["system"] is Component.SYSTEM
    assert components["developer"] is Component.SYSTEM
    assert components["user"] is Component.HISTORY
    assert components["tool"] is Component.TOOL_RESULTS
    assistant, first, second = items[7], items[8], items[9]
    assert assistant.exchange_id == "x:s1:17" == first.exchange_id == second.exchange_id
    assert [c.arguments for c in assistant.tool_calls] == ["{}", "{bad"]
    assert first.name == "ls"
    assert first.parts == (ToolResultPart(call_id="call_1", content="a\nb"),)
    assert assistant.provider_details["extra"] == {"cost": 0.1, "actions": [{"command": "ls"}]}
    legacy_call, legacy_result = items[14], items[15]
    assert legacy_result.role == "tool"
    assert legacy_result.exchange_id == legacy_call.exchange_id is not None
    assert not find_orphans(items)


def test_plain_messages_carry_no_details() -> None:
    (item,) = from_openai_chat([{"role": "user", "content": "hi"}])
    assert item.parts == (TextPart(text="hi"),)
    assert item.name is None
    (part,) = item.parts
    assert part.provider_details == {}


def test_content_parts_map_to_typed_parts() -> None:
    parts = from_openai_chat(CONVERSATION)[6].parts
    assert isinstance(parts[1], ImagePart)
    assert (parts[1].url, parts[1].detail) == ("https://x.test/a.png", "low")
    assert isinstance(parts[5], DocumentPart)
    assert (parts[5].media_type, parts[5].data, parts[5].title) == (
        "application/pdf",
        "JVBER",
        "a.pdf",
    )
    audio = parts[4]
    assert isinstance(audio, DocumentPart)
    assert audio.provider_details["input_audio"] == {"data": "AAAA", "format": "wav"}


def test_items_from_elsewhere_are_written_in_the_default_shape() -> None:
    items = [
        Item(
            id="a",
            role="assistant",
            component=Component.HISTORY,
            parts=(
                TextPart(text="checking"),
                ToolCallPart(id="c1", name="ls", arguments="{}"),
            ),
        ),
        Item(
            id="b",
            role="user",
            component=Component.TOOL_RESULTS,
            parts=(
                ToolResultPart(call_id="c1", content=(TextPart(text="x"),), is_error=True),
                TextPart(text="go on"),
            ),
        ),
        Item(
            id="c",
            role="user",
            component=Component.HISTORY,
            parts=(
                ImagePart(data=PNG, media_type="image/png"),
                DocumentPart(data="plain words", media_type="text/plain"),
            ),
        ),
    ]
    assert to_openai_chat(items) == [
        {
            "role": "assistant",
            "content": "checking",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "x"}]},
        {"role": "user", "content": "go on"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "text", "text": "plain words"},
            ],
        },
    ]


TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "Run a command.",
            "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
            "strict": True,
        },
    },
    {"type": "function", "function": {"name": "noop"}},
    {"type": "function", "function": {"name": "empty", "parameters": {}, "description": None}},
    {"type": "custom", "custom": {"name": "grammar", "format": {"type": "text"}}},
]


def test_tools_round_trip_and_map_to_specs() -> None:
    specs = from_openai_chat_tools(TOOLS)
    assert to_openai_chat_tools(specs) == TOOLS
    assert specs[0].name == "bash"
    assert specs[0].parameters["properties"]["command"] == {"type": "string"}
    assert specs[0].provider_details["strict"] is True
    assert specs[3].name == "grammar"


@pytest.mark.parametrize(
    ("messages", "path", "words"),
    [
        ("nope", "messages", "expected an array"),
        ([{"role": "user", "content": "a"}, 3], "messages[1]", "expected an object"),
        ([{"role": "robot", "content": "a"}], "messages[0].role", "unknown role 'robot'"),
        ([{"content": "a"}], "messages[0].role", "unknown role None"),
        ([{"role": "user", "content": 5}], "messages[0].content", "expected an array"),
        (
            [{"role": "user", "content": [{"type": "text"}]}],
            "messages[0].content[0]",
            "missing required field 'text'",
        ),
        (
            [{"role": "user", "content": ["x", {"type": "text", "text": 1}]}],
            "messages[0].content[0]",
            "expected an object",
        ),
        ([{"role": "tool", "content": "x"}], "messages[0]", "'tool_call_id'"),
        ([{"role": "user"}], "messages[0]", "missing required field 'content'"),
        ([{"role": "tool", "tool_call_id": "c"}], "messages[0]", "'content'"),
        (
            [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}],
            "messages[0].tool_calls[0].function",
            "expected an object",
        ),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}],
                }
            ],
            "messages[0].tool_calls[0].function.arguments",
            "expected a string",
        ),
        ([{"role": "assistant", "tool_calls": "x"}], "messages[0].tool_calls", "expected an array"),
        ([{"role": "user", "content": "a", "name": 3}], "messages[0].name", "expected a string"),
        ([{"role": "user", "content": "a", "_wire": 1}], "messages[0]", "reserved"),
    ],
)
def test_malformed_messages_name_the_path(messages: Any, path: str, words: str) -> None:
    with pytest.raises(ConversionError) as caught:
        from_openai_chat(messages)
    assert caught.value.path == path
    assert words in str(caught.value)


# -- property: random conversations with answered parallel tool calls round-trip exactly --

_text = st.text(max_size=40)
_args = st.one_of(
    st.dictionaries(st.text(max_size=8), st.one_of(_text, st.integers()), max_size=3).map(
        lambda d: json.dumps(d, ensure_ascii=False)
    ),
    _text,  # models do produce invalid JSON; it is kept raw
)


@st.composite
def _turn(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    user: dict[str, Any] = {"role": "user", "content": draw(_text)}
    if draw(st.booleans()):
        user["content"] = [{"type": "text", "text": t} for t in draw(st.lists(_text, max_size=3))]
    ids = [f"call_{index}_{n}" for n in range(draw(st.integers(0, 3)))]
    assistant: dict[str, Any] = {"role": "assistant", "content": draw(st.one_of(st.none(), _text))}
    if ids:
        assistant["tool_calls"] = [
            {
                "id": i,
                "type": "function",
                "function": {"name": draw(_text), "arguments": draw(_args)},
            }
            for i in ids
        ]
    if draw(st.booleans()):
        assistant["extra"] = {"note": draw(_text)}
    results = [{"role": "tool", "tool_call_id": i, "content": draw(_text)} for i in ids]
    return [user, assistant, *results]


@st.composite
def _conversation(draw: st.DrawFn) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": draw(_text)}]
    for index in range(draw(st.integers(0, 4))):
        messages.extend(draw(_turn(index)))
    return messages


@settings(max_examples=150, deadline=None)
@given(_conversation())
def test_random_conversations_round_trip(messages: list[dict[str, Any]]) -> None:
    items = from_openai_chat(messages)
    assert to_openai_chat(items) == messages
    assert not find_orphans(items)
