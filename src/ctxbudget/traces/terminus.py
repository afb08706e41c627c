"""Terminus-2 (Harbor) chat logs: a ``prompt.json`` with the full history, a ``response.json``.

``prompt.json`` is ``{"messages": [{"role", "content"}...]}``: the request of the agent's
last model call, so the whole conversation up to it. ``response.json`` beside it
(``{"role": "assistant", "content"}``) is that call's answer; it is appended as the last
assistant item, so every call of the session is an assistant item. Naming either file of
the pair imports the pair; a directory walk imports each pair once (from its prompt).
These logs carry no usage.

Text-only agent: the first user message holds the system prompt and the task, and the
terminal comes back as user messages. A user message after the first assistant one is an
observation when it is terminal output (``New Terminal Output:`` / ``Current Terminal
Screen:``, tool name ``terminal``) or the text of a skill the agent loaded
(``Loaded skill:``, tool name ``load_skill``); anything else (harness warnings about a
malformed response...) stays history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.session.items import Item, item_text
from ctxbudget.traces._common import api_message, mark_observations, recorded_calls
from ctxbudget.traces._read import Document, converting, read_document
from ctxbudget.traces.session import Session

__all__ = ["FORMAT", "looks_like", "looks_like_response", "prompt_of", "read"]

FORMAT = "terminus"

_TERMINAL = ("New Terminal Output:", "Current Terminal Screen:")
_SKILL = "Loaded skill:"


def looks_like(value: Any, path: Path) -> bool:
    """A terminus prompt: only ``messages`` of role/content strings, with terminal output in
    it or named ``prompt.json``."""
    if not isinstance(value, dict) or set(value) != {"messages"}:
        return False
    messages = value["messages"]
    if not isinstance(messages, list) or not messages:
        return False
    if not all(
        isinstance(m, dict) and set(m) == {"role", "content"} and isinstance(m["content"], str)
        for m in messages
    ):
        return False
    return path.name.endswith("prompt.json") or any(
        m["role"] == "user" and m["content"].startswith(_TERMINAL) for m in messages
    )


def prompt_of(path: Path) -> Path:
    """The ``prompt.json`` beside a ``response.json``."""
    return path.with_name(path.name[: -len("response.json")] + "prompt.json")


def looks_like_response(value: Any, path: Path) -> bool:
    """The ``response.json`` half of a pair (its prompt exists beside it)."""
    return (
        path.name.endswith("response.json")
        and isinstance(value, dict)
        and value.get("role") == "assistant"
        and isinstance(value.get("content"), str)
        and prompt_of(path).is_file()
    )


def read(doc: Document, name: str) -> list[Session]:
    """The session of a prompt/response pair, given either file."""
    if looks_like_response(doc.value, doc.path):
        prompt = prompt_of(doc.path)
        return read(read_document(prompt), name[: -len("response.json")] + "prompt.json")
    where = doc.where
    data = where.obj(doc.value, "the prompt")
    messages = [
        api_message(where.obj(m, f"messages[{i}]"))
        for i, m in enumerate(where.arr(data.get("messages"), "messages"))
    ]
    response_path = doc.path.with_name(doc.path.name[: -len("prompt.json")] + "response.json")
    if doc.path.name.endswith("prompt.json") and response_path.is_file():
        response = read_document(response_path)
        reply = response.where.obj(response.value, "the response")
        if reply.get("role") == "assistant" and isinstance(reply.get("content"), str):
            messages.append(api_message(reply))
        else:
            response.where.fail('expected {"role": "assistant", "content": "..."}')
    with converting(where):
        items = from_openai_chat(messages)
    items, observations = mark_observations(items, _observation)
    return [
        Session(
            name=name,
            source=str(doc.path),
            format=FORMAT,
            items=tuple(items),
            calls=recorded_calls(items),
            observations=observations,
        )
    ]


def _observation(assistant: Item, user: Item) -> str | None:
    text = item_text(user)
    if text.startswith(_TERMINAL):
        return "terminal"
    if text.startswith(_SKILL):
        return "load_skill"
    return None
