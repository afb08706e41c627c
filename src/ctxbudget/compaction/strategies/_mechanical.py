"""Helpers shared by the mechanical strategies (dedup, truncate, clean, clear, window,
importance).

They find tool calls by id, describe a call in a placeholder, rewrite a tool result's
content in place (same call id, so pairs stay intact), pick the units that may be hidden
without orphaning a call or a result, and share a budget between texts cut head + tail
with the marker that says what went.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ctxbudget.compaction.strategies.base import CompactionInput, derived_id, editable
from ctxbudget.session.items import (
    Component,
    DocumentPart,
    ImagePart,
    Item,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
    part_text,
)
from ctxbudget.session.log import Edit, EditKind
from ctxbudget.session.view import Unit, units

__all__ = [
    "TEXT_OBSERVATION",
    "Content",
    "ResultRef",
    "call_label",
    "calls_by_id",
    "fair_shares",
    "hideable_units",
    "is_text_observation",
    "omission_marker",
    "replace_item",
    "result_refs",
    "result_tokens",
    "tail_ids",
    "with_contents",
]

Content = str | tuple[TextPart | ImagePart | DocumentPart, ...]
"""What a tool result holds: a string, or parts."""


@dataclass(frozen=True, slots=True)
class ResultRef:
    """One tool result in the view: the item carrying it and the part's index there."""

    item: Item
    index: int
    part: ToolResultPart
    call: ToolCallPart | None
    """The call it answers, when that call is in the view."""
    caller: Item | None
    """The assistant item making that call."""


TEXT_OBSERVATION = -1
"""``ResultRef.index`` of a text-only observation: the whole item is the result."""


def is_text_observation(item: Item) -> bool:
    """A text-only agent's observation: environment output sent back as a user message.

    Importers of text-only logs (mini-swe-agent v1, SWE-agent, Terminus) mark these with
    component ``TOOL_RESULTS``; callers can do the same for their own text agents.
    """
    return (
        item.role == "user"
        and item.component is Component.TOOL_RESULTS
        and not item.tool_results
        and any(isinstance(p, TextPart) for p in item.parts)
    )


def calls_by_id(items: Iterable[Item]) -> dict[str, tuple[Item, ToolCallPart]]:
    """Every tool call in ``items`` by call id, with the item making it."""
    return {call.id: (item, call) for item in items for call in item.tool_calls}


def result_refs(items: Iterable[Item], *, text_observations: bool = False) -> list[ResultRef]:
    """Every tool result in ``items``, in view order (and text-only observations, whole,
    with index :data:`TEXT_OBSERVATION`, when asked)."""
    items = tuple(items)
    calls = calls_by_id(items)
    out: list[ResultRef] = []
    for item in items:
        if text_observations and is_text_observation(item):
            whole = ToolResultPart(call_id="", content=item_text(item))
            out.append(ResultRef(item, TEXT_OBSERVATION, whole, None, None))
            continue
        for index, part in enumerate(item.parts):
            if isinstance(part, ToolResultPart):
                caller, call = calls.get(part.call_id, (None, None))
                out.append(ResultRef(item, index, part, call, caller))
    return out


def call_label(call: ToolCallPart | None, limit: int = 80) -> str:
    """``bash {"cmd": "ls"}``: the tool and its arguments, cut to about ``limit`` characters."""
    if call is None:
        return "unknown tool"
    parsed = call.parsed_arguments()
    args = call.arguments if isinstance(parsed, str) else json.dumps(parsed, ensure_ascii=False)
    if len(args) > limit:
        args = args[: limit - 1] + "…"
    return f"{call.name} {args}".strip()


def result_tokens(view: CompactionInput, ref: ResultRef) -> int:
    """Tokens of one result: its item when it is the only part, else the part on its own."""
    if len(ref.item.parts) == 1 or ref.index == TEXT_OBSERVATION:
        return view.count(ref.item)
    return view.count(ref.item.with_(parts=(ref.part,)))


def with_contents(item: Item, contents: Mapping[int, Content]) -> tuple[Part, ...]:
    """``item``'s parts with the tool results at the given indexes given new content (a
    text observation, index :data:`TEXT_OBSERVATION`, becomes one text part)."""
    if TEXT_OBSERVATION in contents:
        content = contents[TEXT_OBSERVATION]
        text = content if isinstance(content, str) else "".join(part_text(p) for p in content)
        return (TextPart(text=text),)
    parts = list(item.parts)
    for index, content in contents.items():
        part = parts[index]
        if isinstance(part, ToolResultPart):
            parts[index] = ToolResultPart(
                call_id=part.call_id,
                content=content,
                is_error=part.is_error,
                provider_details=part.provider_details,
            )
    return tuple(parts)


def replace_item(
    item: Item, parts: tuple[Part, ...], kind: EditKind, id_kind: str, note: str
) -> Edit:
    """An edit putting a copy of ``item`` with new parts (and a derived id) in its place."""
    new = item.with_(id=derived_id(item.id, id_kind), parts=parts)
    return Edit(kind=kind, remove=(item.id,), insert=(new,), note=note)


def tail_ids(view: CompactionInput) -> set[str]:
    """Ids of the items in the latest ``view.keep_last`` units (kept verbatim)."""
    all_units = units(view.items)
    keep = max(view.keep_last, 0)
    return {i for u in all_units[max(len(all_units) - keep, 0) :] for i in u.ids} if keep else set()


def hideable_units(view: CompactionInput, *, keep_latest: int = 0) -> list[Unit]:
    """Units that may be hidden whole: all items editable, outside the latest
    ``max(view.keep_last, keep_latest)`` units, and no call or result partnered outside
    the unit (hiding it cannot orphan anything)."""
    all_units = units(view.items)
    cut = max(len(all_units) - max(view.keep_last, keep_latest, 0), 0)
    holders: dict[str, set[str]] = {}
    for item in view.items:
        for result in item.tool_results:
            holders.setdefault(result.call_id, set()).add(item.id)
    out: list[Unit] = []
    for unit in all_units[:cut]:
        if not all(editable(i, view) for i in unit.items):
            continue
        ids = set(unit.ids)
        calls = {c.id for i in unit.items for c in i.tool_calls}
        answered = {r.call_id for i in unit.items for r in i.tool_results}
        if answered <= calls and all(holders.get(c, set()) <= ids for c in calls):
            out.append(unit)
    return out


def omission_marker(item_id: str) -> Callable[[int], str]:
    """The marker a head + tail cut leaves: how many tokens went, and where they are."""

    def marker(omitted: int) -> str:
        return (
            f"\n\n[… {omitted:,} tokens omitted to save context. "
            f'Full text: recall("{item_id}") …]\n\n'
        )

    return marker


def fair_shares(counts: list[int], budget: int) -> list[int]:
    """Water-filling: small texts keep their size, the large ones split what is left."""
    shares = list(counts)
    left = budget
    order = sorted(range(len(counts)), key=lambda i: (counts[i], i))
    for position, index in enumerate(order):
        fair = left // (len(order) - position)
        if counts[index] > fair:
            for rest, other in enumerate(order[position:]):
                shares[other] = fair + (1 if rest < left - fair * (len(order) - position) else 0)
            return shares
        left -= counts[index]
    return shares
