"""Billed usage in one shape (``ctxbudget.billing.usage``) and its price in dollars
(``ctxbudget.billing.cost``).

The payloads are written the way each API returns them (OpenAI Chat ``usage``, Responses
``usage``, Anthropic Messages ``usage``), as plain dicts and as the SDKs' own pydantic
models parsed from the same JSON. A session that switches models is priced call by call.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic.types
import openai.types
import openai.types.responses
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxbudget import Prices, ProviderError, Usage, price, resolve_model
from ctxbudget.analyze import Analysis, analyze_session
from ctxbudget.billing.cost import ZERO, Cost
from ctxbudget.billing.usage import (
    as_plain,
    usage_from_anthropic,
    usage_from_openai_chat,
    usage_from_openai_responses,
)
from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.traces.session import RecordedCall, Session

MILLION = Decimal(1_000_000)

CHAT_USAGE: dict[str, Any] = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 128,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
RESPONSES_USAGE: dict[str, Any] = {
    "input_tokens": 5120,
    "input_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 0},
    "output_tokens": 812,
    "output_tokens_details": {"reasoning_tokens": 640},
    "total_tokens": 5932,
}
ANTHROPIC_USAGE: dict[str, Any] = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 1000,
    "cache_read_input_tokens": 20_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600},
    "output_tokens": 503,
    "service_tier": "standard",
}

OPENAI_PRICES = Prices(
    input=Decimal("2.5"), output=Decimal("10"), cache_read=Decimal("1.25")
)  # no write price: OpenAI bills writes as input
ANTHROPIC_PRICES = Prices(
    input=Decimal("3"),
    output=Decimal("15"),
    cache_read=Decimal("0.30"),
    cache_write_5m=Decimal("3.75"),
    cache_write_1h=Decimal("6"),
)


# --- the mappers -----------------------------------------------------------------------------


CHAT_EXPECTED = Usage(
    input_tokens=2006, cache_read_tokens=1920, output_tokens=300, reasoning_tokens=128
)
RESPONSES_EXPECTED = Usage(
    input_tokens=5120, cache_read_tokens=4096, output_tokens=812, reasoning_tokens=640
)
ANTHROPIC_EXPECTED = Usage(
    input_tokens=50 + 1000 + 20_000,
    cache_read_tokens=20_000,
    cache_write_5m_tokens=400,
    cache_write_1h_tokens=600,
    output_tokens=503,
)


def test_openai_chat_dict_and_sdk_object() -> None:
    assert usage_from_openai_chat(CHAT_USAGE) == CHAT_EXPECTED
    sdk = openai.types.CompletionUsage.model_validate(CHAT_USAGE)
    assert usage_from_openai_chat(sdk) == CHAT_EXPECTED


def test_openai_chat_without_details() -> None:
    plain = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert usage_from_openai_chat(plain) == Usage(input_tokens=12, output_tokens=3)
    sdk = openai.types.CompletionUsage.model_validate(plain)
    assert usage_from_openai_chat(sdk) == Usage(input_tokens=12, output_tokens=3)


def test_openai_responses_dict_and_sdk_object() -> None:
    assert usage_from_openai_responses(RESPONSES_USAGE) == RESPONSES_EXPECTED
    sdk = openai.types.responses.ResponseUsage.model_validate(RESPONSES_USAGE)
    assert usage_from_openai_responses(sdk) == RESPONSES_EXPECTED


def test_anthropic_dict_and_sdk_object() -> None:
    assert usage_from_anthropic(ANTHROPIC_USAGE) == ANTHROPIC_EXPECTED
    sdk = anthropic.types.Usage.model_validate(ANTHROPIC_USAGE)
    assert usage_from_anthropic(sdk) == ANTHROPIC_EXPECTED


def test_anthropic_input_excludes_cache_but_usage_input_includes_it() -> None:
    usage = usage_from_anthropic(ANTHROPIC_USAGE)
    assert usage.uncached_input_tokens == 50
    assert usage.cache_write_tokens == 1000


def test_anthropic_writes_without_a_split_are_5m_writes() -> None:
    payload = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 700,
        "cache_read_input_tokens": 0,
        "output_tokens": 5,
    }
    expected = Usage(input_tokens=710, cache_write_5m_tokens=700, output_tokens=5)
    assert usage_from_anthropic(payload) == expected
    sdk = anthropic.types.Usage.model_validate(payload)  # cache_creation: None
    assert usage_from_anthropic(sdk) == expected


def test_anthropic_split_not_adding_up_trusts_the_total() -> None:
    payload = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 1000,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 600},
        "output_tokens": 5,
    }
    usage = usage_from_anthropic(payload)
    assert usage.cache_write_1h_tokens == 600
    assert usage.cache_write_5m_tokens == 400
    assert usage.input_tokens == 1010


def test_anthropic_split_larger_than_the_total_is_refused() -> None:
    payload = {
        "input_tokens": 200,
        "cache_creation_input_tokens": 500,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 600},
        "output_tokens": 5,
    }
    with pytest.raises(ProviderError):
        usage_from_anthropic(payload)


def test_streamed_anthropic_usage_is_the_merged_events() -> None:
    start = {**ANTHROPIC_USAGE, "output_tokens": 1}
    delta = anthropic.types.MessageDeltaUsage.model_validate(
        {
            "input_tokens": 50,
            "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 20_000,
            "output_tokens": 503,
        }
    )
    merged = {**start, **{k: v for k, v in as_plain(delta).items() if v is not None}}
    assert usage_from_anthropic(merged) == ANTHROPIC_EXPECTED


def test_as_plain_leaves_plain_values_and_drops_nones() -> None:
    assert as_plain(CHAT_USAGE) is CHAT_USAGE
    sdk = anthropic.types.Usage.model_validate({"input_tokens": 1, "output_tokens": 2})
    assert as_plain(sdk) == {"input_tokens": 1, "output_tokens": 2}


@pytest.mark.parametrize(
    ("mapper", "payload"),
    [
        (usage_from_openai_chat, None),
        (usage_from_openai_chat, [1, 2]),
        (usage_from_openai_chat, {"completion_tokens": 3}),  # no prompt_tokens
        (usage_from_openai_chat, {"prompt_tokens": "12"}),
        (usage_from_openai_chat, {"prompt_tokens": 12.0}),
        (usage_from_openai_chat, {"prompt_tokens": True}),
        (usage_from_openai_chat, {"prompt_tokens": -1}),
        (usage_from_openai_chat, {"prompt_tokens": 10, "prompt_tokens_details": "x"}),
        (
            usage_from_openai_chat,
            {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 11}},
        ),
        (usage_from_openai_chat, {"prompt_tokens": 10, "completion_tokens_details": [1]}),
        (usage_from_openai_responses, {}),
        (usage_from_openai_responses, {"input_tokens": 5, "output_tokens": "3"}),
        (
            usage_from_openai_responses,
            {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 6}},
        ),
        (usage_from_anthropic, "usage"),
        (usage_from_anthropic, {"output_tokens": 3}),  # no input_tokens
        (usage_from_anthropic, {"input_tokens": 3, "cache_read_input_tokens": -5}),
        (usage_from_anthropic, {"input_tokens": 3, "cache_creation": 7}),
        (usage_from_anthropic, {"input_tokens": None}),
    ],
)
def test_bad_payloads_raise_provider_error(mapper: Any, payload: Any) -> None:
    with pytest.raises(ProviderError):
        mapper(payload)


@pytest.mark.parametrize(
    "fields",
    [
        {"input_tokens": -1},
        {"input_tokens": 1.5},
        {"input_tokens": 10, "cache_read_tokens": 6, "cache_write_5m_tokens": 5},
        {"input_tokens": 10, "output_tokens": False},
    ],
)
def test_inconsistent_usage_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ProviderError):
        Usage(**fields)


def test_usage_adds_field_by_field() -> None:
    total = CHAT_EXPECTED + ANTHROPIC_EXPECTED
    assert total == Usage(
        input_tokens=2006 + 21_050,
        cache_read_tokens=1920 + 20_000,
        cache_write_5m_tokens=400,
        cache_write_1h_tokens=600,
        output_tokens=300 + 503,
        reasoning_tokens=128,
    )


# --- price() ---------------------------------------------------------------------------------


def test_openai_price_arithmetic() -> None:
    cost = price(CHAT_EXPECTED, OPENAI_PRICES)
    assert cost == Cost(
        uncached_input=Decimal(86) * Decimal("2.5") / MILLION,
        cache_read=Decimal(1920) * Decimal("1.25") / MILLION,
        cache_write=Decimal(0),
        output=Decimal(300) * Decimal(10) / MILLION,
    )
    assert cost.input == Decimal("0.000215") + Decimal("0.0024")
    assert cost.total == Decimal("0.005615")


def test_openai_cache_writes_are_billed_as_input() -> None:
    usage = Usage(input_tokens=3000, cache_write_5m_tokens=2000, cache_write_1h_tokens=500)
    cost = price(usage, OPENAI_PRICES)
    assert cost is not None
    assert cost.cache_write == Decimal(2500) * Decimal("2.5") / MILLION
    assert cost.input == Decimal(3000) * Decimal("2.5") / MILLION


def test_anthropic_5m_and_1h_writes() -> None:
    cost = price(ANTHROPIC_EXPECTED, ANTHROPIC_PRICES)
    assert cost == Cost(
        uncached_input=Decimal("0.00015"),  # 50 x 3
        cache_read=Decimal("0.006"),  # 20,000 x 0.30
        cache_write=Decimal("0.0015") + Decimal("0.0036"),  # 400 x 3.75 + 600 x 6
        output=Decimal("0.007545"),  # 503 x 15
    )
    assert cost.total == Decimal("0.018795")


def test_missing_1h_price_falls_back_to_the_5m_price() -> None:
    prices = Prices(input=Decimal(3), output=Decimal(15), cache_write_5m=Decimal("3.75"))
    cost = price(Usage(input_tokens=1000, cache_write_1h_tokens=1000), prices)
    assert cost is not None
    assert cost.cache_write == Decimal("0.00375")


def test_missing_read_price_bills_reads_as_input() -> None:
    prices = Prices(input=Decimal(2), output=Decimal(8))
    cost = price(Usage(input_tokens=1000, cache_read_tokens=600), prices)
    assert cost is not None
    assert cost.cache_read == Decimal("0.0012")
    assert cost.input == Decimal("0.002")


@pytest.mark.parametrize(
    ("usage", "prices"),
    [
        (CHAT_EXPECTED, None),
        (CHAT_EXPECTED, Prices()),
        (CHAT_EXPECTED, Prices(output=Decimal(10))),  # no input price
        (CHAT_EXPECTED, Prices(input=Decimal("2.5"))),  # output tokens, no output price
    ],
)
def test_unknown_prices_give_none(usage: Usage, prices: Prices | None) -> None:
    assert price(usage, prices) is None


def test_no_output_needs_no_output_price() -> None:
    cost = price(Usage(input_tokens=100), Prices(input=Decimal(1)))
    assert cost is not None
    assert cost.output == 0
    assert cost.total == Decimal("0.0001")


def test_registry_prices_are_used_as_listed() -> None:
    prices = resolve_model("claude-opus-4-1").prices
    assert prices is not None
    assert prices.input is not None
    assert prices.cache_read is not None
    assert prices.cache_write_5m is not None
    assert prices.cache_write_1h is not None
    assert prices.output is not None
    cost = price(ANTHROPIC_EXPECTED, prices)
    assert cost is not None
    assert cost.total * MILLION == (
        50 * prices.input
        + 20_000 * prices.cache_read
        + 400 * prices.cache_write_5m
        + 600 * prices.cache_write_1h
        + 503 * prices.output
    )


def _two_model_session(models: list[str | None], *, billed: bool = True) -> Session:
    """A session written here whose calls name ``models`` (one per call), each billed."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a careful engineer."},
        {"role": "user", "content": "Read the three files and summarise them."},
    ]
    for n in range(len(models) - 1):
        messages.append(
            {
                "role": "assistant",
                "content": f"Reading file {n}.",
                "tool_calls": [
                    {
                        "id": f"c{n}",
                        "type": "function",
                        "function": {"name": "cat", "arguments": f'{{"path": "f{n}.py"}}'},
                    }
                ],
            }
        )
        body = "\n".join(f"line {k} of f{n}.py" for k in range(200))
        messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": body})
    messages.append({"role": "assistant", "content": "Summary: three small modules."})
    items = tuple(from_openai_chat(messages))
    positions = [i for i, item in enumerate(items) if item.role == "assistant"]
    usages = [
        Usage(input_tokens=1_000 * (n + 1), cache_read_tokens=500 * n, output_tokens=40 + n)
        for n in range(len(positions))
    ]
    return Session(
        name="two-models",
        source="test",
        format="openai-chat",
        items=items,
        calls=tuple(
            RecordedCall(position=p, usage=u if billed else None, model=m)
            for p, u, m in zip(positions, usages, models, strict=True)
        ),
    )


