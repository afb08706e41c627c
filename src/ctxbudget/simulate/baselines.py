"""Baseline context policies: what other systems would send, to measure ctxbudget against.

Each baseline is a pure function from the full history at a model call to the items the
model would see. None of them persists anything: each is re-applied to the untouched
history on every call, as the systems they model do, so a benchmark can replay a recorded
session under each one and compare tokens, cache breaks and retention
(:mod:`ctxbudget.simulate.retention`).

Items left alone are returned as the same objects; a masked item keeps its id, role,
component and exchange, and a tool result stays a tool result with the same call id, so
no call or result is ever orphaned. Pinned items are never touched (our invariant: they
reach the model verbatim), which the modelled systems cannot express but traces never use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeAlias

from ctxbudget.errors import ConfigError
from ctxbudget.session.items import Item, Part, TextPart, ToolResultPart, item_text, part_text
from ctxbudget.simulate.retention import task_length

__all__ = [
    "BASELINES",
    "Baseline",
    "baseline",
    "clear_tool_uses",
    "full_history",
    "mask_observations",
]

Baseline: TypeAlias = Callable[..., list[Item]]
"""A baseline: the history at a call (plus its own settings) → the items the model sees."""

MASK_PLACEHOLDER = "Old environment output: ({lines} lines omitted)"
"""Worded like SWE-agent's elided observations; ``{lines}`` is the original's line count."""


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{name} must be an int >= 0, got {value!r}")


def _check_placeholder(value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"placeholder must be a str, got {value!r}")


def _fill(placeholder: str, original: str) -> str:
    """``placeholder`` with ``{lines}`` → the original's line count (runs every call: fast)."""
    if "{lines}" not in placeholder:
        return placeholder
    lines = original.count("\n") + (not original.endswith("\n")) if original else 0
    return placeholder.replace("{lines}", str(lines))


def full_history(items: Sequence[Item]) -> list[Item]:
    """No context management: the model sees the whole history (the upper bound on tokens)."""
    return list(items)


def _observation_turns(items: Sequence[Item]) -> list[tuple[int, str]]:
    """``(index, turn)`` of every observation, in order.

    With tool calls anywhere in the history, observations are the items carrying tool
    results, and their turn is the assistant item whose call they answer (parallel calls'
    results share it). Without any (text-only agents such as mini-swe-agent v1, SWE-agent,
    Terminus), observations are the user items after the task, one turn each.
    """
    if any(item.tool_calls or item.tool_results for item in items):
        caller: dict[str, str] = {}
        out: list[tuple[int, str]] = []
        for index, item in enumerate(items):
            for call in item.tool_calls:
                caller[call.id] = item.id
            if item.tool_results:
                out.append((index, caller.get(item.tool_results[0].call_id, item.id)))
        return out
    start = task_length(items)
    return [(n, items[n].id) for n in range(start, len(items)) if items[n].role == "user"]


def _masked_result(part: Part, placeholder: str) -> Part:
    if not isinstance(part, ToolResultPart):
        return part
    return replace(part, content=_fill(placeholder, part_text(part)))


def mask_observations(
    items: Sequence[Item], keep_last: int = 10, placeholder: str = MASK_PLACEHOLDER
) -> list[Item]:
    """Observation masking as in "The Complexity Trap" (Lindenbauer et al., 2025).

    Every observation older than the latest ``keep_last`` turns (the paper's M = 10) is
    replaced by ``placeholder`` (``{lines}`` → the original's line count); the agent's
    reasoning and actions stay verbatim, and so do the system prompt and the task.

    Observations are tool results when the session uses tool calls; in text-only sessions
    (mini-swe-agent v1, SWE-agent, Terminus: commands in the assistant's text, output
    sent back as user messages) they are the user items after the task, i.e. after
    everything before the first assistant item. Counting is by turn, so the results of one
    turn's parallel calls are kept or masked together. In a tool result only the result
    content changes (same call id, no orphan); other parts of its item (an Anthropic user
    turn's text) stay. A text-only observation becomes one text part.
    """
    _check_count("keep_last", keep_last)
    _check_placeholder(placeholder)
    out = list(items)
    observations = _observation_turns(out)
    turns = list(dict.fromkeys(turn for _, turn in observations))
    masked = set(turns[: max(len(turns) - keep_last, 0)])
    for index, turn in observations:
        item = out[index]
        if turn not in masked or item.pinned:
            continue
        if item.tool_results:
            parts = tuple(_masked_result(p, placeholder) for p in item.parts)
        else:
            parts = (TextPart(text=_fill(placeholder, item_text(item))),)
        out[index] = item.with_(parts=parts)
    return out


def clear_tool_uses(
    items: Sequence[Item],
    count: Callable[[Sequence[Item]], int],
    trigger: int = 100_000,
    keep: int = 3,
    placeholder: str = "[cleared]",
) -> list[Item]:
    """LangChain v1's ``ContextEditingMiddleware`` with its default ``ClearToolUsesEdit``.

    Modelled from LangChain's documentation: on every model call, when the request's
    input tokens (``count(items)``) exceed ``trigger`` (100,000), every tool result but the
    latest ``keep`` (3) gets ``placeholder`` ("[cleared]") as its content. The edit applies
    to the request only, never to the agent's state, so once a session passes the trigger
    it fires again on every hop, and as new results arrive the cleared boundary moves: the
    prompt prefix changes at each call, breaking the provider's cache each time.

    Settings modelled at their defaults: ``clear_at_least=0``, ``clear_tool_inputs=False``,
    ``exclude_tools=()``; counting is left to ``count`` (LangChain's default is an
    approximate count of the messages, system prompt included). Results are counted one by
    one, as LangChain's tool messages are. Text-only sessions have no tool results, so
    this does nothing there, as in LangChain.
    """
    _check_count("trigger", trigger)
    _check_count("keep", keep)
    _check_placeholder(placeholder)
    out = list(items)
    if count(out) <= trigger:
        return out
    results = [(n, j) for n, item in enumerate(out) for j, p in enumerate(item.tool_results)]
    clear: dict[int, int] = {}
    for n, _ in results[: max(len(results) - keep, 0)]:
        clear[n] = clear.get(n, 0) + 1
    for index, how_many in clear.items():
        item = out[index]
        if item.pinned:
            continue
        parts: list[Part] = []
        left = how_many
        for part in item.parts:
            if isinstance(part, ToolResultPart) and left > 0:
                left -= 1
                parts.append(replace(part, content=placeholder))
            else:
                parts.append(part)
        out[index] = item.with_(parts=tuple(parts))
    return out


BASELINES: dict[str, Baseline] = {
    "clear_tool_uses": clear_tool_uses,
    "full_history": full_history,
    "mask_observations": mask_observations,
}
"""Every baseline by name."""


def baseline(name: str) -> Baseline:
    """The baseline called ``name``; raises :class:`ConfigError` naming the known ones."""
    found: Baseline | None = BASELINES.get(name)
    if found is None:
        known = ", ".join(sorted(BASELINES))
        raise ConfigError(f"unknown baseline {name!r}; known baselines: {known}")
    return found
