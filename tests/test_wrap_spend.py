"""``wrap(client, manager, spend=guard)``: the real OpenAI SDK against the local provider
server, spending against a real SQLite ledger: each call reserved before it is sent,
settled with what the server billed, released when it fails, refused or switched at a limit.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

import ctxbudget
from _scripted import billed_usage, replies
from ctxbudget import BudgetExceeded, ContextManager, price, resolve_model
from ctxbudget.spend import Limit, SpendGuard, SpendLedger, Tags, open_ledger
from provider_server import ProviderServer, Reply
from test_wrap_openai import GPT, MINI, SYSTEM, async_sdk, sdk


@pytest.fixture
def server() -> Any:
    with ProviderServer() as running:
        yield running


@pytest.fixture
def ledger(tmp_path: Path) -> SpendLedger:
    return open_ledger(f"sqlite:///{tmp_path / 'spend.db'}")


def chat(n: int) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Question {n}: where is the rounding bug?"},
    ]


def team_totals(ledger: SpendLedger) -> tuple[Decimal, Decimal, int]:
    """(spent, reserved, calls) of team t this day."""
    rows = [t for b, t in ledger.totals().items() if b.scope == "team" and b.period == "day"]
    return (
        sum((t.spent for t in rows), Decimal(0)),
        sum((t.reserved for t in rows), Decimal(0)),
        sum(t.calls for t in rows),
    )


def billed_cost(server: ProviderServer, model: str = GPT) -> Decimal:
    prices = resolve_model(model).prices
    total = Decimal(0)
    for billed in server.billed:
        cost = price(billed_usage(billed), prices)
        assert cost is not None
        total += cost.total
    return total


def test_each_call_is_reserved_then_settled_with_the_bill(
    server: ProviderServer, ledger: SpendLedger
) -> None:
    server.script = replies(*(Reply(text=f"Answer {n}.") for n in range(3)))
    guard = SpendGuard(ledger, Tags(team="t", session="s1"))
    client = ctxbudget.wrap(sdk(server), ContextManager(GPT), spend=guard)
    messages: list[Any] = chat(0)
    for n in range(3):
        reply = client.chat.completions.create(model=GPT, messages=messages, max_tokens=200)
        messages.append({"role": "assistant", "content": reply.choices[0].message.content})
        messages.append({"role": "user", "content": f"And question {n + 1}?"})
    spent, reserved, calls = team_totals(ledger)
    assert calls == 3
    assert reserved == 0
    assert spent == pytest.approx(billed_cost(server), abs=Decimal("1e-8"))


def test_a_refusing_limit_stops_the_call_before_it_is_sent(
    server: ProviderServer, ledger: SpendLedger
) -> None:
    ledger.set_limit(Limit(scope="team", key="t", period="day", usd=Decimal("0.000001")))
    guard = SpendGuard(ledger, Tags(team="t"))
    client = ctxbudget.wrap(sdk(server), ContextManager(GPT), spend=guard)
    with pytest.raises(BudgetExceeded, match="spend limit") as raised:
        client.chat.completions.create(model=GPT, messages=chat(0))
    assert raised.value.scope == "team"
    assert server.requests == [], "nothing was sent"
    assert team_totals(ledger)[1] == 0


def test_a_failed_call_gives_its_reservation_back(
    server: ProviderServer, ledger: SpendLedger
) -> None:
    server.fail_next("server_error", count=5)
    guard = SpendGuard(ledger, Tags(team="t"))
    client = ctxbudget.wrap(sdk(server), ContextManager(GPT), spend=guard, retries=1, backoff=0)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model=GPT, messages=chat(0))
    spent, reserved, calls = team_totals(ledger)
    assert (spent, reserved, calls) == (0, 0, 0)


def test_a_switch_limit_sends_the_call_to_the_cheaper_model(
    server: ProviderServer, ledger: SpendLedger
) -> None:
    server.script = replies(Reply(text="Cheaper answer."))
    # more than the cheap model's projection, less than the expensive one's
    manager = ContextManager(GPT)
    manager.extend(chat(0))
    manager.prepare("openai", max_tokens=100)
    report = manager.last_report
    assert report is not None
    gpt, mini = resolve_model(GPT).prices, resolve_model(MINI).prices
    assert gpt is not None
    assert mini is not None
    between = []
    for prices in (gpt, mini):
        cost = price(report.predicted, prices)  # type: ignore[arg-type]
        assert cost is not None
        assert prices.output is not None
        between.append(cost.input + Decimal(100) * prices.output / Decimal(1_000_000))
    cap = (between[0] + between[1]) / 2
    ledger.set_limit(
        Limit(scope="team", key="t", period="call", usd=cap, action="switch", fallback_model=MINI)
    )
    guard = SpendGuard(ledger, Tags(team="t"))
    client = ctxbudget.wrap(sdk(server), ContextManager(GPT), spend=guard)
    client.chat.completions.create(model=GPT, messages=chat(0), max_tokens=100)
    (sent,) = server.requests
    assert sent["model"] == MINI
    spent, reserved, _ = team_totals(ledger)
    assert reserved == 0
    assert spent == pytest.approx(billed_cost(server, MINI), abs=Decimal("1e-8"))


def test_async_streaming_settles_when_the_stream_ends(
    server: ProviderServer, ledger: SpendLedger
) -> None:
    server.script = replies(Reply(text="Streaming the answer in pieces."))
    guard = SpendGuard(ledger, Tags(team="t"))
    client = ctxbudget.wrap(async_sdk(server), ContextManager(GPT), spend=guard)

    async def run() -> str:
        stream = await client.chat.completions.create(
            model=GPT, messages=chat(0), stream=True, stream_options={"include_usage": True}
        )
        pieces = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        return "".join(pieces)

    text = asyncio.run(run())
    assert text == "Streaming the answer in pieces."
    spent, reserved, calls = team_totals(ledger)
    assert (reserved, calls) == (0, 1)
    assert spent == pytest.approx(billed_cost(server), abs=Decimal("1e-8"))
    assert json.dumps(server.requests[0]["messages"][0]["content"]) == json.dumps(SYSTEM)
