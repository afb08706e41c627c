"""``ctxbudget.wrap`` around the real Anthropic SDK clients (Messages API).

Everything goes over HTTP to the fake provider (``provider_server``): streaming, retries,
fallback models, "prompt is too long", caller-placed cache markers, misuse, and
sync/async parity.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest

import ctxbudget
from _scripted import billed_usage, listing, markers, replies, without_markers
from ctxbudget import ContextManager, UsageError
from ctxbudget.session.items import item_text
from provider_server import ProviderServer, Reply

CLAUDE = "claude-opus-4-1"
HAIKU = "claude-haiku-4-5"
SYSTEM = "You are a coding agent in /srv/app. Read before you edit; run the tests after."
TOOLS: list[dict[str, Any]] = [
    {
        "name": "read_file",
        "description": "Read a file of the repository.",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    }
]


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_script(server: ProviderServer) -> Iterator[None]:
    server.script = None
    yield
    server.script = None


def sdk(server: ProviderServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="t", base_url=server.anthropic_base_url, max_retries=0)


def async_sdk(server: ProviderServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="t", base_url=server.anthropic_base_url, max_retries=0)


def wrapped(server: ProviderServer, **settings: Any) -> Any:
    return ctxbudget.wrap(sdk(server), ContextManager(CLAUDE), **settings)


def call(client: Any, messages: list[Any], **options: Any) -> Any:
    return client.messages.create(
        model=options.pop("model", CLAUDE),
        max_tokens=options.pop("max_tokens", 1024),
        system=options.pop("system", SYSTEM),
        messages=messages,
        tools=TOOLS,
        **options,
    )


def as_blocks(body: dict[str, Any]) -> dict[str, Any]:
    """A body with string message contents written as one text block (the same prompt)."""
    messages = [
        {**m, "content": [{"type": "text", "text": m["content"]}]}
        if isinstance(m["content"], str)
        else m
        for m in body["messages"]
    ]
    return {**body, "messages": messages}


def long_conversation(results: int = 6, lines: int = 60) -> list[dict[str, Any]]:
    """A conversation with several big tool results, as an agent's list holds it."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Find the rounding bug in the billing service."}
    ]
    for n in range(results):
        use_id = f"toolu_old{n}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": use_id,
                        "name": "read_file",
                        "input": {"path": f"src/app/billing_{n}.py"},
                    }
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": use_id,
                        "content": listing(f"billing{n}", lines),
                    }
                ],
            }
        )
    messages[-1]["content"].append({"type": "text", "text": "Now fix it."})
    return messages


# --- streaming ------------------------------------------------------------------------------


def test_stream_text_and_tool_use_are_recorded(server: ProviderServer) -> None:
    answer = Reply(
        text="Reading both files.",
        tool_calls=[
            ("read_file", {"path": "src/app/billing.py"}),
            ("read_file", {"path": "src/app/rounding.py"}),
        ],
    )
    server.script = replies(answer, answer, Reply(text="Fixed."))
    messages: list[Any] = [{"role": "user", "content": "Read the billing files."}]
    plain = [e.type for e in call(sdk(server), messages, stream=True)]
    client = wrapped(server)
    with call(client, messages, stream=True) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds == plain  # every event passes through, in order
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == "Reading both files."
    uses = [
        e.content_block
        for e in events
        if e.type == "content_block_start" and e.content_block.type == "tool_use"
    ]
    assert len(uses) == 2

    manager: ContextManager = client.manager
    last = manager.view.items[-1]
    assert last.role == "assistant"
    assert item_text(last).startswith("Reading both files.")
    assert [(c.id, c.name, json.loads(c.arguments)) for c in last.tool_calls] == [
        (uses[0].id, "read_file", {"path": "src/app/billing.py"}),
        (uses[1].id, "read_file", {"path": "src/app/rounding.py"}),
    ]
    assert manager.last_report is not None
    assert manager.last_report.billed == billed_usage(server.billed[-1])

    # the caller echoes the reply (rebuilt from the events) and answers the calls
    messages.append(
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": text},
                *[
                    {"type": "tool_use", "id": u.id, "name": u.name, "input": c}
                    for u, c in zip(
                        uses,
                        ({"path": "src/app/billing.py"}, {"path": "src/app/rounding.py"}),
                        strict=True,
                    )
                ],
            ],
        }
    )
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": u.id, "content": f"contents of {u.id}"}
                for u in uses
            ],
        }
    )
    start = len(server.requests)
    call(client, messages)
    assert len(server.requests) == start + 1
    sent = without_markers(server.requests[start])
    assert sent["messages"] == messages  # the echoed reply is sent once
    assert sent["system"] in (SYSTEM, [{"type": "text", "text": SYSTEM}])


