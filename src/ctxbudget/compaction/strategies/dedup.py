"""Dedup: collapse repeated tool results into a pointer to the latest copy.

Agents re-run the same command (``git status``, ``cat`` of a file they are editing) and
each copy costs full price. When the same tool with the same arguments (JSON compared
parsed, key order ignored) returned the same or nearly the same output, only the latest
copy is kept; each earlier one becomes a placeholder naming it, and stays recallable.
Near means a word-shingle Jaccard similarity of at least ``near_threshold``: cheap,
linear, and blind to a changed timestamp in a long listing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

from ctxbudget.compaction.strategies._mechanical import (
    Content,
    ResultRef,
    call_label,
    replace_item,
    result_refs,
    result_tokens,
    tail_ids,
    with_contents,
)
from ctxbudget.compaction.strategies.base import CompactionInput, editable
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import TextPart, ToolResultPart, part_text
from ctxbudget.session.log import Edit

__all__ = ["DedupConfig", "propose", "similarity"]

_SHINGLE = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class DedupConfig:
    """Collapse earlier copies of a repeated tool result."""

    kind: Literal["dedup"] = "dedup"
    near_threshold: float = 0.9
    """Shingle similarity (0-1] from which two outputs count as the same; 1.0: exact only."""
    min_tokens: int = 30
    """Results smaller than this are left alone (tokens): a placeholder would not pay."""

    def __post_init__(self) -> None:
        if self.kind != "dedup":
            raise ConfigError(f"DedupConfig.kind must be 'dedup', got {self.kind!r}")
        value = self.near_threshold
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"near_threshold must be a number, got {value!r}")
        if not (math.isfinite(value) and 0.0 < value <= 1.0):
            raise ConfigError(f"near_threshold must be in (0, 1] (1.0: exact only), got {value!r}")
        if not isinstance(self.min_tokens, int) or isinstance(self.min_tokens, bool):
            raise ConfigError(f"min_tokens must be an int (tokens), got {self.min_tokens!r}")
        if self.min_tokens < 0:
            raise ConfigError(f"min_tokens must be >= 0 (tokens), got {self.min_tokens}")


def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = text.split()
    if len(words) <= _SHINGLE:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the word 3-shingles of ``a`` and ``b`` (1.0 when equal)."""
    if a == b:
        return 1.0
    sa, sb = _shingles(a), _shingles(b)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 1.0


class _Seen:
    """A result's text with its shingles computed at most once per proposal."""

    __slots__ = ("_shingles", "ref", "text")

    def __init__(self, ref: ResultRef, text: str) -> None:
        self.ref = ref
        self.text = text
        self._shingles: frozenset[tuple[str, ...]] | None = None

    def shingles(self) -> frozenset[tuple[str, ...]]:
        if self._shingles is None:
            self._shingles = _shingles(self.text)
        return self._shingles

    def similarity(self, other: _Seen, threshold: float) -> float:
        """:func:`similarity`, skipped (0.0) when the set sizes alone rule out ``threshold``."""
        if self.text == other.text:
            return 1.0
        sa, sb = self.shingles(), other.shingles()
        small, large = sorted((len(sa), len(sb)))
        if small < threshold * large:  # Jaccard <= |smaller set| / |larger set|
            return 0.0
        union = len(sa | sb)
        return len(sa & sb) / union if union else 1.0


def _key(ref: ResultRef) -> Hashable | None:
    """Tool name and canonical arguments; None for results that cannot be compared."""
    if ref.call is None:
        return None
    content = ref.part.content
    if not isinstance(content, str) and not all(isinstance(p, TextPart) for p in content):
        return None  # images / documents: text alone does not say they are equal
    try:
        args = ("json", json.dumps(json.loads(ref.call.arguments), sort_keys=True))
    except ValueError:
        args = ("raw", ref.call.arguments)
    return (ref.call.name, args)


def _placeholder(ref: ResultRef, tokens: int, kept: ResultRef, score: float) -> str:
    same = "the same output" if score >= 1.0 else f"nearly the same output ({score:.0%} similar)"
    return (
        f"[duplicate tool result removed to save context: {call_label(ref.call)} → "
        f"{tokens:,} tokens; {same} as the later result in {kept.item.id}. "
        f'Full text: recall("{ref.item.id}")]'
    )


def propose(config: DedupConfig, view: CompactionInput) -> tuple[Edit, ...]:
    """Collapse every earlier copy of a repeated result (all of them, once ``need > 0``)."""
    if view.need <= 0:
        return ()
    tail = tail_ids(view)
    groups: dict[Hashable, list[ResultRef]] = {}
    for ref in result_refs(view.items):
        key = _key(ref)
        if key is not None:
            groups.setdefault(key, []).append(ref)
    planned: dict[str, dict[int, Content]] = {}
    for group in groups.values():
        kept: list[_Seen] = []
        for ref in reversed(group):
            seen = _Seen(ref, part_text(ref.part))
            match = max(
                (
                    (seen.similarity(k, config.near_threshold), -n, k.ref)
                    for n, k in enumerate(kept)
                ),
                key=lambda m: (m[0], m[1]),
                default=None,
            )
            if match is None or match[0] < config.near_threshold:
                kept.append(seen)
                continue
            if ref.item.id in tail or not editable(ref.item, view):
                continue
            tokens = result_tokens(view, ref)
            if tokens < config.min_tokens:
                continue
            placeholder = _placeholder(ref, tokens, match[2], match[0])
            probe = ToolResultPart(call_id=ref.part.call_id, content=placeholder)
            if view.count(ref.item.with_(parts=(probe,))) < tokens:
                planned.setdefault(ref.item.id, {})[ref.index] = placeholder
    edits: list[Edit] = []
    for item in view.items:
        contents = planned.get(item.id)
        if contents:
            parts = with_contents(item, contents)
            edits.append(replace_item(item, parts, "dedup", "dedup", "duplicate tool result"))
    return tuple(edits)
