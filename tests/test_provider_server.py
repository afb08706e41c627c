"""The fake provider, driven by the real OpenAI and Anthropic SDK clients over HTTP.

If the SDKs parse what it sends and it bills, caches, validates and fails like the
providers, the rest of the suite can trust it as a stand-in for the real endpoints.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import openai
import pytest

from ctxbudget.tokens.encodings import load_encoding
from provider_server import Billed, ProviderServer, Reply

GPT = "gpt-4o"
CLAUDE = "claude-sonnet-4-6"
TOOLS_OPENAI: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
TOOLS_RESPONSES: Any = [{"type": "function", **TOOLS_OPENAI[0]["function"]}]
TOOLS_ANTHROPIC: Any = [
    {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
LONG = "\n".join(f"Fact {i}: the lighthouse keeper logged {i * 7} gulls." for i in range(160))
OTHER_LONG = "\n".join(f"Note {i}: the ferry left pier {i % 9} at {i}:00." for i in range(160))
SHORT = "\n".join(f"Fact {i}: the keeper logged {i * 7} gulls." for i in range(70))


def o200k(text: str) -> int:
    return len(load_encoding("o200k_base").encode_ordinary(text))


def scaled_cl100k(text: str) -> int:
    """The fake Anthropic's rule, restated: cl100k tokens × 1.1 rounded up."""
    return -(-len(load_encoding("cl100k_base").encode_ordinary(text)) * 11 // 10)


def replies(*answers: Reply) -> Callable[[str, dict[str, Any]], Reply]:
    """A script answering the calls in order."""
    queue = list(answers)
    return lambda api, body: queue.pop(0)


class Clock:
    """A hand-driven ``now`` for cache TTLs."""

    def __init__(self) -> None:
        self.time = 1000.0

    def __call__(self) -> float:
        return self.time


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[Any]:
    """One connection pool for all SDK clients: building a client's own costs ~50 ms."""
    with openai.DefaultHttpxClient() as client:
        yield client


@pytest.fixture
def oai(server: ProviderServer, http: Any) -> openai.OpenAI:
    url = server.openai_base_url
    return openai.OpenAI(api_key="test", base_url=url, max_retries=0, http_client=http)


@pytest.fixture
def claude(server: ProviderServer, http: Any) -> anthropic.Anthropic:
    url = server.anthropic_base_url
    return anthropic.Anthropic(api_key="test", base_url=url, max_retries=0, http_client=http)


def only_billed(server: ProviderServer) -> Billed:
    assert len(server.billed) == 1
    return server.billed[0]


# --- OpenAI Chat Completions -------------------------------------------------------------


def test_chat_tool_calls_round_trip(server: ProviderServer, oai: openai.OpenAI) -> None:
    server.script = replies(
        Reply(
            tool_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})],
            reasoning_tokens=7,
        ),
        Reply(text="Sunny in Paris, rain in Oslo."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
    first = oai.chat.completions.create(model=GPT, messages=messages, tools=TOOLS_OPENAI)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = [c for c in choice.message.tool_calls or [] if c.type == "function"]
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert len({c.id for c in calls}) == 2
    assert all(c.id.startswith("call_") for c in calls)
    usage = first.usage
    assert usage is not None
    assert usage.prompt_tokens == server.count_input("openai_chat", server.requests[0])
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 7
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    messages.append(choice.message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": "sunny"} for c in calls]
    second = oai.chat.completions.create(model=GPT, messages=messages, tools=TOOLS_OPENAI)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Sunny in Paris, rain in Oslo."
    assert [b.input_tokens for b in server.billed] == [
        usage.prompt_tokens,
        server.count_input("openai_chat", server.requests[1]),
    ]
    assert server.billed[0].output_tokens == usage.completion_tokens
    assert server.billed[1].input_tokens > server.billed[0].input_tokens


def test_chat_count_follows_the_cookbook(server: ProviderServer) -> None:
    body = {
        "model": GPT,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "name": "bob", "content": "Hi there"},
        ],
    }
    expected = (3 + o200k("system") + o200k("You are terse.")) + (
        3 + o200k("user") + o200k("bob") + 1 + o200k("Hi there")
    )
    assert server.count_input("openai_chat", body) == expected + 3
    with_tools = {**body, "tools": TOOLS_OPENAI}
    tools_cost = o200k(json.dumps(TOOLS_OPENAI, sort_keys=True))
    assert server.count_input("openai_chat", with_tools) == expected + 3 + tools_cost