# --- retries, fallback -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rate_limit", "overloaded", "server_error"])
def test_transient_errors_are_retried_then_succeed(server: ProviderServer, kind: Any) -> None:
    server.script = replies(Reply(text="ok"))
    client = wrapped(server, retries=2, backoff=0.001)
    start = len(server.requests)
    server.fail_next(kind, 2)
    response = call(client, [{"role": "user", "content": "hello"}])
    assert response.content[0].text == "ok"
    bodies = server.requests[start:]
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]
    manager: ContextManager = client.manager
    assert manager.last_report is not None
    assert manager.last_report.billed == billed_usage(server.billed[-1])
    assert manager.usage == billed_usage(server.billed[-1])


def test_exhausted_retries_raise_the_sdk_error(server: ProviderServer) -> None:
    client = wrapped(server, retries=2, backoff=0.001)
    start = len(server.requests)
    server.fail_next("rate_limit", 3)
    with pytest.raises(anthropic.RateLimitError):
        call(client, [{"role": "user", "content": "hello"}])
    assert len(server.requests) - start == 3
    assert client.manager.usage == ctxbudget.Usage(input_tokens=0)


def test_no_retries_means_one_attempt(server: ProviderServer) -> None:
    client = wrapped(server, retries=0, backoff=0.001)
    start = len(server.requests)
    server.fail_next("overloaded", 1)
    with pytest.raises(anthropic.APIStatusError) as caught:
        call(client, [{"role": "user", "content": "hello"}])
    assert caught.value.status_code == 529
    assert len(server.requests) - start == 1


def test_fallback_model_after_retries(server: ProviderServer) -> None:
    server.script = replies(Reply(text="from haiku"))
    client = wrapped(server, retries=1, backoff=0.001, fallback_models=[HAIKU])
    start = len(server.requests)
    server.fail_next("overloaded", 2)
    response = call(client, [{"role": "user", "content": "hello"}])
    assert response.model == HAIKU
    assert [b["model"] for b in server.requests[start:]] == [CLAUDE, CLAUDE, HAIKU]
    assert server.billed[-1].model == HAIKU
    assert client.manager.last_report.billed == billed_usage(server.billed[-1])


# --- the provider says the prompt is too long ---------------------------------------------


@pytest.mark.parametrize(
    "calibrated",
    [
        pytest.param(True, id="calibrated"),
        pytest.param(False, id="uncalibrated"),
    ],
)
def test_overflow_is_retried_once_with_a_smaller_request(
    server: ProviderServer, calibrated: bool
) -> None:
    server.script = replies(
        Reply(tool_calls=[("read_file", {"path": "src/app/billing_5.py"})]), Reply(text="fixed")
    )
    client = wrapped(server)
    messages = long_conversation(results=5 if calibrated else 6)
    if calibrated:  # a call before: the manager's estimates now match the provider's count
        reply = call(client, messages)
        messages.append(
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in reply.content],
            }
        )
        result = {"type": "tool_result", "tool_use_id": reply.content[0].id}
        messages.append({"role": "user", "content": [{**result, "content": listing("b5", 60)}]})
    else:
        server.script = replies(Reply(text="fixed"))
    start = len(server.requests)
    server.fail_next("overflow")
    call(client, messages)
    first, second = server.requests[start:]
    too_long = server.count_input("anthropic", first)
    assert server.billed[-1].input_tokens == server.count_input("anthropic", second)
    assert server.billed[-1].input_tokens <= 0.9 * too_long
    report = client.manager.last_report
    assert report is not None
    assert report.records
    assert report.billed == billed_usage(server.billed[-1])


