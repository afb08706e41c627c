"""``ctxbudget.wrap`` around the real OpenAI SDK clients (Chat Completions and Responses).

Everything goes over HTTP to the fake provider (``provider_server``): streaming, retries,
fallback models, the provider's "context too long" error, misuse, and sync/async parity.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

import ctxbudget
from _scripted import billed_usage, listing, replies
from ctxbudget import ContextManager, UsageError
from ctxbudget.session.items import item_text
from provider_server import ProviderServer, Reply

GPT = "gpt-4o"
MINI = "gpt-4o-mini"
SYSTEM = "You are a coding agent in /srv/app. Read before you edit; run the tests after."
FUNCTION: dict[str, Any] = {
    "name": "read_file",
    "description": "Read a file of the repository.",
    "parameters": {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    },
}
CHAT_TOOLS = [{"type": "function", "function": FUNCTION}]
RESPONSES_TOOLS = [{"type": "function", **FUNCTION}]


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_script(server: ProviderServer) -> Iterator[None]:
    server.script = None
    yield
    server.script = None


def sdk(server: ProviderServer) -> openai.OpenAI:
    return openai.OpenAI(api_key="t", base_url=server.openai_base_url, max_retries=0)


def async_sdk(server: ProviderServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="t", base_url=server.openai_base_url, max_retries=0)


def wrapped(server: ProviderServer, **settings: Any) -> Any:
    return ctxbudget.wrap(sdk(server), ContextManager(GPT), **settings)


def long_chat(results: int = 6, lines: int = 60) -> list[dict[str, Any]]:
    """A conversation with several big tool results, as an agent's list holds it."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Find the rounding bug in the billing service."},
    ]
    for n in range(results):
        call_id = f"call_old{n}"
        args = json.dumps({"path": f"src/app/billing_{n}.py"})
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "read_file", "arguments": args},
                    }
                ],
            }
        )
        messages.append(
            {"role": "tool", "tool_call_id": call_id, "content": listing(f"billing{n}", lines)}
        )
    messages.append({"role": "user", "content": "Now fix it."})
    return messages


def long_responses(results: int = 6, lines: int = 60) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {"role": "user", "content": "Find the rounding bug in the billing service."}
    ]
    for n in range(results):
        call_id = f"call_old{n}"
        args = json.dumps({"path": f"src/app/billing_{n}.py"})
        items.append(
            {"type": "function_call", "call_id": call_id, "name": "read_file", "arguments": args}
        )
        items.append(
            {
                "type": "function_call_output",
                "call_id": call_id,
                "output": listing(f"billing{n}", lines),
            }
        )
    items.append({"role": "user", "content": "Now fix it."})
    return items


def call_chat(client: Any, messages: list[Any], **options: Any) -> Any:
    return client.chat.completions.create(
        model=options.pop("model", GPT), messages=messages, tools=CHAT_TOOLS, **options
    )


def call_responses(client: Any, items: list[Any], **options: Any) -> Any:
    return client.responses.create(
        model=options.pop("model", GPT),
        instructions=SYSTEM,
        input=items,
        tools=RESPONSES_TOOLS,
        **options,
    )


# --- streaming ------------------------------------------------------------------------------


