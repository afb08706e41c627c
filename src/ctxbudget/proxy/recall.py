"""The recall tool in manage mode: offered with the client's tools, answered by the proxy.

Digests and placeholders name the original's id (``recall("m12")``); the proxy adds the
manager's ``recall`` tool to managed requests (Anthropic, streamed or not; OpenAI calls
that are not streamed) unless the client has a tool of that name. A reply that calls only
``recall`` is answered and the model called again, at most three rounds per client call,
recorded in the log but never shown to the client; recall calls beside the client's own
calls are answered in the log and taken out of what the client sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ctxbudget.billing.usage import Usage
from ctxbudget.engine.recall import RECALL_TOOL
from ctxbudget.integrations.recall import (
    MAX_RECALL_ROUNDS,
    answer_messages,
    is_recall_call,
    joining_answers,
    reply_calls,
    tool_name,
)
from ctxbudget.proxy.call import Call
from ctxbudget.proxy.sessions import ProxySession

__all__ = ["Round", "offered_tools", "offers_recall", "settle_round"]


def offers_recall(call: Call) -> bool:
    """Whether the proxy offers and answers ``recall`` in this call."""
    if not call.managed or any(tool_name(t) == RECALL_TOOL for t in call.parsed.tools or ()):
        return False
    return call.wire.name == "anthropic" or not call.parsed.stream


def offered_tools(call: Call, session: ProxySession) -> list[Any]:
    """The client's tools and the manager's ``recall`` tool, last (the cached prefix of
    the client's own tools stays as it is)."""
    tool = session.manager.recall_tool(call.wire.adapter.provider)
    return [*(call.parsed.tools or ()), tool]


@dataclass(frozen=True, slots=True)
class Round:
    """What one upstream round came to."""

    again: bool
    """Only recall calls, answered: call the model once more."""
    hid: bool
    """Recall calls were taken out of what the client sees."""


def settle_round(
    session: ProxySession,
    reply: Sequence[dict[str, Any]],
    usage: Usage | None,
    rounds: int,
    fmt: Any,
) -> Round:
    """Record one round's reply and usage, with the answers to its recall calls."""
    calls = reply_calls(reply, fmt)
    recalls = [c for c in calls if is_recall_call(c)]
    if not recalls:
        session.record(fmt, reply, usage)
        return Round(again=False, hid=False)
    answers = [session.manager.answer_recall(c) for c in recalls]
    if len(recalls) == len(calls) and rounds < MAX_RECALL_ROUNDS:
        session.record_hidden(fmt, [*reply, *answer_messages(answers, fmt)], usage)
        return Round(again=True, hid=True)
    joined, joined_fmt = joining_answers(answers, fmt)
    session.record(fmt, reply, usage, joined=joined, joined_format=joined_fmt)
    return Round(again=False, hid=True)