def test_second_overflow_reaches_the_caller(server: ProviderServer) -> None:
    client = wrapped(server)
    start = len(server.requests)
    server.fail_next("overflow", 2)
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        call(client, long_conversation())
    assert len(server.requests) - start == 2


def test_real_overflow_of_a_small_window_is_avoided(server: ProviderServer) -> None:
    """The provider's window is smaller than the manager believed: one overflow, then fit."""
    server.script = replies(Reply(text="fixed"))
    # (answered outputs are digested at once, so the conversation is small: a 2K window)
    server.context_windows["claude-opus-4-1-small"] = 2_000
    try:
        client = wrapped(server)
        start = len(server.requests)
        call(client, long_conversation(), model="claude-opus-4-1-small", max_tokens=500)
        first = server.requests[start]
        assert len(server.requests) == start + 2
        assert server.count_input("anthropic", first) + 500 > 2_000
        assert server.billed[-1].input_tokens + 500 <= 2_000
    finally:
        del server.context_windows["claude-opus-4-1-small"]


# --- caller-placed cache markers --------------------------------------------------------------


def test_caller_cache_markers_are_replaced_by_at_most_four(server: ProviderServer) -> None:
    server.script = lambda api, body: Reply(text="ok")
    client = wrapped(server)
    messages = long_conversation(results=5)
    for message in messages:
        if isinstance(message["content"], str):
            message["content"] = [{"type": "text", "text": message["content"]}]
        for block in message["content"]:
            block["cache_control"] = {"type": "ephemeral"}
    assert markers(messages) > 4  # the provider would refuse this as sent
    start = len(server.requests)
    call(client, messages)
    assert len(server.requests) == start + 1
    assert 0 < markers(server.requests[start]) <= 4


# --- misuse ----------------------------------------------------------------------------------


def test_regenerating_sends_no_prefill_and_an_edit_is_followed(server: ProviderServer) -> None:
    """On Anthropic a trailing assistant message is a prefill: regenerating a discarded
    reply must not send it (the model would continue it), and an edited last message is
    sent as edited."""
    drafts = iter(["first draft", "second draft", "third draft"])
    server.script = lambda api, body: Reply(text=next(drafts))
    client = wrapped(server)
    messages: list[Any] = [{"role": "user", "content": "first question"}]
    call(client, messages)
    start = len(server.requests)
    again = call(client, messages)  # the user discarded the first draft
    assert without_markers(server.requests[start])["messages"] == messages
    assert again.content[0].text == "second draft"
    edited = [{"role": "user", "content": "another first question"}]
    call(client, edited)
    assert without_markers(server.requests[start + 1])["messages"] == edited


def test_changed_system_prompt_raises_usage_error(server: ProviderServer) -> None:
    server.script = lambda api, body: Reply(text="ok")
    client = wrapped(server)
    messages: list[Any] = [{"role": "user", "content": "first question"}]
    call(client, messages)
    messages += [
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "next"},
    ]
    start = len(server.requests)
    with pytest.raises(UsageError, match="system prompt changed"):
        call(client, messages, system="You are a different agent now.")
    assert len(server.requests) == start
    # the same prompt as blocks is not a change
    call(client, messages, system=[{"type": "text", "text": SYSTEM}])
    assert len(server.requests) == start + 1


def test_missing_messages_raise_usage_error(server: ProviderServer) -> None:
    client = wrapped(server)
    with pytest.raises(UsageError, match="messages"):
        client.messages.create(model=CLAUDE, max_tokens=10)


# --- sync / async parity ---------------------------------------------------------------------

