"""SWE-agent trajectories (``.traj``): ``{"trajectory": [...], "history": [...], "info": {...}}``.

The items come from ``history``, the raw conversation (its API fields only: role and
content, plus tool calls in SWE-agent 1.x function-calling runs; SWE-agent showed the
model a history-processed view, so per-call prompts must be re-estimated).
The log keeps usage per session only: :attr:`Session.totals` holds ``api_calls``,
``tokens_sent``, ``tokens_received`` and ``instance_cost`` (``total_cost`` is cumulative
over a whole batch run and is not used); each assistant item is one call without usage.
The final ``"Exit due to cost limit"`` assistant message stands for the call whose
spending crossed the limit (SWE-agent counts it in ``api_calls``), so it stays a call.

Text-only agent (0.x): the environment's output comes back as a user message. A user message
after an assistant message with an ``action`` is an observation (tool name: the action's
first word — SWE-agent's own commands such as ``open``, ``edit``, ``search_dir`` or a
shell program), unless it is a format-error reminder ("Your output was not formatted
correctly..."), which stays history. Demonstration messages (``is_demo``) are few-shot
examples (component ``EXAMPLES``). The model is read from ``replay_config`` when present,
else from a ``SWE-agent_<model>`` folder or file name (the layout of published runs).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.session.items import Component, Item, item_text
from ctxbudget.traces._common import (
    api_message,
    command_name,
    mark_observations,
    recorded_calls,
)
from ctxbudget.traces._read import Document, Where, converting
from ctxbudget.traces.session import RecordedTotals, Session

__all__ = ["FORMAT", "looks_like", "read"]

FORMAT = "swe-agent"

_FORMAT_ERRORS = (
    "Your output was not formatted correctly",
    "Your bash command contained syntax errors",
    "Your action could not be parsed",
    "Your last output did not use any tool calls",
)
_MODEL_IN_PATH = re.compile(r"SWE-agent_(.+?)(?:__|/|$)")


def looks_like(value: Any) -> bool:
    """A SWE-agent trajectory: an object with ``trajectory`` and ``history`` arrays."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("trajectory"), list)
        and isinstance(value.get("history"), list)
    )


def read(doc: Document, name: str) -> list[Session]:
    """The one session of a SWE-agent trajectory."""
    where = doc.where
    data = where.obj(doc.value, "the trajectory")
    history = where.arr(where.field(data, "history", "trajectory"), "history")
    messages: list[dict[str, Any]] = []
    actions: list[str | None] = []
    demos: set[int] = set()
    for i, raw in enumerate(history):
        message = where.obj(raw, f"history[{i}]")
        role = where.text(message, "role", f"history[{i}]")
        if "content" not in message:
            where.fail(f"missing required field 'history[{i}].content'")
        if message.get("is_demo"):
            demos.add(i)
        action = message.get("action")
        actions.append(action if role == "assistant" and isinstance(action, str) else None)
        messages.append(api_message(message))
    with converting(where):
        items = from_openai_chat(messages)
    items = [
        item.with_(component=Component.EXAMPLES) if i in demos else item
        for i, item in enumerate(items)
    ]
    by_id = {item.id: actions[i] for i, item in enumerate(items)}
    items, observations = mark_observations(items, lambda a, u: _observation(by_id, a, u))
    return [
        Session(
            name=name,
            source=str(doc.path),
            format=FORMAT,
            items=tuple(items),
            calls=recorded_calls(items),
            model=_model(data, doc.path),
            totals=_totals(data, where),
            observations=observations,
        )
    ]


def _observation(actions: dict[str, str | None], assistant: Item, user: Item) -> str | None:
    action = actions.get(assistant.id)
    if not action or not action.strip():
        return None
    if item_text(user).lstrip().startswith(_FORMAT_ERRORS):
        return None
    return command_name(action)


def _totals(data: dict[str, Any], where: Where) -> RecordedTotals | None:
    info = data.get("info")
    stats = info.get("model_stats") if isinstance(info, dict) else None
    if not isinstance(stats, dict):
        return None

    def count(key: str) -> int | None:
        return where.count(stats, key, "info.model_stats") if key in stats else None

    return RecordedTotals(
        calls=count("api_calls"),
        input_tokens=count("tokens_sent"),
        output_tokens=count("tokens_received"),
        cost=where.money(stats.get("instance_cost"), "info.model_stats.instance_cost"),
    )


def _model(data: dict[str, Any], path: Path) -> str | None:
    replay = data.get("replay_config")
    if isinstance(replay, str):
        try:
            replay = json.loads(replay)
        except ValueError:
            replay = None
    if isinstance(replay, dict):
        agent = replay.get("agent")
        model = agent.get("model") if isinstance(agent, dict) else None
        name = model.get("model_name") if isinstance(model, dict) else None
        if isinstance(name, str):
            return name
    found = _MODEL_IN_PATH.search(path.as_posix())
    return found.group(1) if found else None
