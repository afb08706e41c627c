"""OpenHands evaluation output (``output.jsonl``): one session per line, events in ``history``.

Events become OpenAI chat messages the way OpenHands' conversation memory sends them:

- the ``system`` action is the system prompt; ``message`` actions are user or assistant
  text (an agent message is a model call that made no tool call);
- an agent action with ``tool_call_metadata`` is a tool call: the assistant message is the
  model's own (``model_response.choices[0].message``: its text and the call's raw
  arguments), and the observation whose ``cause`` is the action's ``id`` is the tool
  result. Actions sharing one ``model_response.id`` (``total_calls_in_response > 1``) were
  one model call and become ONE assistant message with several tool calls;
- a ``recall`` observation (workspace context, microagent knowledge) becomes a user
  message of what it added (approximating OpenHands' template); the user-side ``recall``
  action that asked for it is not sent to the model and is skipped;
- other observations without a known cause (e.g. an ``error`` about a malformed call)
  are user messages: the model saw them, but the response that caused them is not logged.

Usage per call comes from ``metrics.token_usages`` joined by ``response_id``
(= ``model_response.id``); ``prompt_tokens`` is litellm's, which already includes cache
reads and writes (when the cache numbers exceed it, they are added instead). The entry is
read by the library's Anthropic mapper (the one that knows cache writes, which OpenHands
takes from litellm's Anthropic fields); a usage it rejects is a
:class:`~ctxbudget.errors.TraceError` naming the line. Calls whose usage cannot be joined
get ``usage=None``. :attr:`Session.totals` keeps the session's
accumulated usage and the number of model responses timed (``response_latencies``), which
also counts failed responses that left no assistant message.
"""

from __future__ import annotations

import json
from typing import Any

from ctxbudget.billing.usage import Usage, usage_from_anthropic
from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.traces._common import CallInfo, recorded_calls
from ctxbudget.traces._read import Document, Where, converting, sub
from ctxbudget.traces.session import RecordedTotals, Session

__all__ = ["FORMAT", "looks_like", "read"]

FORMAT = "openhands"

_NOT_SENT = ("agent_state_changed", "null", "condensation")
"""Observations OpenHands keeps for its UI and never shows the model."""


