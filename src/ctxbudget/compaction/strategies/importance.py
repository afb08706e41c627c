"""Importance: hide the units least relevant to the current task first.

Relevance is BM25 of each unit's text against ``view.task`` (or cosine similarity of
embeddings when an ``embed`` function is injected), blended with recency so that, among
equally irrelevant units, the old ones go first. Unlike a sliding window it can keep an
old, on-topic file read while dropping a recent digression. Deterministic: same view,
same edits (ties go to the older unit).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ctxbudget.compaction.strategies._bm25 import bm25_scores, terms
from ctxbudget.compaction.strategies._mechanical import hideable_units
from ctxbudget.compaction.strategies.base import CompactionInput
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import item_text
from ctxbudget.session.log import Edit
from ctxbudget.session.view import units

__all__ = ["Embed", "ImportanceConfig", "propose", "relevance"]

Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]
"""Texts → one vector each (same length), e.g. a sentence-embedding model."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportanceConfig:
    """Score units by relevance to the task plus recency; hide the lowest first."""

    kind: Literal["importance"] = "importance"
    recency_weight: float = 0.3
    """Share of the score from recency (0: relevance only, 1: a plain sliding window)."""
    embed: Embed | None = field(default=None, compare=False)
    """Embedding function; None: lexical relevance (BM25)."""

    def __post_init__(self) -> None:
        if self.kind != "importance":
            raise ConfigError(f"ImportanceConfig.kind must be 'importance', got {self.kind!r}")
        weight = self.recency_weight
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise ConfigError(f"recency_weight must be a number, got {weight!r}")
        if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
            raise ConfigError(f"recency_weight must be between 0 and 1, got {weight!r}")
        if self.embed is not None and not callable(self.embed):
            raise ConfigError("embed must be a callable taking texts and returning vectors")


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm > 0 else 0.0


def _embedded(embed: Embed, task: str, texts: list[str]) -> list[float]:
    vectors = list(embed([task, *texts]))
    if len(vectors) != len(texts) + 1:
        raise ConfigError(
            f"embed returned {len(vectors)} vectors for {len(texts) + 1} texts; "
            "it must return one vector per text, in order"
        )
    if len({len(v) for v in vectors}) != 1:
        raise ConfigError("embed returned vectors of different lengths; all must be equal")
    query = vectors[0]
    return [min(max(_cosine(query, v), 0.0), 1.0) for v in vectors[1:]]


def relevance(config: ImportanceConfig, task: str, texts: list[str]) -> list[float]:
    """Each text's relevance to ``task`` in [0, 1] (BM25 scaled by the best, or cosine)."""
    if not task.strip() or not texts:
        return [0.0] * len(texts)
    if config.embed is not None:
        return _embedded(config.embed, task, texts)
    scores = bm25_scores(terms(task), [terms(t) for t in texts])
    best = max(scores)
    return [s / best for s in scores] if best > 0 else [0.0] * len(texts)


def propose(config: ImportanceConfig, view: CompactionInput) -> tuple[Edit, ...]:
    """Hide the lowest-scoring units until ``view.need`` tokens are freed."""
    if view.need <= 0:
        return ()
    candidates = hideable_units(view)
    if not candidates:
        return ()
    all_units = units(view.items)
    total = len(all_units)
    rank = {u.start: r for r, u in enumerate(all_units)}
    texts = ["\n".join(item_text(i) for i in u.items) for u in candidates]
    related = relevance(config, view.task, texts)
    weight = config.recency_weight
    scored = []
    for unit, rel in zip(candidates, related, strict=True):
        recency = rank[unit.start] / (total - 1) if total > 1 else 1.0
        scored.append((round((1.0 - weight) * rel + weight * recency, 12), unit.start, unit))
    scored.sort(key=lambda s: (s[0], s[1]))
    edits: list[Edit] = []
    freed = 0
    for score, _, unit in scored:
        tokens = sum(view.count(i) for i in unit.items)
        edits.append(
            Edit(
                kind="hide", remove=unit.ids, note=f"low importance {score:.2f} ({tokens:,} tokens)"
            )
        )
        freed += tokens
        if freed >= view.need:
            break
    return tuple(edits)
