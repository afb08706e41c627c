"""mini-swe-agent trajectories (``*.traj.json``): v1 text actions and v2 tool calls.

``{"trajectory_format": "mini-swe-agent-1" | "mini-swe-agent-1.1", "info": {...},
"messages": [...]}``. The messages are OpenAI chat messages plus harness bookkeeping in
``extra``; only the API fields are kept and the final ``role: "exit"`` record (the
harness's verdict, never sent to a model) is dropped.

- Usage per call is ``assistant.extra.response.usage`` (OpenAI convention: prompt tokens
  include cached ones); the call's cost is ``extra.cost`` (v2) or ``usage.cost`` (v1);
  the model is ``extra.response.model`` (the session's: the first call's, else
  ``info.config.model.model_name``).
- v1 (text actions): the command is the one ```` ```bash ```` block of the assistant
  message and its output comes back as a user message. Such a user message is an
  observation (tool name: the command's first word, e.g. ``cat``) when the assistant
  turn before it held exactly one action — mini-swe-agent's own rule; otherwise it is the
  harness's format-error reminder and stays history.
- v2 (tool calls): results are ``tool`` messages; the user messages after the first
  assistant are format-error reminders ("No tool calls found...") and stay history. The
  responses that caused them were not saved, so ``info.model_stats.api_calls`` can exceed
  the calls imported here (their cost is 0 in the logs we have: the per-call costs still
  add up to ``instance_cost``).
"""

from __future__ import annotations

import re
from typing import Any

from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.session.items import Item, item_text
from ctxbudget.traces._common import (
    CallInfo,
    api_message,
    command_name,
    mark_observations,
    openai_usage,
    recorded_calls,
)
from ctxbudget.traces._read import Document, Where, converting, sub
from ctxbudget.traces.session import RecordedTotals, Session

__all__ = ["FORMAT", "looks_like", "read"]

FORMAT = "mini-swe-agent"

ACTION = re.compile(r"```bash\s*\n(.*?)\n```", re.DOTALL)
"""mini-swe-agent's default action regex (v1)."""


def looks_like(value: Any) -> bool:
    """A mini-swe-agent trajectory: ``messages`` plus its format tag or ``info.mini_version``."""
    if not isinstance(value, dict) or not isinstance(value.get("messages"), list):
        return False
    tag = value.get("trajectory_format")
    info = value.get("info")
    return (isinstance(tag, str) and tag.startswith("mini-swe-agent")) or (
        isinstance(info, dict) and "mini_version" in info
    )


def read(doc: Document, name: str) -> list[Session]:
    """The one session of a mini-swe-agent trajectory."""
    where = doc.where
    data = where.obj(doc.value, "the trajectory")
    raw = where.arr(where.field(data, "messages", "trajectory"), "messages")
    kept: list[dict[str, Any]] = []
    info: dict[int, CallInfo] = {}
    for i, entry in enumerate(raw):
        message = where.obj(entry, f"messages[{i}]")
        role = where.text(message, "role", f"messages[{i}]")
        if role == "exit":
            continue
        if role == "assistant":
            info[len(kept)] = _call(message, where, f"messages[{i}]")
        kept.append(api_message(message))
    with converting(where):
        items = from_openai_chat(kept)
    items, observations = mark_observations(items, _observation)
    meta = sub(data, "info")
    return [
        Session(
            name=name,
            source=str(doc.path),
            format=FORMAT,
            items=tuple(items),
            calls=recorded_calls(items, info),
            model=next((c.model for c in info.values() if c.model), None) or _model(meta),
            totals=_totals(meta, where),
            observations=observations,
        )
    ]


def _call(message: dict[str, Any], where: Where, what: str) -> CallInfo:
    extra = message.get("extra")
    if not isinstance(extra, dict):
        return CallInfo()
    response = extra.get("response")
    if not isinstance(response, dict):
        return CallInfo(cost=where.money(extra.get("cost"), f"{what}.extra.cost"))
    usage = response.get("usage")
    mapped = None
    cost = where.money(extra.get("cost"), f"{what}.extra.cost")
    if isinstance(usage, dict):
        mapped = openai_usage(usage, where, f"{what}.extra.response.usage")
        if cost is None:
            cost = where.money(usage.get("cost"), f"{what}.extra.response.usage.cost")
    model = response.get("model")
    return CallInfo(usage=mapped, cost=cost, model=model if isinstance(model, str) else None)


def _observation(assistant: Item, user: Item) -> str | None:
    actions = ACTION.findall(item_text(assistant))
    if len(actions) != 1:
        return None  # the harness asked again for exactly one action
    return command_name(actions[0])


def _model(meta: dict[str, Any]) -> str | None:
    config = meta.get("config")
    model = config.get("model") if isinstance(config, dict) else None
    name = model.get("model_name") if isinstance(model, dict) else None
    return name if isinstance(name, str) else None


def _totals(meta: dict[str, Any], where: Where) -> RecordedTotals | None:
    stats = meta.get("model_stats")
    if not isinstance(stats, dict):
        return None
    calls = stats.get("api_calls")
    return RecordedTotals(
        calls=calls if isinstance(calls, int) and not isinstance(calls, bool) else None,
        cost=where.money(stats.get("instance_cost"), "info.model_stats.instance_cost"),
    )
