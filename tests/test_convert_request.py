"""Whole request bodies: format detection, exact round trips, options kept verbatim."""

import dataclasses
from typing import Any

import pytest

from ctxbudget.convert import Request, detect_format, read_request, write_request
from ctxbudget.errors import ConversionError
from ctxbudget.session.items import Component

CHAT_BODY: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "temperature": 0.2,
    "max_completion_tokens": 100,
    "stream": False,
}

ANTHROPIC_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "hi"}],
    "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    "thinking": {"type": "enabled", "budget_tokens": 2000},
}

RESPONSES_BODY: dict[str, Any] = {
    "model": "gpt-5",
    "instructions": "Be brief.",
    "input": [{"role": "user", "content": "hi"}],
    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
    "reasoning": {"effort": "low", "summary": "auto"},
    "include": ["reasoning.encrypted_content"],
    "store": False,
}


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (CHAT_BODY, "openai_chat"),
        (ANTHROPIC_BODY, "anthropic"),
        (RESPONSES_BODY, "openai_responses"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "openai_chat"),
        ({"input": "hi"}, "openai_responses"),
        ({"instructions": "x"}, "openai_responses"),
        ({"system": "x", "messages": []}, "anthropic"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}
                ]
            },
            "anthropic",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "thinking", "thinking": ""}]}
                ]
            },
            "anthropic",
        ),
        ({"messages": [], "tools": [{"name": "f", "input_schema": {}}]}, "anthropic"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
            "anthropic",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
            "openai_chat",
        ),
    ],
)
def test_detects_the_format(body: dict[str, Any], fmt: str) -> None:
    assert detect_format(body) == fmt
    assert read_request(body).format == fmt


@pytest.mark.parametrize(
    "body",
    [
        CHAT_BODY,
        ANTHROPIC_BODY,
        RESPONSES_BODY,
        {"messages": []},
        {"model": None, "messages": [], "tools": []},
        {"system": None, "messages": [{"role": "user", "content": "x"}], "max_tokens": 5},
        {"system": [], "messages": []},
        {"system": "", "messages": []},
        {"input": "just text", "model": "gpt-5"},
        {"input": [], "instructions": None},
        {"instructions": "only instructions"},
        {"input": "", "tools": None},
    ],
)
def test_round_trip_is_exact(body: dict[str, Any]) -> None:
    assert write_request(read_request(body)) == body


def test_request_fields() -> None:
    request = read_request(ANTHROPIC_BODY, id_prefix="r")
    assert request.model == "claude-sonnet-4-5"
    assert request.options == {
        "max_tokens": 1024,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
    }
    assert [t.name for t in request.tools] == ["f"]
    assert [(i.id, i.role, i.component) for i in request.items] == [
        ("r0", "system", Component.SYSTEM),
        ("r1", "user", Component.HISTORY),
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.model = "other"  # type: ignore[misc]


def test_explicit_format_overrides_detection() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    request = read_request(body, format="anthropic")
    assert request.format == "anthropic"
    assert write_request(request) == body


def test_a_request_can_be_written_in_another_format() -> None:
    request = read_request(CHAT_BODY)
    body = write_request(dataclasses.replace(request, format="anthropic"))
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]
    assert isinstance(request, Request)


@pytest.mark.parametrize(
    ("body", "fmt", "path"),
    [
        ({"model": "x"}, None, "request"),
        ("not a body", None, "request"),
        ({"messages": "x"}, None, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "openai_chatt", "format"),
        ({"input": [{"role": "user"}]}, None, "input[0]"),
        (
            {
                "system": "x",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"input_schema": {}}],
            },
            None,
            "tools[0]",
        ),
    ],
)
def test_unreadable_bodies_name_the_path(body: Any, fmt: Any, path: str) -> None:
    with pytest.raises(ConversionError) as caught:
        read_request(body, format=fmt)
    assert caught.value.path == path