PER_CALL = ["claude-opus-5-5", "claude-opus-5-5", "claude-haiku-4-5", "claude-haiku-4-5"]


def test_a_session_that_switches_models_is_priced_call_by_call() -> None:
    session = _two_model_session(PER_CALL)
    result = analyze_session(session)
    assert result.models == {"claude-opus-5-5": 2, "claude-haiku-4-5": 2}
    assert result.priced
    assert result.unpriced_models == ()
    expected = []
    for call, name in zip(session.calls, PER_CALL, strict=True):
        assert call.usage is not None
        cost = price(call.usage, resolve_model(name).prices)
        assert cost is not None
        expected.append(cost)
    assert result.input_costs == [c.input for c in expected]
    assert result.computed_cost == sum((c.total for c in expected), Decimal(0))
    assert result.output_cost == sum((c.output for c in expected), Decimal(0))
    one = analyze_session(session, "claude-opus-5-5")  # one model named: every call as it
    assert one.models == {"claude-opus-5-5": 4}
    assert one.computed_cost is not None
    assert result.computed_cost is not None
    assert one.computed_cost > result.computed_cost  # haiku's calls cost less
    data = Analysis(sessions=[result]).to_json()
    assert data["models"] == {"claude-opus-5-5": 2, "claude-haiku-4-5": 2}
    assert data["per_session"][0]["log_models"] == ["claude-opus-5-5", "claude-haiku-4-5"]


