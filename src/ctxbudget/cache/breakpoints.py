"""Anthropic ``cache_control`` breakpoints: where to put them and how to mark a body.

Up to the provider's limit (4), in order of value: the rolling end of the request (so the
next turn reads everything sent now; or, when the manager knows the next request will
change a block, the end of the block before it, so what is about to change is never
written to the cache), the end of the previous request's shared prefix (so
a turn that adds more blocks than the 20-block lookback still reads it), the latest
compaction boundary (the summary or placeholder everything after it was rebuilt on), and
the end of the stable prefix (tools and system prompt, which outlive every compaction).
A breakpoint whose prefix is shorter than the model's minimum is left out: the provider
would neither read nor write it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.cache.fingerprint import Fingerprint
from ctxbudget.cache.rules import CacheRules, Ttl

__all__ = ["choose_breakpoints", "place_anthropic_breakpoints", "strip_cache_control"]

_UNMARKABLE = {"thinking", "redacted_thinking"}
"""Block types Anthropic does not accept ``cache_control`` on."""


def choose_breakpoints(
    fp: Fingerprint,
    rules: CacheRules,
    *,
    stable_end: int | None = None,
    boundary: int | None = None,
    previous_end: int | None = None,
    rolling_end: int | None = None,
) -> tuple[int, ...]:
    """Block indices (ascending) to end a cached prefix at; at most ``max_breakpoints``.

    ``rolling_end``: where the rolling breakpoint goes when not at the last block (the
    block before the first one the next request will change, so it is never written).
    """
    if rules.mode != "explicit" or not fp.blocks or rules.max_breakpoints <= 0:
        return ()
    last = len(fp.blocks) - 1
    rolling = last if rolling_end is None else min(max(rolling_end, 0), last)
    # nothing after the rolling end is marked: what the next request changes stays unwritten
    wanted = [i for i in (rolling, previous_end, boundary, stable_end) if i is None or i <= rolling]
    chosen: list[int] = []
    for index in wanted:
        if index is None or not 0 <= index <= last or index in chosen:
            continue
        if fp.cumulative[index] < rules.min_tokens:
            continue
        chosen.append(index)
        if len(chosen) == rules.max_breakpoints:
            break
    return tuple(sorted(chosen))


def strip_cache_control(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an Anthropic body without any ``cache_control`` (shares unmarked parts; a
    tools or system list with no marker is kept as the same object)."""
    out = dict(body)
    for key in ("tools", "system"):
        value = out.get(key)
        if isinstance(value, list) and any(
            isinstance(b, Mapping) and "cache_control" in b for b in value
        ):
            out[key] = [_unmarked(b) for b in value]
    if isinstance(out.get("messages"), list):
        out["messages"] = [_unmarked_message(m) for m in out["messages"]]
    return out


def place_anthropic_breakpoints(
    body: Mapping[str, Any],
    fp: Fingerprint,
    indices: Sequence[int],
    ttl: Ttl = "5m",
    *,
    stripped: bool = False,
) -> dict[str, Any]:
    """A copy of ``body`` with ``cache_control`` on the last block of each chosen block.

    ``fp`` must be the fingerprint of ``body`` (its labels say where each block is). The
    input body is not changed; only the marked containers are copied. ``stripped``: the
    body has no ``cache_control`` already (it is not stripped again).
    """
    out = dict(body) if stripped else strip_cache_control(body)
    marker: dict[str, Any] = {"type": "ephemeral"}
    if ttl != "5m":
        marker["ttl"] = ttl
    if any(fp.blocks[i].position >= 0 for i in indices):
        out["messages"] = list(out["messages"])  # one copy; the marked messages replaced in it
    for index in indices:
        block = fp.blocks[index]
        if block.label == "tools":
            tools = list(out["tools"])
            tools[-1] = {**tools[-1], "cache_control": dict(marker)}
            out["tools"] = tools
        elif block.label == "system":
            system = out["system"]
            blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
            out["system"] = _mark_last(list(blocks), marker)
        else:
            messages = out["messages"]
            message = dict(messages[block.position])
            content = message.get("content")
            if isinstance(content, str):
                content = [{"type": "text", "text": content}] if content else []
            message["content"] = _mark_last(list(content or []), marker)
            messages[block.position] = message
    return out


def _mark_last(blocks: list[Any], marker: Mapping[str, Any]) -> list[Any]:
    for i in range(len(blocks) - 1, -1, -1):
        block = blocks[i]
        if isinstance(block, Mapping) and block.get("type") not in _UNMARKABLE:
            if block.get("type") == "text" and not block.get("text"):
                continue
            blocks[i] = {**block, "cache_control": dict(marker)}
            break
    return blocks


def _unmarked(block: Any) -> Any:
    if isinstance(block, Mapping) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _unmarked_message(message: Any) -> Any:
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, list) and any(
        isinstance(b, Mapping) and "cache_control" in b for b in content
    ):
        return {**message, "content": [_unmarked(b) for b in content]}
    return message
