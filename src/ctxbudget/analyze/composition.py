"""Where a session's prompt tokens go: each item's tokens under a named component.

The names are finer than the ledger's components because the question is "which tool is
eating my context": system, tool schemas, user, assistant (text and tool calls), reasoning,
and tool results per tool name. Text-only agents' observations count under the command
that produced them (the importer names it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ctxbudget.session.items import Item, ReasoningPart, part_text
from ctxbudget.tokens.counter import TokenCounter
from ctxbudget.traces.session import Session

__all__ = ["SYSTEM", "TOOL_SCHEMAS", "component_of", "composition_per_call", "item_shares"]

SYSTEM, TOOL_SCHEMAS, USER, ASSISTANT, REASONING = (
    "system",
    "tool schemas",
    "user",
    "assistant",
    "reasoning",
)
FIXED_ORDER = (SYSTEM, TOOL_SCHEMAS, USER, ASSISTANT, REASONING)
"""Stack order of the named components; tool results follow, largest first."""


def tool_results(name: str) -> str:
    """The component name of one tool's results."""
    return f"tool results: {name}"


def component_of(item: Item, tool_names: Mapping[str, str], observations: Mapping[str, str]) -> str:
    """The component of a whole item (assistant reasoning is split off by :func:`item_shares`)."""
    if item.role in ("system", "developer"):
        return SYSTEM
    if item.tool_results:
        return tool_results(tool_names.get(item.tool_results[0].call_id, "unknown"))
    if item.id in observations:
        return tool_results(observations[item.id])
    return ASSISTANT if item.role == "assistant" else USER


def item_shares(
    item: Item,
    counter: TokenCounter,
    tool_names: Mapping[str, str],
    observations: Mapping[str, str],
) -> dict[str, int]:
    """The item's tokens by component (an assistant turn splits into text and reasoning)."""
    total = counter.count_item(item).tokens
    component = component_of(item, tool_names, observations)
    if component != ASSISTANT:
        return {component: total}
    thinking = "".join(part_text(p) for p in item.parts if isinstance(p, ReasoningPart))
    reasoning = min(counter.count_text(thinking).tokens, total) if thinking else 0
    return {ASSISTANT: total - reasoning, REASONING: reasoning} if reasoning else {ASSISTANT: total}


def composition_per_call(
    session: Session, counter: TokenCounter
) -> tuple[dict[str, list[int]], list[int]]:
    """Tokens by component in the prompt of each model call (what the client sent for it:
    :meth:`Session.request`, the whole history before it unless the client compacted its
    own context), and each call's item index. Components absent from the session are left
    out.

    At each of the session's resets the running sum restarts from the tool schemas and the
    system items before it (what :meth:`Session.request` keeps); the item at the reset
    (the client's summary) and what follows are added from there.

    Counts go through ``counter``'s cache: pass the counter the session was replayed with
    (``simulate_session(..., counter=counter)``) and no item is tokenized twice.
    """
    tool_names = {c.id: c.name for item in session.items for c in item.tool_calls}
    schemas = counter.count_tools(session.tools).tokens if session.tools else 0
    running: dict[str, int] = {TOOL_SCHEMAS: schemas} if schemas else {}
    kept = dict(running)  # what survives a reset: the schemas and the system items so far
    resets = set(session.resets)
    per_call: list[dict[str, int]] = []
    positions: list[int] = []
    last = max((n for n, item in enumerate(session.items) if item.role == "assistant"), default=-1)
    for index, item in enumerate(session.items):
        if index in resets:
            running = dict(kept)
        if item.role == "assistant":
            per_call.append(dict(running))
            positions.append(index)
            if index == last:
                break  # what follows the last call is in no prompt: left uncounted
        for name, tokens in item_shares(item, counter, tool_names, session.observations).items():
            running[name] = running.get(name, 0) + tokens
            if item.role == "system":
                kept[name] = kept.get(name, 0) + tokens
    names = _ordered({n for call in per_call for n, t in call.items() if t}, per_call)
    return {n: [call.get(n, 0) for call in per_call] for n in names}, positions


def _ordered(names: set[str], per_call: Sequence[Mapping[str, int]]) -> list[str]:
    """Fixed components first, then tool results by their size in the last call."""
    last = per_call[-1] if per_call else {}
    fixed = [n for n in FIXED_ORDER if n in names]
    rest = sorted(names - set(fixed), key=lambda n: (-last.get(n, 0), n))
    return fixed + rest
