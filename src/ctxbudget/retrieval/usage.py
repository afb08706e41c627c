"""Which retrieved documents an answer used, and the hit rate over recent turns.

The rule (deterministic, documented so a reviewer can check a verdict by hand): a retrieved
document counts as **used** when

1. the answer cites it: its id appears in ``cited`` (ids the caller parsed from the answer,
   e.g. from the model's citations), or in the answer text as a whole token (``[doc-7]``,
   ``doc-7``); or
2. the answer shares at least ``min_shared`` distinct terms of 4+ characters with the
   document that are not in the query (the question's own words do not count: the answer
   repeats them whatever it read).

The **hit rate** is used / retrieved, summed over the last ``window`` turns that retrieved
anything; None until one has.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ctxbudget.compaction.strategies._bm25 import terms
from ctxbudget.errors import ConfigError
from ctxbudget.retrieval.documents import Document

__all__ = ["HitRate", "TurnUsage", "used_documents"]

MIN_TERM = 4
"""Shortest term (characters) counted as shared content."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnUsage:
    """One turn's retrieval outcome: what entered the context and what the answer used."""

    retrieved: tuple[str, ...]
    """Ids of the documents put in the context this turn."""
    used: tuple[str, ...]
    """Ids of those the answer used (a subset of ``retrieved``, same order)."""

    @property
    def hit_rate(self) -> float | None:
        """used / retrieved for this turn; None when nothing was retrieved."""
        return len(self.used) / len(self.retrieved) if self.retrieved else None


def used_documents(
    answer: str,
    documents: Sequence[Document],
    *,
    query: str = "",
    cited: Sequence[str] = (),
    min_shared: int = 3,
) -> tuple[str, ...]:
    """Ids of ``documents`` the answer used, by the module's rule, in the given order."""
    if min_shared < 1:
        raise ConfigError(f"min_shared must be at least 1, got {min_shared}")
    answer_terms = {t for t in terms(answer) if len(t) >= MIN_TERM}
    answer_terms -= set(terms(query))
    cited_ids = set(cited)
    used = []
    for doc in documents:
        if doc.id in cited_ids or _mentions(answer, doc.id):
            used.append(doc.id)
            continue
        shared = answer_terms & set(terms(f"{doc.title}\n{doc.text}"))
        if len(shared) >= min_shared:
            used.append(doc.id)
    return tuple(used)


def _mentions(text: str, doc_id: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(doc_id) + r"(?![\w-])", text) is not None


class HitRate:
    """The retrieval hit rate over a sliding window of turns."""

    def __init__(self, window: int = 20) -> None:
        if window < 1:
            raise ConfigError(f"window must be at least 1 turn, got {window}")
        self.window = window
        self.turns: deque[TurnUsage] = deque(maxlen=window)
        """The last ``window`` turns that retrieved something."""

    def add(self, turn: TurnUsage) -> None:
        """Record one turn (turns that retrieved nothing are not counted)."""
        if turn.retrieved:
            self.turns.append(turn)

    @property
    def value(self) -> float | None:
        """used / retrieved over the window; None before any turn retrieved anything."""
        retrieved = sum(len(t.retrieved) for t in self.turns)
        return sum(len(t.used) for t in self.turns) / retrieved if retrieved else None