def test_unbilled_calls_are_replayed_at_each_calls_prices() -> None:
    # one tokenizer and one set of cache rules: only the prices differ between the calls
    models = ["gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    session = _two_model_session(models, billed=False)
    mixed = analyze_session(session)
    assert mixed.cache_source == "simulated"
    for name, calls in (("gpt-4o", (0, 1)), ("gpt-4o-mini", (2, 3))):
        alone = analyze_session(session, name).input_costs
        for n in calls:
            assert mixed.input_costs[n] == alone[n], (name, n)
    assert mixed.input_costs[0] != analyze_session(session, "gpt-4o-mini").input_costs[0]


def test_a_call_of_a_model_nobody_knows_leaves_the_session_unpriced() -> None:
    models = ["claude-opus-5-5", "acme-model-1", None, "claude-opus-5-5"]
    result = analyze_session(_two_model_session(models))
    assert result.unpriced_models == ("acme-model-1",)
    assert not result.priced
    assert result.computed_cost is None  # never another model's price
    assert result.input_costs[1] is None
    assert result.input_costs[0] is not None
    assert result.models == {"claude-opus-5-5": 3, "acme-model-1": 1}  # None: the session's


def test_cost_adds_field_by_field() -> None:
    a = price(CHAT_EXPECTED, OPENAI_PRICES)
    b = price(ANTHROPIC_EXPECTED, ANTHROPIC_PRICES)
    assert a is not None
    assert b is not None
    total = a + b
    assert total.total == a.total + b.total
    assert total.cache_write == a.cache_write + b.cache_write
    assert a + ZERO == a


# --- properties ------------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=2_000_000)
rates = st.decimals(min_value=0, max_value=100, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def price_lists(draw: st.DrawFn) -> Prices:
    return Prices(
        input=draw(rates),
        output=draw(rates),
        cache_read=draw(st.none() | rates),
        cache_write_5m=draw(st.none() | rates),
        cache_write_1h=draw(st.none() | rates),
    )


def usage_of(parts: tuple[int, int, int, int, int]) -> Usage:
    """Usage from independent counts: uncached, read, 5m write, 1h write, output."""
    uncached, read, w5, w1, out = parts
    return Usage(
        input_tokens=uncached + read + w5 + w1,
        cache_read_tokens=read,
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        output_tokens=out,
    )


@given(
    prices=price_lists(),
    parts=st.tuples(counts, counts, counts, counts, counts),
    field=st.integers(min_value=0, max_value=4),
    more=st.integers(min_value=1, max_value=1_000_000),
)
def test_cost_is_monotone_in_each_token_count(
    prices: Prices, parts: tuple[int, int, int, int, int], field: int, more: int
) -> None:
    bigger = list(parts)
    bigger[field] += more
    before = price(usage_of(parts), prices)
    after = price(usage_of((bigger[0], bigger[1], bigger[2], bigger[3], bigger[4])), prices)
    assert before is not None
    assert after is not None
    assert after.total >= before.total
    for name in ("uncached_input", "cache_read", "cache_write", "output"):
        assert getattr(after, name) >= getattr(before, name)


@given(
    prices=price_lists(),
    a=st.tuples(counts, counts, counts, counts, counts),
    b=st.tuples(counts, counts, counts, counts, counts),
)
def test_cost_of_a_sum_is_the_sum_of_costs(
    prices: Prices, a: tuple[int, int, int, int, int], b: tuple[int, int, int, int, int]
) -> None:
    cost_a, cost_b = price(usage_of(a), prices), price(usage_of(b), prices)
    cost_sum = price(usage_of(a) + usage_of(b), prices)
    assert cost_a is not None
    assert cost_b is not None
    assert cost_sum == cost_a + cost_b


@given(prices=price_lists(), parts=st.tuples(counts, counts, counts, counts, counts))
def test_each_token_is_billed_at_its_listed_price(
    prices: Prices, parts: tuple[int, int, int, int, int]
) -> None:
    """Every token is billed at exactly one listed (or fallen-back) price."""
    cost = price(usage_of(parts), prices)
    assert cost is not None
    assert prices.input is not None
    read = prices.cache_read if prices.cache_read is not None else prices.input
    assert cost.cache_read * MILLION == parts[1] * read
    assert cost.uncached_input * MILLION == parts[0] * prices.input