def looks_like(value: Any) -> bool:
    """One OpenHands output record: ``history`` of events plus ``instance_id`` or ``metrics``."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("history"), list)
        and ("instance_id" in value or "metrics" in value)
        and all(isinstance(e, dict) for e in value["history"][:3])
    )


def read(doc: Document, name: str) -> list[Session]:
    """Every session of an ``output.jsonl`` (one per line, named ``file#n``)."""
    records = doc.records()
    sessions = []
    for n, (line, value) in enumerate(records):
        where = doc.where.at(line)
        label = f"{name}#{n}" if len(records) > 1 or line is not None else name
        sessions.append(_session(where.obj(value, "the record"), where, label, str(doc.path)))
    return sessions


def _session(record: dict[str, Any], where: Where, name: str, source: str) -> Session:
    history = where.arr(where.field(record, "history", "record"), "history")
    metrics = sub(record, "metrics")
    events = _Events(where, _usages(metrics, where))
    for i, raw in enumerate(history):
        event = where.obj(raw, f"history[{i}]")
        if "action" in event:
            events.action(event, f"history[{i}]")
        elif "observation" in event:
            events.observation(event)
    with converting(where, "history"):
        items = from_openai_chat(events.messages)
    meta = record.get("metadata")
    llm = meta.get("llm_config") if isinstance(meta, dict) else None
    model = llm.get("model") if isinstance(llm, dict) else None
    return Session(
        name=name,
        source=source,
        format=FORMAT,
        items=tuple(items),
        calls=recorded_calls(items, events.info),
        model=model if isinstance(model, str) else None,
        totals=_totals(metrics, where),
    )


class _Events:
    """Events → OpenAI chat messages, with each call's figures by message index."""

    def __init__(self, where: Where, usages: dict[str, Usage]) -> None:
        self.where = where
        self.usages = usages
        self.messages: list[dict[str, Any]] = []
        self.info: dict[int, CallInfo] = {}
        self.by_response: dict[str, dict[str, Any]] = {}
        self.call_of_action: dict[str, str] = {}

    def action(self, event: dict[str, Any], what: str) -> None:
        action, source = event["action"], event.get("source")
        text = _text(event)
        if action == "system":
            self.messages.append({"role": "system", "content": text})
            return
        if source != "agent":
            if action == "message":
                self.messages.append({"role": "user", "content": text})
            return  # recall and other user-side actions are not sent to the model
        meta = event.get("tool_call_metadata")
        if not isinstance(meta, dict):
            if action == "message":
                self.info[len(self.messages)] = CallInfo()
                self.messages.append({"role": "assistant", "content": text})
            return
        call_id = self.where.text(meta, "tool_call_id", f"{what}.tool_call_metadata")
        response = meta.get("model_response")
        response = response if isinstance(response, dict) else {}
        reply = _reply(response)
        call = _tool_call(reply, call_id, meta, event)
        self.call_of_action[str(event.get("id"))] = call_id
        rid = response.get("id")
        merged = self.by_response.get(rid) if isinstance(rid, str) else None
        if merged is not None:
            merged["tool_calls"].append(call)  # another call of the same model response
            return
        content = reply.get("content")
        message = {
            "role": "assistant",
            "content": content if isinstance(content, str) else event.get("thought") or None,
            "tool_calls": [call],
        }
        if isinstance(rid, str):
            self.by_response[rid] = message
        model = response.get("model")
        usage = self.usages.get(rid) if isinstance(rid, str) else None
        self.info[len(self.messages)] = CallInfo(
            usage=usage, model=model if isinstance(model, str) else None
        )
        self.messages.append(message)

    def observation(self, event: dict[str, Any]) -> None:
        if event.get("observation") in _NOT_SENT:
            return
        cause = event.get("cause")
        call_id = self.call_of_action.pop(str(cause), None) if cause is not None else None
        if call_id is not None:
            self.messages.append({"role": "tool", "tool_call_id": call_id, "content": _text(event)})
        elif event.get("observation") == "recall":
            text = _recall_text(event)
            if text:
                self.messages.append({"role": "user", "content": text})
        else:
            self.messages.append({"role": "user", "content": _text(event)})


def _reply(response: dict[str, Any]) -> dict[str, Any]:
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            return message
    return {}


def _tool_call(
    reply: dict[str, Any], call_id: str, meta: dict[str, Any], event: dict[str, Any]
) -> dict[str, Any]:
    """The call as the model made it; rebuilt from the action when the response is absent."""
    for call in reply.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if call.get("id") == call_id and isinstance(fn, dict):
            name, arguments = fn.get("name"), fn.get("arguments")
            if isinstance(name, str) and isinstance(arguments, str):
                return _call(call_id, name, arguments)
    name = meta.get("function_name")
    arguments = json.dumps(event.get("args", {}), sort_keys=True, default=str)
    return _call(call_id, name if isinstance(name, str) else str(event["action"]), arguments)


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _text(event: dict[str, Any]) -> str:
    value = event.get("content")
    if not isinstance(value, str) or (not value and "action" in event):
        value = event.get("message")
    if not isinstance(value, str):
        args = event.get("args")
        value = args.get("content") if isinstance(args, dict) else None
    return value if isinstance(value, str) else ""


def _recall_text(event: dict[str, Any]) -> str:
    extras = sub(event, "extras")
    parts = [
        extras.get(key)
        for key in ("repo_instructions", "additional_agent_instructions")
        if isinstance(extras.get(key), str) and extras.get(key)
    ]
    hosts = extras.get("runtime_hosts")
    if isinstance(hosts, dict) and hosts:
        parts.append("Runtime hosts: " + ", ".join(str(h) for h in hosts))
    if isinstance(extras.get("date"), str) and extras["date"]:
        parts.append(f"Today's date is {extras['date']}.")
    for knowledge in extras.get("microagent_knowledge") or []:
        if isinstance(knowledge, dict) and isinstance(knowledge.get("content"), str):
            parts.append(knowledge["content"])
    return "\n\n".join(str(p) for p in parts)


def _usages(metrics: dict[str, Any], where: Where) -> dict[str, Usage]:
    out: dict[str, Usage] = {}
    for j, raw in enumerate(metrics.get("token_usages") or []):
        what = f"metrics.token_usages[{j}]"
        entry = where.obj(raw, what)
        rid = entry.get("response_id")
        if isinstance(rid, str) and rid:
            out[rid] = _usage(entry, where, what)
    return out


def _usage(entry: dict[str, Any], where: Where, what: str) -> Usage:
    """A ``token_usages`` entry by key in Anthropic's shape, whose ``input_tokens`` are the
    prompt tokens outside the cache (writes are taken as 5-minute writes, the default)."""
    prompt = where.count(entry, "prompt_tokens", what)
    read = where.count(entry, "cache_read_tokens", what, 0)
    write = where.count(entry, "cache_write_tokens", what, 0)
    usage = {
        "input_tokens": prompt - read - write if read + write <= prompt else prompt,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        "output_tokens": where.count(entry, "completion_tokens", what, 0),
    }
    with converting(where, what):
        return usage_from_anthropic(usage)


def _totals(metrics: dict[str, Any], where: Where) -> RecordedTotals | None:
    total = metrics.get("accumulated_token_usage")
    if not isinstance(total, dict):
        return None
    latencies = metrics.get("response_latencies")
    costs = metrics.get("costs")
    cost = metrics.get("accumulated_cost")
    return RecordedTotals(
        calls=len(latencies) if isinstance(latencies, list) else None,
        input_tokens=where.count(total, "prompt_tokens", "metrics.accumulated_token_usage", 0),
        output_tokens=where.count(total, "completion_tokens", "metrics.accumulated_token_usage", 0),
        # no cost entries: the gateway's price was unknown, so 0.0 means "not recorded"
        cost=where.money(cost, "metrics.accumulated_cost") if costs or cost else None,
    )
