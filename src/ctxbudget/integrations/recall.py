"""The recall tool inside the integrations: offered with the caller's tools, answered by us.

Digests and placeholders name the original's id (``recall("m12")``). The SDK wrapper and
the LangChain middleware add the manager's ``recall`` tool to each request and answer the
model's recall calls themselves (``manager.answer_recall``), in hidden rounds the caller's
loop never sees: the reply and the answers go into the manager's log, after the caller's
messages, and the model is called again. This module holds what the two share: which tools
to offer, which calls of a reply are recall calls, the answers as messages, and taking the
recall calls out of a reply handed back to the caller (a reply that also calls the
caller's tools).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctxbudget.billing.usage import as_plain
from ctxbudget.convert.request import Format
from ctxbudget.engine.recall import RECALL_TOOL, calls_recall
from ctxbudget.engine.request import Provider

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = [
    "MAX_RECALL_ROUNDS",
    "RecallOffer",
    "answer_messages",
    "is_recall_call",
    "joining_answers",
    "reply_calls",
    "tool_name",
    "without_recall",
]

MAX_RECALL_ROUNDS = 3
"""Recall rounds answered per caller call; the reply after the last is returned as it is."""


def tool_name(tool: Any) -> str | None:
    """The name of a tool schema in any format (OpenAI chat, Responses, Anthropic, an SDK
    object or a LangChain tool); None when it has none (some provider built-in tools)."""
    name = getattr(tool, "name", None)
    if isinstance(name, str) and not isinstance(tool, Mapping):
        return name
    plain = as_plain(tool)
    if not isinstance(plain, Mapping):
        return None
    function = plain.get("function")
    if isinstance(function, Mapping):
        plain = function
    found = plain.get("name")
    return found if isinstance(found, str) else None


def is_recall_call(call: Any) -> bool:
    """Whether ``call`` (an OpenAI chat tool call, an Anthropic ``tool_use`` block or a
    Responses ``function_call`` item; dict or SDK object) calls the recall tool. Anything
    else (a text block, another tool's call) is not."""
    plain = as_plain(call)
    return isinstance(plain, Mapping) and calls_recall(plain)


def reply_calls(reply: Sequence[Mapping[str, Any]], fmt: Format) -> list[dict[str, Any]]:
    """Every tool call of a recorded reply (its messages in ``fmt``), in order."""
    calls: list[dict[str, Any]] = []
    for message in reply:
        if fmt == "openai_responses":
            if message.get("type") == "function_call":
                calls.append(dict(message))
        elif fmt == "anthropic":
            content = message.get("content")
            if isinstance(content, list):
                calls += [dict(b) for b in content if b.get("type") == "tool_use"]
        else:
            calls += [dict(c) for c in message.get("tool_calls") or ()]
    return calls


def answer_messages(answers: Sequence[dict[str, Any]], fmt: Format) -> list[dict[str, Any]]:
    """The tool results of ``manager.answer_recall`` as messages to append in ``fmt``
    (Anthropic's ``tool_result`` blocks go in one user message)."""
    if fmt == "anthropic":
        return [{"role": "user", "content": list(answers)}] if answers else []
    return list(answers)


def joining_answers(
    answers: Sequence[dict[str, Any]], fmt: Format
) -> tuple[list[dict[str, Any]], Format]:
    """The answers as messages the caller's next message of tool results joins, and their
    format. Anthropic needs every ``tool_result`` of a turn in the one user message after
    it, but a user message read in Anthropic's format stays a turn of its own (the reader
    is the exact inverse of the format); as tool-role messages (OpenAI chat form) the
    renderer writes them into the caller's next message of results. Only an unknown id's
    ``is_error`` mark is lost on the way (its text still says what went wrong)."""
    if fmt != "anthropic":
        return answer_messages(answers, fmt), fmt
    tool = [
        {"role": "tool", "tool_call_id": a["tool_use_id"], "content": a["content"]} for a in answers
    ]
    return tool, "openai_chat"


def without_recall(response: Any, fmt: Format) -> Any:
    """``response`` (an SDK response object or its dict) with its recall calls taken out:
    ``choices[0].message.tool_calls`` (Chat Completions), ``content`` (Anthropic) or
    ``output`` (Responses). An SDK object is changed in place and returned."""
    if isinstance(response, Mapping):
        return _without_recall_dict(response, fmt)
    if fmt == "openai_chat":
        message = response.choices[0].message
        message.tool_calls = [c for c in message.tool_calls or () if not is_recall_call(c)] or None
    elif fmt == "anthropic":
        response.content = [b for b in response.content if not is_recall_call(b)]
    else:
        response.output = [o for o in response.output if not is_recall_call(o)]
    return response


def _without_recall_dict(response: Mapping[str, Any], fmt: Format) -> dict[str, Any]:
    out = dict(response)
    if fmt == "openai_chat":
        choices = list(out["choices"])
        message = dict(choices[0]["message"])
        kept = [c for c in message.get("tool_calls") or () if not is_recall_call(c)]
        message["tool_calls"] = kept or None
        choices[0] = {**choices[0], "message": message}
        out["choices"] = choices
    elif fmt == "anthropic":
        out["content"] = [b for b in out.get("content") or () if not is_recall_call(b)]
    else:
        out["output"] = [o for o in out.get("output") or () if not is_recall_call(o)]
    return out


class RecallOffer:
    """Whether one wrapped API offers the recall tool, and its answers to a reply.

    The tool is offered in every plain (non-streamed) call unless the caller has a tool of
    its own named ``recall``. A streamed call offers it only once an earlier call already
    did: the tool list is the start of the cached prefix, so a client that mixes streamed
    and plain calls keeps one list (no cache rewrite at each switch), and a client that
    only streams never sees the tool. Only plain calls are answered by the wrapper.
    """

    def __init__(self, manager: ContextManager, provider: Provider, enabled: bool) -> None:
        self.manager = manager
        self.provider: Provider = provider
        self.enabled = enabled
        self.offered = False
        """The tool was offered before (streamed calls keep offering it)."""

    def tools(self, tools: Any, *, stream: bool) -> tuple[Any, bool]:
        """(the tools to hand the manager, whether this call answers recall calls itself)."""
        if not self.enabled or any(tool_name(t) == RECALL_TOOL for t in tools or ()):
            return tools, False
        if stream and not self.offered:
            return tools, False
        self.offered = True
        return [*(tools or ()), self.manager.recall_tool(self.provider)], not stream

    def answers(self, calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The manager's answer to each recall call (tool results in the calls' format)."""
        return [self.manager.answer_recall(call) for call in calls]