def test_chat_stream_deltas_and_usage(server: ProviderServer, oai: openai.OpenAI) -> None:
    server.script = replies(
        Reply(
            text="Checking the sky now.",
            tool_calls=[("get_weather", {"city": "Lima"})],
            reasoning_tokens=3,
        )
    )
    stream = oai.chat.completions.create(
        model=GPT,
        messages=[{"role": "user", "content": "Weather in Lima?"}],
        tools=TOOLS_OPENAI,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert text == "Checking the sky now."
    assert [d.id for d in deltas if d.id] == [deltas[0].id]
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    assert len(deltas) > 2  # the arguments arrive in pieces
    assert json.loads(arguments) == {"city": "Lima"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None
    billed = only_billed(server)
    assert billed.stream
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        billed.input_tokens,
        billed.output_tokens,
    )
    assert (
        billed.output_tokens
        == o200k("Checking the sky now.") + o200k("get_weather") + o200k('{"city":"Lima"}') + 3
    )


def test_chat_stream_without_usage_and_sdk_helper(
    server: ProviderServer, oai: openai.OpenAI
) -> None:
    server.script = replies(Reply(text="one two three"), Reply(text="four five"))
    chunks = list(
        oai.chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": "count"}], stream=True
        )
    )
    assert all(c.usage is None and c.choices for c in chunks)
    with oai.chat.completions.stream(
        model=GPT, messages=[{"role": "user", "content": "count on"}]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "four five"
    assert [b.stream for b in server.billed] == [True, True]


# --- OpenAI Responses --------------------------------------------------------------------


def test_responses_function_call_round_trip(server: ProviderServer, oai: openai.OpenAI) -> None:
    server.script = replies(
        Reply(
            text="Let me check.", tool_calls=[("get_weather", {"city": "Rome"})], reasoning_tokens=4
        ),
        Reply(text="It is warm in Rome."),
    )
    items: list[Any] = [{"role": "user", "content": "Weather in Rome?"}]
    first = oai.responses.create(
        model=GPT,
        instructions="Be brief.",
        input=items,
        tools=TOOLS_RESPONSES,
    )
    assert first.status == "completed"
    assert [item.type for item in first.output] == ["reasoning", "message", "function_call"]
    assert first.output_text == "Let me check."
    call = first.output[2]
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Rome"})
    assert call.call_id.startswith("call_")
    usage = first.usage
    assert usage is not None
    assert usage.input_tokens == server.count_input("openai_responses", server.requests[0])
    assert usage.output_tokens_details.reasoning_tokens == 4
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens

    items += first.output
    items.append({"type": "function_call_output", "call_id": call.call_id, "output": "warm"})
    second = oai.responses.create(model=GPT, input=items, tools=TOOLS_RESPONSES)
    assert second.output_text == "It is warm in Rome."
    assert server.billed[1].input_tokens == server.count_input(
        "openai_responses", server.requests[1]
    )


def test_responses_stream_events(server: ProviderServer, oai: openai.OpenAI) -> None:
    server.script = replies(
        Reply(text="Hello there, friend.", tool_calls=[("get_weather", {"city": "Bern"})])
    )
    events = list(oai.responses.create(model=GPT, input="Weather in Bern?", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    for kind in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ):
        assert kind in kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert text == "Hello there, friend."
    assert json.loads(args) == {"city": "Bern"}
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None
    billed = only_billed(server)
    assert billed.stream
    assert completed.response.usage.input_tokens == billed.input_tokens
    assert completed.response.usage.output_tokens == billed.output_tokens


def test_responses_stream_helper(server: ProviderServer, oai: openai.OpenAI) -> None:
    server.script = replies(Reply(text="Done and dusted."))
    with oai.responses.stream(model=GPT, input="finish") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Done and dusted."


# --- Anthropic Messages ------------------------------------------------------------------


def test_anthropic_tool_use_round_trip(server: ProviderServer, claude: anthropic.Anthropic) -> None:
    server.script = replies(
        Reply(text="Checking.", tool_calls=[("get_weather", {"city": "Kyiv"})], reasoning_tokens=2),
        Reply(text="Snowing in Kyiv."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Kyiv?"}]
    first = claude.messages.create(
        model=CLAUDE,
        max_tokens=500,
        system="Be brief.",
        messages=messages,
        tools=TOOLS_ANTHROPIC,
    )
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]
    use = first.content[1]
    assert use.type == "tool_use"
    assert use.id.startswith("toolu_")
    assert (use.name, use.input) == ("get_weather", {"city": "Kyiv"})
    count = server.count_input("anthropic", server.requests[0])
    assert first.usage.input_tokens == count
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation_input_tokens == 0
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert first.usage.output_tokens == server.billed[0].output_tokens
    assert server.billed[0].reasoning_tokens == 2

    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "snow"}],
        }
    )
    second = claude.messages.create(
        model=CLAUDE, max_tokens=500, messages=messages, tools=TOOLS_ANTHROPIC
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    assert second.content[0].text == "Snowing in Kyiv."


def test_anthropic_count_is_scaled_cl100k_and_differs_from_openai(server: ProviderServer) -> None:
    body = {
        "model": CLAUDE,
        "max_tokens": 10,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": LONG}],
    }
    expected = scaled_cl100k("Be brief.") + scaled_cl100k(LONG) + 3
    assert server.count_input("anthropic", body) == expected
    with_tools = {**body, "tools": TOOLS_ANTHROPIC}
    assert server.count_input("anthropic", with_tools) == expected + scaled_cl100k(
        json.dumps(TOOLS_ANTHROPIC[0], sort_keys=True)
    )
    as_openai = {"model": GPT, "messages": [{"role": "user", "content": LONG}]}
    assert (
        server.count_input("anthropic", body) > server.count_input("openai_chat", as_openai) * 1.05
    )


def test_anthropic_stream_events_and_helper(
    server: ProviderServer, claude: anthropic.Anthropic
) -> None:
    server.script = replies(
        Reply(text="Looking it up now.", tool_calls=[("get_weather", {"city": "Oslo"})]),
        Reply(text="Cold."),
    )
    messages: Any = [{"role": "user", "content": "Oslo?"}]
    events = list(
        claude.messages.create(model=CLAUDE, max_tokens=100, messages=messages, stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    partial = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    assert text == "Looking it up now."
    assert json.loads(partial) == {"city": "Oslo"}
    start, delta = events[0], events[-2]
    assert start.type == "message_start"
    assert delta.type == "message_delta"
    assert start.message.usage.input_tokens == server.billed[0].input_tokens
    assert delta.usage.output_tokens == server.billed[0].output_tokens
    assert delta.delta.stop_reason == "tool_use"

    with claude.messages.stream(
        model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "Again?"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "Cold."
    assert final.usage.output_tokens == server.billed[1].output_tokens
    assert [b.stream for b in server.billed] == [True, True]


def test_async_clients(server: ProviderServer) -> None:
    server.script = lambda api, body: Reply(text=f"hi from {api}")

    async def both() -> tuple[str | None, str]:
        oai = openai.AsyncOpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0)
        claude = anthropic.AsyncAnthropic(
            api_key="test", base_url=server.anthropic_base_url, max_retries=0
        )
        chat = await oai.chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": "hi"}]
        )
        async with claude.messages.stream(
            model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = await stream.get_final_message()
        await oai.close()
        await claude.close()
        block = message.content[0]
        assert block.type == "text"
        return chat.choices[0].message.content, block.text

    assert asyncio.run(both()) == ("hi from openai_chat", "hi from anthropic")
    assert [(b.api, b.stream) for b in server.billed] == [
        ("openai_chat", False),
        ("anthropic", True),
    ]


# --- OpenAI prompt caching ---------------------------------------------------------------


def chat_body(system: str, question: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": GPT,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
        **extra,
    }


def cached(oai: openai.OpenAI, body: dict[str, Any]) -> tuple[int, int]:
    """(prompt_tokens, cached_tokens) of one chat call."""
    usage = oai.chat.completions.create(**body).usage
    assert usage is not None
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens is not None
    return usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens


def test_openai_cache_reads_128_token_blocks(server: ProviderServer, oai: openai.OpenAI) -> None:
    total, first = cached(oai, chat_body(LONG, "Which fact is first?"))
    assert total > 1500
    assert first == 0
    total_again, second = cached(oai, chat_body(LONG, "Which fact is first?"))
    assert total_again == total
    assert second % 128 == 0
    assert 1024 <= second <= total < second + 128
    _, other_question = cached(oai, chat_body(LONG, "Which fact is last, and why?"))
    assert other_question % 128 == 0
    assert 1024 <= other_question <= second
    assert [b.cache_read_tokens for b in server.billed] == [0, second, other_question]
    assert all(b.cache_write_5m_tokens == b.cache_write_1h_tokens == 0 for b in server.billed)


def test_openai_cache_is_shared_by_responses(server: ProviderServer, oai: openai.OpenAI) -> None:
    for _ in range(2):
        oai.responses.create(model=GPT, instructions=LONG, input="Which fact is first?")
    reads = [b.cache_read_tokens for b in server.billed]
    assert reads[0] == 0
    assert reads[1] >= 1024
    assert reads[1] % 128 == 0


def test_openai_short_prompts_are_never_cached(server: ProviderServer, oai: openai.OpenAI) -> None:
    total, _ = cached(oai, chat_body(SHORT, "q"))
    assert 500 < total < 1024
    assert [cached(oai, chat_body(SHORT, "q"))[1] for _ in range(2)] == [0, 0]


def test_openai_prompt_cache_key_separates(server: ProviderServer, oai: openai.OpenAI) -> None:
    assert cached(oai, chat_body(LONG, "q", prompt_cache_key="alice"))[1] == 0
    assert cached(oai, chat_body(LONG, "q", prompt_cache_key="bob"))[1] == 0
    assert cached(oai, chat_body(LONG, "q"))[1] == 0
    assert cached(oai, chat_body(LONG, "q", prompt_cache_key="alice"))[1] >= 1024
    assert cached(oai, chat_body(LONG, "q", model="gpt-4o-mini", prompt_cache_key="alice"))[1] == 0


def test_openai_cache_expires_after_ten_minutes(server: ProviderServer, oai: openai.OpenAI) -> None:
    clock = Clock()
    server.now = clock
    cached(oai, chat_body(LONG, "q"))
    clock.time += 599
    assert cached(oai, chat_body(LONG, "q"))[1] >= 1024  # a hit renews the entry
    clock.time += 599
    assert cached(oai, chat_body(LONG, "q"))[1] >= 1024
    clock.time += 601
    assert cached(oai, chat_body(LONG, "q"))[1] == 0


# --- Anthropic prompt caching ------------------------------------------------------------

EPHEMERAL = {"type": "ephemeral"}


def text_block(text: str, ttl: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if ttl is not None:
        block["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    return block


def usage_of(claude: anthropic.Anthropic, **body: Any) -> anthropic.types.Usage:
    body.setdefault("model", CLAUDE)
    message: anthropic.types.Message = claude.messages.create(max_tokens=100, **body)
    return message.usage


def test_anthropic_cache_write_then_read(
    server: ProviderServer, claude: anthropic.Anthropic
) -> None:
    body: dict[str, Any] = {
        "system": [text_block(LONG, "5m")],
        "messages": [{"role": "user", "content": "Which fact is first?"}],
    }
    prefix = scaled_cl100k(LONG)
    rest = scaled_cl100k("Which fact is first?") + 3
    first = usage_of(claude, **body)
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (prefix, 0)
    assert first.input_tokens == rest
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_5m_input_tokens == prefix
    second = usage_of(claude, **body)
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, prefix)
    assert second.input_tokens == rest
    billed = server.billed
    assert [b.input_tokens for b in billed] == [prefix + rest] * 2
    assert [(b.cache_read_tokens, b.cache_write_5m_tokens) for b in billed] == [
        (0, prefix),
        (prefix, 0),
    ]
    assert [b.cache_write_1h_tokens for b in billed] == [0, 0]


def test_anthropic_growing_conversation_reads_the_last_breakpoint(
    server: ProviderServer, claude: anthropic.Anthropic
) -> None:
    turn = [{"role": "user", "content": [text_block(LONG, "5m")]}]
    usage_of(claude, messages=turn)
    grown = [
        {"role": "user", "content": [text_block(LONG)]},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": [text_block("Next question?", "5m")]},
    ]
    usage = usage_of(claude, messages=grown)
    assert usage.cache_read_input_tokens == scaled_cl100k(LONG) + 3
    new = scaled_cl100k("Noted.") + 3 + scaled_cl100k("Next question?") + 3
    assert usage.cache_creation_input_tokens == new
    assert usage.input_tokens == 0


def test_anthropic_lookback_is_twenty_blocks(
    server: ProviderServer, claude: anthropic.Anthropic
) -> None:
    usage_of(claude, messages=[{"role": "user", "content": [text_block(LONG, "5m")]}])

    def asking(count: int) -> list[dict[str, Any]]:
        blocks = [text_block(f"extra {i}") for i in range(count - 1)] + [text_block("end", "5m")]
        return [{"role": "user", "content": [text_block(LONG), *blocks]}]

    assert (usage_of(claude, messages=asking(20)).cache_read_input_tokens or 0) > 0
    assert usage_of(claude, messages=asking(21)).cache_read_input_tokens == 0


def test_anthropic_writes_are_split_by_ttl(
    server: ProviderServer, claude: anthropic.Anthropic
) -> None:
    usage = usage_of(
        claude,
        system=[text_block(LONG, "1h")],
        messages=[{"role": "user", "content": [text_block(OTHER_LONG, "5m")]}],
    )
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_1h_input_tokens == scaled_cl100k(LONG)
    assert usage.cache_creation.ephemeral_5m_input_tokens == scaled_cl100k(OTHER_LONG) + 3
    assert usage.input_tokens == 0
    billed = only_billed(server)
    assert (billed.cache_write_1h_tokens, billed.cache_write_5m_tokens) == (
        scaled_cl100k(LONG),
        scaled_cl100k(OTHER_LONG) + 3,
    )


def test_anthropic_ttls_expire_and_reads_renew(
    server: ProviderServer, claude: anthropic.Anthropic
) -> None:
    clock = Clock()
    server.now = clock
    five = {"system": [text_block(LONG, "5m")], "messages": [{"role": "user", "content": "q"}]}
    hour = {
        "system": [text_block(OTHER_LONG, "1h")],
        "messages": [{"role": "user", "content": "q"}],
    }
    usage_of(claude, **five)
    usage_of(claude, **hour)
    clock.time += 299
    assert (usage_of(claude, **five).cache_read_input_tokens or 0) > 0  # renewed until +599
    clock.time += 299
    assert (usage_of(claude, **five).cache_read_input_tokens or 0) > 0
    clock.time += 301
    expired = usage_of(claude, **five)
    assert expired.cache_read_input_tokens == 0
    assert expired.cache_creation_input_tokens == scaled_cl100k(LONG)
    assert usage_of(claude, **hour).cache_read_input_tokens == scaled_cl100k(OTHER_LONG)


def test_anthropic_read_through_lookback_renews_the_entry(
    server: ProviderServer, claude: anthropic.Anthropic
) -> None:
    clock = Clock()
    server.now = clock
    marked = [{"role": "user", "content": [text_block(LONG, "5m")]}]
    later = [{"role": "user", "content": [text_block(LONG), text_block("more", "5m")]}]
    usage_of(claude, messages=marked)
    clock.time += 299
    assert usage_of(claude, messages=later).cache_read_input_tokens == scaled_cl100k(LONG) + 3
    clock.time += 299  # 598 s after the write, 299 after the read
    assert usage_of(claude, messages=marked).cache_read_input_tokens == scaled_cl100k(LONG) + 3


def test_anthropic_minimum_cacheable_prefix(
    server: ProviderServer, claude: anthropic.Anthropic
) -> None:
    body: dict[str, Any] = {
        "system": [text_block(LONG, "5m")],
        "messages": [{"role": "user", "content": "q"}],
    }
    assert 1024 < scaled_cl100k(LONG) < 4096
    for model in ("claude-opus-4-5", "claude-haiku-4-5"):
        for _ in range(2):
            usage = usage_of(claude, model=model, **body)
            assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
    short = {
        "system": [text_block("Tiny system prompt.", "5m")],
        "messages": [{"role": "user", "content": "q"}],
    }
    for _ in range(2):
        assert usage_of(claude, **short).cache_creation_input_tokens == 0
    assert usage_of(claude, **body).cache_creation_input_tokens == scaled_cl100k(LONG)


def test_anthropic_breakpoint_rules(server: ProviderServer, claude: anthropic.Anthropic) -> None:
    five_marks = [text_block(f"part {i}", "5m") for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="A maximum of 4 blocks with cache_control"):
        usage_of(claude, messages=[{"role": "user", "content": five_marks}])
    with pytest.raises(anthropic.BadRequestError, match="ttl='1h' cannot come after"):
        usage_of(
            claude,
            system=[text_block("a", "5m")],
            messages=[{"role": "user", "content": [text_block("b", "1h")]}],
        )
    usage_of(claude, messages=[{"role": "user", "content": five_marks[:4]}])
    assert len(server.billed) == 1
    assert len(server.requests) == 3


# --- Errors ------------------------------------------------------------------------------


def test_overflow_errors(
    server: ProviderServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    server.context_windows = {"gpt-small": 1000, "claude-small": 1000}
    body = chat_body(LONG, "q", model="gpt-small")
    with pytest.raises(openai.BadRequestError) as chat_error:
        oai.chat.completions.create(**body)
    assert chat_error.value.code == "context_length_exceeded"
    tokens = server.count_input("openai_chat", body)
    assert (
        f"maximum context length is 1000 tokens. However, your messages resulted in {tokens} tokens"
        in chat_error.value.message
    )
    with pytest.raises(openai.BadRequestError) as responses_error:
        oai.responses.create(model="gpt-small", input=LONG)
    assert responses_error.value.code == "context_length_exceeded"

    messages: Any = [{"role": "user", "content": LONG}]
    tokens = server.count_input("anthropic", {"messages": messages})
    with pytest.raises(
        anthropic.BadRequestError, match=f"prompt is too long: {tokens} tokens > 1000 maximum"
    ):
        claude.messages.create(model="claude-small", max_tokens=10, messages=messages)
    # The prompt fits, but not with the requested output (default budget 4096 counts too).
    with pytest.raises(
        anthropic.BadRequestError,
        match=r"input length and `max_tokens` exceed context limit: \d+ \+ 999 > 1000",
    ):
        claude.messages.create(
            model="claude-small", max_tokens=999, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.BadRequestError, match="you requested"):
        oai.chat.completions.create(model="gpt-small", messages=[{"role": "user", "content": "hi"}])
    assert server.billed == []
    assert len(server.requests) == 5


def test_fail_next(server: ProviderServer, oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    hi: Any = [{"role": "user", "content": "hi"}]
    server.fail_next("rate_limit")
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model=GPT, messages=hi)
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after-ms"] == "10"
    assert limited.value.response.headers["retry-after"] == "0"
    oai.chat.completions.create(model=GPT, messages=hi)  # one failure only

    server.fail_next("rate_limit", count=2)
    for _ in range(2):
        with pytest.raises(anthropic.RateLimitError) as anthropic_limited:
            claude.messages.create(model=CLAUDE, max_tokens=10, messages=hi)
    assert anthropic_limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]

    server.fail_next("server_error")
    with pytest.raises(openai.InternalServerError) as broken:
        oai.responses.create(model=GPT, input="hi")
    assert broken.value.status_code == 500
    server.fail_next("overloaded")
    with pytest.raises(openai.InternalServerError) as busy:
        oai.chat.completions.create(model=GPT, messages=hi)
    assert busy.value.status_code == 503
    server.fail_next("overloaded")
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=hi)
    assert overloaded.value.status_code == 529
    server.fail_next("server_error")
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=hi)

    server.fail_next("overflow")
    with pytest.raises(openai.BadRequestError) as overflow:
        oai.chat.completions.create(model=GPT, messages=hi)
    assert overflow.value.code == "context_length_exceeded"
    server.fail_next("overflow")
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=hi)

    assert len(server.requests) == 10
    assert len(server.billed) == 1
    with pytest.raises(ValueError, match="unknown failure kind"):
        server.fail_next("teapot")  # type: ignore[arg-type]


def test_count_endpoints_match_and_skip_failures(
    server: ProviderServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    server.fail_next("rate_limit")
    messages: Any = [{"role": "user", "content": LONG}]
    counted = claude.messages.count_tokens(model=CLAUDE, system="Be brief.", messages=messages)
    assert counted.input_tokens == server.count_input(
        "anthropic", {"system": "Be brief.", "messages": messages}
    )
    response_count = oai.responses.input_tokens.count(model=GPT, input=LONG)
    assert response_count.input_tokens == server.count_input("openai_responses", {"input": LONG})
    assert server.billed == []
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=messages)


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_1", "content": "x"},
            ],
            "messages with role 'tool' must be a response to a preceeding message",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_9", "content": "x"},
            ],
            "'tool_call_id' of 'call_9' not found",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [CALL, {**CALL, "id": "call_2"}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "x"},
                {"role": "user", "content": "and?"},
            ],
            "did not have response messages: call_2",
        ),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [CALL]}],
            "must be followed by tool messages responding to each 'tool_call_id'",
        ),
    ],
)
def test_chat_rejects_orphans(
    server: ProviderServer, oai: openai.OpenAI, messages: list[Any], match: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=match):
        oai.chat.completions.create(model=GPT, messages=messages)
    assert server.billed == []


