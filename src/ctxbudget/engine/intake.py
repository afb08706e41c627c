"""What enters the context: caller messages read into items (tool schemas: convert.request).

A pure function of its input: which wire format a list of messages is in is detected (or
given), and item ids are numbered from ``start`` so they stay unique in the session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.convert.anthropic import from_anthropic
from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.convert.openai_responses import from_openai_responses
from ctxbudget.convert.request import Format, has_anthropic_blocks
from ctxbudget.errors import UsageError
from ctxbudget.session.items import Item

__all__ = ["read_messages"]


def read_messages(
    messages: Sequence[Mapping[str, Any] | Item], fmt: Format | None, *, start: int
) -> list[Item]:
    """Items for ``messages`` (dicts in ``fmt``, detected when None; or Items as they are)."""
    if messages and all(isinstance(m, Item) for m in messages):
        return [m for m in messages if isinstance(m, Item)]
    if any(isinstance(m, Item) for m in messages):
        raise UsageError("pass either Item objects or message dicts to extend(), not both")
    dicts = [m for m in messages if not isinstance(m, Item)]
    if fmt == "openai_responses":
        return from_openai_responses(dicts, start=start)
    if fmt == "anthropic" or (fmt is None and has_anthropic_blocks(dicts)):
        system = [m for m in dicts if m.get("role") == "system"]
        rest = [m for m in dicts if m.get("role") != "system"]
        return from_openai_chat(system, start=start) + from_anthropic(
            rest, start=start + len(system)
        )
    if fmt in (None, "openai_chat"):
        return from_openai_chat(list(dicts), start=start)
    raise UsageError(f"unknown format {fmt!r}; expected openai_chat, anthropic or openai_responses")