def test_chat_stream_text_is_recorded_and_usage_chunk_hidden(server: ProviderServer) -> None:
    server.script = replies(Reply(text="The bug is in round_half_up; fixing it now."))
    client = wrapped(server)
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Where is the bug?"},
    ]
    start = len(server.requests)
    chunks = list(call_chat(client, messages, stream=True))
    assert chunks
    assert all(chunk.choices for chunk in chunks)  # no usage-only chunk for this caller
    assert all(chunk.usage is None for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "The bug is in round_half_up; fixing it now."
    # the wrapper asked the provider for usage all the same, and recorded it
    assert server.requests[start]["stream_options"] == {"include_usage": True}
    manager: ContextManager = client.manager
    report = manager.last_report
    assert report is not None
    assert report.billed == billed_usage(server.billed[-1])
    last = manager.view.items[-1]
    assert last.role == "assistant"
    assert item_text(last) == text


def test_chat_stream_keeps_usage_chunk_when_asked(server: ProviderServer) -> None:
    server.script = replies(Reply(text="Done."))
    client = wrapped(server)
    messages: list[Any] = [{"role": "user", "content": "Say done."}]
    chunks = list(call_chat(client, messages, stream=True, stream_options={"include_usage": True}))
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1
    assert chunks[-1] is usage_chunks[0]
    usage = usage_chunks[0].usage
    assert usage is not None
    assert usage.prompt_tokens == server.billed[-1].input_tokens
    assert client.manager.last_report.billed == billed_usage(server.billed[-1])


def test_chat_stream_tool_calls_are_recorded_and_echo_is_not_repeated(
    server: ProviderServer,
) -> None:
    server.script = replies(
        Reply(
            tool_calls=[
                ("read_file", {"path": "src/app/billing.py"}),
                ("read_file", {"path": "src/app/rounding.py"}),
            ]
        ),
        Reply(text="Fixed."),
    )
    client = wrapped(server)
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Read both billing files."},
    ]
    calls: dict[int, dict[str, Any]] = {}
    with call_chat(client, messages, stream=True) as stream:
        for chunk in stream:
            for call in chunk.choices[0].delta.tool_calls or ():
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.id or slot["id"]
                slot["name"] += call.function.name or ""
                slot["arguments"] += call.function.arguments or ""
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"path": "src/app/billing.py"},
        {"path": "src/app/rounding.py"},
    ]
    manager: ContextManager = client.manager
    recorded = manager.view.items[-1].tool_calls
    assert [(c.id, c.name, c.arguments) for c in recorded] == [
        (c["id"], c["name"], c["arguments"]) for c in calls.values()
    ]
    assert manager.last_report is not None
    assert manager.last_report.billed == billed_usage(server.billed[-1])

    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls.values()
        ],
    }
    messages.append(assistant)
    for c in calls.values():
        messages.append({"role": "tool", "tool_call_id": c["id"], "content": f"contents of {c}"})
    start = len(server.requests)
    call_chat(client, messages)
    # the reply the wrapper recorded and the caller echoed is sent once: as the caller has it
    assert server.requests[start:] == [server.requests[start]]
    assert server.requests[start]["messages"] == messages


def test_responses_stream_is_recorded(server: ProviderServer) -> None:
    server.script = replies(
        Reply(text="Reading it.", tool_calls=[("read_file", {"path": "src/app/billing.py"})])
    )
    client = wrapped(server)
    events = list(
        call_responses(client, [{"role": "user", "content": "Read billing."}], stream=True)
    )
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Reading it."
    output = events[-1].response.output
    call = next(o for o in output if o.type == "function_call")
    manager: ContextManager = client.manager
    recorded = [c for item in manager.view.items for c in item.tool_calls]
    assert [(c.id, c.name, json.loads(c.arguments)) for c in recorded] == [
        (call.call_id, "read_file", {"path": "src/app/billing.py"})
    ]
    texts = [item_text(i) for i in manager.view.items if i.role == "assistant"]
    assert texts
    assert texts[0].startswith("Reading it.")
    assert manager.last_report is not None
    billed = server.billed[-1]
    assert billed.stream
    assert manager.last_report.billed == billed_usage(billed)


# --- retries, fallback -----------------------------------------------------------------------


def test_rate_limit_is_retried_then_succeeds(server: ProviderServer) -> None:
    server.script = replies(Reply(text="ok"))
    client = wrapped(server, retries=2, backoff=0.001)
    start = len(server.requests)
    server.fail_next("rate_limit", 2)
    response = call_chat(client, [{"role": "user", "content": "hello"}])
    assert response.choices[0].message.content == "ok"
    bodies = server.requests[start:]
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]
    assert client.manager.last_report.billed == billed_usage(server.billed[-1])
    assert client.manager.usage == billed_usage(server.billed[-1])


def test_exhausted_retries_raise_the_sdk_error_and_the_call_can_be_repeated(
    server: ProviderServer,
) -> None:
    server.script = replies(Reply(text="ok"))
    client = wrapped(server, retries=2, backoff=0.001)
    messages: list[Any] = [{"role": "user", "content": "hello"}]
    start = len(server.requests)
    server.fail_next("rate_limit", 3)
    with pytest.raises(openai.RateLimitError):
        call_chat(client, messages)
    assert len(server.requests) - start == 3
    manager: ContextManager = client.manager
    assert manager.usage == ctxbudget.Usage(input_tokens=0)
    # the caller retries later with the same list: nothing is duplicated
    call_chat(client, messages)
    assert server.requests[-1] == server.requests[start]
    assert manager.usage == billed_usage(server.billed[-1])


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_fallback_model_after_retries(server: ProviderServer, api: str) -> None:
    server.script = replies(Reply(text="from the fallback"))
    client = wrapped(server, retries=1, backoff=0.001, fallback_models=[MINI])
    start = len(server.requests)
    server.fail_next("rate_limit", 2)
    if api == "chat":
        response = call_chat(client, [{"role": "user", "content": "hello"}])
        assert response.choices[0].message.content == "from the fallback"
    else:
        response = call_responses(client, [{"role": "user", "content": "hello"}])
        assert response.output_text == "from the fallback"
    assert response.model == MINI
    assert [b["model"] for b in server.requests[start:]] == [GPT, GPT, MINI]
    assert server.billed[-1].model == MINI