_IDS = re.compile(r"\b(?:toolu_01|msg_01)[0-9a-f]{16,}\b")


def normalized(bodies: list[dict[str, Any]]) -> Any:
    """Bodies with the server's random ids replaced by their order of first appearance."""
    text = json.dumps(bodies, sort_keys=True)
    names: dict[str, str] = {}
    return json.loads(_IDS.sub(lambda m: names.setdefault(m.group(0), f"id{len(names)}"), text))


def parity_script() -> Callable[[str, dict[str, Any]], Reply]:
    return replies(
        Reply(tool_calls=[("read_file", {"path": "src/app/billing.py"})]),
        Reply(
            text="Two more.",
            tool_calls=[
                ("read_file", {"path": "src/app/a.py"}),
                ("read_file", {"path": "src/app/b.py"}),
            ],
        ),
        Reply(text="Both files use round(); switching to Decimal.quantize."),
        Reply(tool_calls=[("read_file", {"path": "tests/test_billing.py"})]),
        Reply(text="Done: tests pass."),
    )


async def conversation(client: Any) -> None:
    """Five turns (the fourth streamed) through a wrapped Anthropic or AsyncAnthropic."""
    messages: list[Any] = [{"role": "user", "content": listing("task", 80)}]
    for turn in range(5):
        stream = turn == 3
        result = call(client, messages, stream=stream)
        if asyncio.iscoroutine(result):
            result = await result
        if stream:
            events = [e async for e in result] if hasattr(result, "__aiter__") else list(result)
            content = [
                {**e.content_block.model_dump(exclude_none=True), "input": {}}
                for e in events
                if e.type == "content_block_start"
            ]
            partial = [
                "".join(
                    e.delta.partial_json
                    for e in events
                    if e.type == "content_block_delta"
                    and e.index == index
                    and e.delta.type == "input_json_delta"
                )
                for index in range(len(content))
            ]
            for block, raw in zip(content, partial, strict=True):
                if block["type"] == "tool_use":
                    block["input"] = json.loads(raw)
        else:
            content = [b.model_dump(exclude_none=True) for b in result.content]
        messages.append({"role": "assistant", "content": content})
        uses = [b for b in content if b["type"] == "tool_use"]
        if uses:
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": b["id"],
                            "content": listing(b["input"]["path"], 30),
                        }
                        for b in uses
                    ],
                }
            )
        else:
            messages.append({"role": "user", "content": "continue"})


def test_sync_and_async_clients_send_identical_bodies(server: ProviderServer) -> None:
    bodies = []
    for client in (sdk(server), async_sdk(server)):
        server.script = parity_script()
        start, billed = len(server.requests), len(server.billed)
        asyncio.run(conversation(ctxbudget.wrap(client, ContextManager(CLAUDE))))
        bodies.append(server.requests[start:])
        assert len(server.billed) - billed == 5
    sync_bodies, async_bodies = bodies
    assert len(sync_bodies) == 5
    assert sync_bodies[3]["stream"] is True
    assert normalized(sync_bodies) == normalized(async_bodies)


def test_sync_conversation_is_sent_as_the_caller_holds_it(server: ProviderServer) -> None:
    """The parity conversation's sync half on its own: no duplication, and nothing changed
    but the digest of the output the agent has just answered."""
    server.script = parity_script()
    start = len(server.requests)
    asyncio.run(conversation(wrapped(server)))
    bodies = [as_blocks(without_markers(b)) for b in server.requests[start:]]
    assert len(bodies) == 5
    for earlier, later in itertools.pairwise(bodies):
        # each request extends the previous one by the reply and the caller's answer; the
        # previous request's last message (a tool output now answered) may be its digest
        size = len(earlier["messages"])
        assert later["messages"][: size - 1] == earlier["messages"][:-1]
        last, again = earlier["messages"][-1], later["messages"][size - 1]
        if again != last:
            assert again["content"][0]["content"].startswith("[digest of ")
        assert len(later["messages"]) == size + 2
