"""Bring your own search: wrap a function as the first (broad) stage of retrieval.

The function takes ``(query, limit)`` and returns documents best first, as
:class:`Document` or :class:`Hit` objects, or as dicts with ``id`` and ``text`` (and
optionally ``score``, ``title``, ``domain``). Anything else is a clear UsageError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ctxbudget.errors import UsageError
from ctxbudget.retrieval.documents import Document, Hit

__all__ = ["FunctionSearcher", "SearchFunction"]

SearchFunction = Callable[[str, int], Iterable[Any]]
"""``(query, limit)`` → documents, best first."""


class FunctionSearcher:
    """A user's search function as a searcher."""

    def __init__(self, function: SearchFunction, *, name: str = "search") -> None:
        self.function = function
        self.name = name

    def search(self, query: str, *, limit: int, domains: Sequence[str] = ()) -> list[Hit]:
        """The function's results as hits (domain-filtered when a result has a domain)."""
        hits = [self._hit(raw, n) for n, raw in enumerate(self.function(query, limit))]
        wanted = set(domains)
        return [
            h for h in hits if not wanted or not h.document.domain or h.document.domain in wanted
        ][:limit]

    def _hit(self, raw: Any, rank: int) -> Hit:
        if isinstance(raw, Hit):
            return raw
        if isinstance(raw, Document):
            return Hit(document=raw, score=-float(rank))
        if isinstance(raw, Mapping) and "id" in raw and "text" in raw:
            doc = Document(
                id=str(raw["id"]),
                text=str(raw["text"]),
                title=str(raw.get("title", "")),
                domain=str(raw.get("domain", "")),
            )
            score = raw.get("score")
            return Hit(document=doc, score=float(score) if score is not None else -float(rank))
        raise UsageError(
            f"{self.name} returned {type(raw).__name__} at rank {rank}; expected a Document, "
            "a Hit or a dict with 'id' and 'text'"
        )