def test_server_errors_exhaust_every_model(server: ProviderServer) -> None:
    client = wrapped(server, retries=1, backoff=0.001, fallback_models=[MINI])
    start = len(server.requests)
    server.fail_next("server_error", 4)
    with pytest.raises(openai.InternalServerError):
        call_chat(client, [{"role": "user", "content": "hello"}])
    assert [b["model"] for b in server.requests[start:]] == [GPT, GPT, MINI, MINI]


# --- the provider says the request is too long --------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_overflow_is_retried_once_with_a_smaller_request(server: ProviderServer, api: str) -> None:
    server.script = replies(Reply(text="fixed"))
    client = wrapped(server)
    start = len(server.requests)
    server.fail_next("overflow")
    if api == "chat":
        call_chat(client, long_chat())
        wire = "openai_chat"
    else:
        call_responses(client, long_responses())
        wire = "openai_responses"
    first, second = server.requests[start:]
    too_long = server.count_input(wire, first)
    assert server.billed[-1].input_tokens == server.count_input(wire, second)
    assert server.billed[-1].input_tokens <= 0.9 * too_long
    report = client.manager.last_report
    assert report is not None
    assert report.records  # compacted harder
    assert report.limit < too_long
    assert report.billed == billed_usage(server.billed[-1])


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_second_overflow_reaches_the_caller(server: ProviderServer, api: str) -> None:
    client = wrapped(server)
    start = len(server.requests)
    server.fail_next("overflow", 2)
    call: Callable[[], Any] = (
        (lambda: call_chat(client, long_chat()))
        if api == "chat"
        else (lambda: call_responses(client, long_responses()))
    )
    with pytest.raises(openai.BadRequestError) as caught:
        call()
    assert caught.value.code == "context_length_exceeded"
    assert len(server.requests) - start == 2
    assert client.manager.usage == ctxbudget.Usage(input_tokens=0)


# --- misuse ----------------------------------------------------------------------------------


def test_an_edited_or_shortened_list_is_followed_exactly(server: ProviderServer) -> None:
    """The caller fixed its last message (or dropped it) after a reply: what the manager held
    for the old messages is retracted, so the request carries exactly the caller's list."""
    server.script = lambda api, body: Reply(text="ok")
    client = wrapped(server)
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "first question"},
    ]
    call_chat(client, messages)
    start = len(server.requests)
    edited = [messages[0], {"role": "user", "content": "a different first question"}]
    call_chat(client, edited)
    assert server.requests[start]["messages"] == edited
    call_chat(client, [*edited, {"role": "assistant", "content": "ok"}, *edited[1:]])
    assert server.requests[start + 1]["messages"] == [
        *edited,
        {"role": "assistant", "content": "ok"},
        *edited[1:],
    ]
    call_chat(client, [*messages[:1], {"role": "user", "content": "start over"}])
    assert server.requests[start + 2]["messages"] == [
        messages[0],
        {"role": "user", "content": "start over"},
    ]


def test_regenerating_a_reply_does_not_send_the_discarded_one(server: ProviderServer) -> None:
    answers = iter(["first draft", "second draft"])
    server.script = lambda api, body: Reply(text=next(answers))
    client = wrapped(server)
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Summarize the billing module."},
    ]
    call_chat(client, messages)
    start = len(server.requests)
    call_chat(client, messages)  # the caller did not like the draft: same list again
    assert server.requests[start]["messages"] == messages


def test_previous_response_id_raises_usage_error(server: ProviderServer) -> None:
    client = wrapped(server)
    start = len(server.requests)
    with pytest.raises(UsageError, match="previous_response_id"):
        call_responses(client, [{"role": "user", "content": "hi"}], previous_response_id="resp_1")
    with pytest.raises(UsageError, match="conversation"):
        call_responses(client, [{"role": "user", "content": "hi"}], conversation="conv_1")
    assert len(server.requests) == start


def test_wrapped_client_passes_other_attributes_through(server: ProviderServer) -> None:
    client = wrapped(server)
    assert client.base_url == sdk(server).base_url
    assert isinstance(client.manager, ContextManager)
    with pytest.raises(UsageError, match="messages"):
        client.chat.completions.create(model=GPT)


