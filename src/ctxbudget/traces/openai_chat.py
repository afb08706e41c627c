"""OpenAI chat message logs: tau-bench trajectories and plain message lists.

Accepted shapes (format ``openai-chat``):

- a JSON array of runs ``{"traj": [messages...], ...}`` (tau-bench
  ``historical_trajectories``): one session per run, named ``file#n``;
- a JSON array of chat messages (objects with a ``role``): one session;
- an object ``{"messages": [...], "tools"?: [...], "model"?: ...}`` (a saved request
  body or conversation): one session, with its tool schemas.

Only the API fields of each message are kept. These logs carry no usage: every
assistant item is a call with ``usage=None``. Tool results are ``tool`` messages, so no
text observations are marked.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ctxbudget.convert import from_openai_chat_tools
from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.traces._common import api_message, recorded_calls
from ctxbudget.traces._read import Document, Where, converting
from ctxbudget.traces.session import Session

__all__ = ["FORMAT", "looks_like", "read"]

FORMAT = "openai-chat"

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and value.get("role") in _ROLES


def looks_like(value: Any) -> bool:
    """Runs with ``traj``, a message list, or an object with chat ``messages``."""
    if isinstance(value, list) and value:
        first = value[0]
        is_run = isinstance(first, dict) and isinstance(first.get("traj"), list)
        return _is_message(first) or is_run
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        messages = value["messages"]
        return bool(messages) and all(_is_message(m) for m in messages[:5])
    return False


def read(doc: Document, name: str) -> list[Session]:
    """The sessions of a tau-bench file, a message list or a conversation object."""
    where = doc.where
    value = doc.value
    if isinstance(value, list) and value and not _is_message(value[0]):
        sessions = []
        for n, entry in enumerate(value):
            run = where.obj(entry, f"[{n}]")
            traj = where.arr(where.field(run, "traj", f"[{n}]"), f"[{n}].traj")
            sessions.append(_session(traj, where, f"{name}#{n}", doc, f"[{n}].traj"))
        return sessions
    if isinstance(value, list):
        return [_session(value, where, name, doc, "")]
    data = where.obj(value, "the file")
    tools = data.get("tools")
    model = data.get("model")
    session = _session(where.arr(data["messages"], "messages"), where, name, doc, "messages")
    if isinstance(tools, list):
        with converting(where):
            specs = tuple(from_openai_chat_tools(tools))
        session = replace(session, tools=specs)
    if isinstance(model, str):
        session = replace(session, model=model)
    return [session]


def _session(messages: list[Any], where: Where, name: str, doc: Document, what: str) -> Session:
    kept = [api_message(where.obj(m, f"{what}[{i}]")) for i, m in enumerate(messages)]
    with converting(where, what or "the file"):
        items = from_openai_chat(kept)
    return Session(
        name=name,
        source=str(doc.path),
        format=FORMAT,
        items=tuple(items),
        calls=recorded_calls(items),
    )