@pytest.mark.parametrize(
    ("items", "match"),
    [
        (
            [
                {"role": "user", "content": "hi"},
                {"type": "function_call_output", "call_id": "call_1", "output": "x"},
            ],
            "No tool call found for function call output with call_id call_1",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            ],
            "No tool output found for function call call_1",
        ),
    ],
)
def test_responses_rejects_orphans(
    server: ProviderServer, oai: openai.OpenAI, items: list[Any], match: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=match):
        oai.responses.create(model=GPT, input=items)
    assert server.billed == []


USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        (
            [{"role": "user", "content": [RESULT]}],
            "unexpected `tool_use_id` found in `tool_result` blocks: toolu_1",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [USE]},
                {"role": "user", "content": "no result"},
            ],
            "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1",
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [USE]},
                {"role": "user", "content": [RESULT]},
                {"role": "user", "content": [{**RESULT, "tool_use_id": "toolu_2"}]},
            ],
            "messages.3.content.0: unexpected `tool_use_id`",
        ),
        ([{"role": "assistant", "content": "hello"}], 'first message must use the "user" role'),
        (
            [{"role": "system", "content": "rules"}, {"role": "user", "content": "hi"}],
            'Unexpected role "system"',
        ),
    ],
)
def test_anthropic_rejects_orphans_and_bad_roles(
    server: ProviderServer, claude: anthropic.Anthropic, messages: list[Any], match: str
) -> None:
    with pytest.raises(anthropic.BadRequestError, match=match):
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=messages)
    assert server.billed == []


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A raw POST, for bodies the SDKs refuse to send."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_raw_http_edge_cases(server: ProviderServer) -> None:
    status, body = post(
        server.anthropic_base_url + "/v1/messages",
        {"model": CLAUDE, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert status == 400
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    status, body = post(server.openai_base_url + "/nowhere", {"model": GPT})
    assert status == 404
    status, body = post(server.openai_base_url + "/chat/completions", {"messages": []})
    assert (status, body["error"]["message"]) == (400, "you must provide a model parameter")
    assert server.requests == [
        {"model": CLAUDE, "messages": [{"role": "user", "content": "hi"}]},
        {"model": GPT},
        {"messages": []},
    ]


def test_script_errors_become_500(server: ProviderServer, oai: openai.OpenAI) -> None:
    def broken(api: str, body: dict[str, Any]) -> Reply:
        raise RuntimeError("script bug")

    server.script = broken
    with pytest.raises(openai.InternalServerError, match="script bug"):
        oai.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}])
    assert server.billed == []


def test_concurrent_calls_are_all_recorded(server: ProviderServer, oai: openai.OpenAI) -> None:
    def call(i: int) -> str | None:
        reply = oai.chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": f"#{i}"}]
        )
        return reply.choices[0].message.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, range(24)))
    assert answers == ["ok"] * 24
    assert len(server.billed) == len(server.requests) == 24
    assert sorted(r["messages"][0]["content"] for r in server.requests) == sorted(
        f"#{i}" for i in range(24)
    )


def test_close_releases_the_port() -> None:
    server = ProviderServer().start()
    url = server.openai_base_url + "/chat/completions"
    assert post(url, {"model": GPT, "messages": [{"role": "user", "content": "hi"}]})[0] == 200
    server.close()
    server.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, data=b"{}", timeout=2)