# --- sync / async parity ---------------------------------------------------------------------

_IDS = re.compile(r"\b(?:call|fc|msg|rs|resp|chatcmpl-)_?[0-9a-f]{16,}\b")


def normalized(bodies: list[dict[str, Any]]) -> Any:
    """Bodies with the server's random ids replaced by their order of first appearance."""
    text = json.dumps(bodies, sort_keys=True)
    names: dict[str, str] = {}
    return json.loads(_IDS.sub(lambda m: names.setdefault(m.group(0), f"id{len(names)}"), text))


def parity_script() -> Callable[[str, dict[str, Any]], Reply]:
    return replies(
        Reply(tool_calls=[("read_file", {"path": "src/app/billing.py"})]),
        Reply(
            tool_calls=[
                ("read_file", {"path": "src/app/a.py"}),
                ("read_file", {"path": "src/app/b.py"}),
            ]
        ),
        Reply(text="Both files use round(); switching to Decimal.quantize."),
        Reply(tool_calls=[("read_file", {"path": "tests/test_billing.py"})]),
        Reply(text="Done: tests pass."),
    )


async def chat_conversation(client: Any) -> None:
    """Five turns (the fourth streamed) through a wrapped OpenAI or AsyncOpenAI client."""
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": listing("task", 40)},
    ]
    for turn in range(5):
        stream = turn == 3
        result = call_chat(client, messages, stream=stream)
        if asyncio.iscoroutine(result):
            result = await result
        if stream:
            calls: dict[int, dict[str, Any]] = {}
            chunks = [c async for c in result] if hasattr(result, "__aiter__") else list(result)
            for chunk in chunks:
                for call in chunk.choices[0].delta.tool_calls or ():
                    slot = calls.setdefault(
                        call.index,
                        {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                    )
                    slot["id"] = call.id or slot["id"]
                    slot["function"]["name"] += call.function.name or ""
                    slot["function"]["arguments"] += call.function.arguments or ""
            message: dict[str, Any] = {"role": "assistant", "content": None}
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        else:
            message = result.choices[0].message.model_dump(exclude_none=True)
        messages.append(message)
        for call in message.get("tool_calls") or ():
            content = listing(call["function"]["arguments"][10:20], 30)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
        if not message.get("tool_calls"):
            messages.append({"role": "user", "content": "continue"})


async def responses_conversation(client: Any) -> None:
    """Five turns (the fourth streamed) through a wrapped OpenAI or AsyncOpenAI client."""
    items: list[Any] = [{"role": "user", "content": listing("task", 40)}]
    for turn in range(5):
        stream = turn == 3
        result = call_responses(client, items, stream=stream)
        if asyncio.iscoroutine(result):
            result = await result
        if stream:
            events = [e async for e in result] if hasattr(result, "__aiter__") else list(result)
            output = events[-1].response.output
        else:
            output = result.output
        items += [o.model_dump(exclude_none=True) for o in output]
        calls = [o for o in output if o.type == "function_call"]
        for call in calls:
            content = listing(call.arguments[10:20], 30)
            items.append(
                {"type": "function_call_output", "call_id": call.call_id, "output": content}
            )
        if not calls:
            items.append({"role": "user", "content": "continue"})


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_sync_and_async_clients_send_identical_bodies(server: ProviderServer, api: str) -> None:
    conversation = chat_conversation if api == "chat" else responses_conversation
    bodies = []
    for client in (sdk(server), async_sdk(server)):
        server.script = parity_script()
        start, billed = len(server.requests), len(server.billed)
        wrapped_client = ctxbudget.wrap(client, ContextManager(GPT))
        asyncio.run(conversation(wrapped_client))
        bodies.append(server.requests[start:])
        assert len(server.billed) - billed == 5
    sync_bodies, async_bodies = bodies
    assert len(sync_bodies) == 5
    assert normalized(sync_bodies) == normalized(async_bodies)
    assert sync_bodies[3]["stream"] is True


def test_async_responses_stream_is_recorded(server: ProviderServer) -> None:
    server.script = replies(Reply(text="async and streamed"))
    manager = ContextManager(GPT)
    client = ctxbudget.wrap(async_sdk(server), manager)

    async def go() -> list[Any]:
        stream = await call_responses(client, [{"role": "user", "content": "hi"}], stream=True)
        async with stream as events:
            return [e async for e in events]

    events = asyncio.run(go())
    assert events[-1].type == "response.completed"
    assert manager.last_report is not None
    assert manager.last_report.billed == billed_usage(server.billed[-1])
    assert item_text(manager.view.items[-1]) == "async and streamed"
