"""Two-stage retrieval trimmed to the knowledge budget, put into the view, then marked.

``retrieve``: a broad search (``candidates`` hits), an optional rerank, then the longest
prefix of the ranking that fits the room left for **knowledge** (its budget, or the room in
the usable window when it is unbudgeted, and at most ``max_tokens`` if given): the first
document that does not fit is dropped with everything after it ("dropping from the tail").
Each kept document becomes one user-role knowledge item, counted with the manager's token
counter; the previous turn's retrieved items are hidden first (a log record, recallable),
so knowledge never accumulates. ``mark_used`` after the response says which were used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ctxbudget.compaction.strategies.base import Proposal
from ctxbudget.errors import ConfigError, UsageError
from ctxbudget.retrieval.documents import Document, Hit
from ctxbudget.retrieval.usage import HitRate, TurnUsage, used_documents
from ctxbudget.session.items import Component, Item, TextPart
from ctxbudget.session.log import Edit

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = ["BudgetedRetriever", "Reranker", "Retrieval", "Searcher"]

Reranker = Callable[[str, Sequence[Hit]], Sequence[Hit]]
"""``(query, candidates)`` → the candidates reordered (and rescored), best first."""


class Searcher(Protocol):
    """The broad first stage: :class:`~.bm25.BM25Index`, :class:`~.adapters.FunctionSearcher`."""

    def search(self, query: str, *, limit: int, domains: Sequence[str] = ()) -> list[Hit]:
        """Up to ``limit`` hits, best first."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Retrieval:
    """What one ``retrieve`` put in the context."""

    query: str
    """The query searched."""
    kept: tuple[Hit, ...]
    """Hits now in the view, in rank order."""
    dropped: tuple[Hit, ...]
    """Ranked hits left out because they did not fit, in rank order."""
    item_ids: tuple[str, ...]
    """Ids of the knowledge items holding ``kept`` (same order)."""
    tokens: int
    """Tokens of those items (the manager's counter)."""
    room: int
    """Tokens knowledge could take this turn."""
    candidates: int
    """Hits the broad search returned."""

    @property
    def ids(self) -> tuple[str, ...]:
        """Document ids of ``kept``."""
        return tuple(h.document.id for h in self.kept)


class BudgetedRetriever:
    """Search, rerank, trim to budget, put in the view; then mark what the answer used."""

    def __init__(
        self,
        searcher: Searcher,
        *,
        reranker: Reranker | None = None,
        candidates: int = 50,
        max_documents: int | None = None,
        max_tokens: int | None = None,
        replace_previous: bool = True,
        window: int = 20,
    ) -> None:
        if candidates < 1:
            raise ConfigError(f"candidates must be at least 1, got {candidates}")
        if max_documents is not None and max_documents < 1:
            raise ConfigError(f"max_documents must be at least 1 or None, got {max_documents}")
        if max_tokens is not None and max_tokens < 0:
            raise ConfigError(f"max_tokens must be non-negative or None, got {max_tokens}")
        self.searcher = searcher
        self.reranker = reranker
        self.candidates = candidates
        self.max_documents = max_documents
        self.max_tokens = max_tokens
        self.replace_previous = replace_previous
        self.hit_rate = HitRate(window)
        """Used / retrieved over the last ``window`` turns that retrieved anything."""
        self.last: Retrieval | None = None
        """The latest retrieval."""
        self.history: list[TurnUsage] = []
        """Every marked turn, in order."""
        self._turn = 0
        self._marked = True

    def retrieve(
        self, manager: ContextManager, query: str, *, domains: Sequence[str] = ()
    ) -> Retrieval:
        """Put the best documents for ``query`` that fit the knowledge room into the view."""
        if manager.view.items and manager.view.items[-1].tool_calls:
            raise UsageError(
                "cannot add retrieved documents between a tool call and its result; append "
                "the results first"
            )
        self._turn += 1
        self._drop_previous(manager)
        hits = list(self.searcher.search(query, limit=self.candidates, domains=domains))
        ranked = list(self.reranker(query, hits)) if self.reranker is not None else hits
        if self.max_documents is not None:
            ranked = ranked[: self.max_documents]
        room = self._room(manager)
        counter = manager.accountant.counter
        kept: list[tuple[Hit, Item]] = []
        used = 0
        for rank, hit in enumerate(ranked):
            item = _item(hit.document, f"kb-{self._turn}-{rank + 1}", manager)
            tokens = counter.count_item(item).tokens
            if used + tokens > room:
                break
            kept.append((hit, item))
            used += tokens
        if kept:
            manager.extend([item for _, item in kept])
        retrieval = Retrieval(
            query=query,
            kept=tuple(h for h, _ in kept),
            dropped=tuple(ranked[len(kept) :]),
            item_ids=tuple(i.id for _, i in kept),
            tokens=used,
            room=room,
            candidates=len(hits),
        )
        self.last, self._marked = retrieval, False
        return retrieval

    def mark_used(
        self,
        answer: str,
        *,
        cited: Sequence[str] = (),
        min_shared: int = 3,
        manager: ContextManager | None = None,
    ) -> TurnUsage:
        """After the response: which of the latest retrieval's documents the answer used.

        The rule is :func:`~.usage.used_documents`'s. The turn feeds :attr:`hit_rate`; with
        ``manager``, it also feeds the manager's retrieval hit rate (its signals and metrics)
        as the ids of the knowledge items that carried the documents.
        """
        if self.last is None or self._marked:
            raise UsageError("mark_used() needs a retrieve() since the last mark_used()")
        docs: list[Document] = [h.document for h in self.last.kept]
        used = used_documents(
            answer, docs, query=self.last.query, cited=cited, min_shared=min_shared
        )
        turn = TurnUsage(retrieved=self.last.ids, used=used)
        self.hit_rate.add(turn)
        self.history.append(turn)
        self._marked = True
        if manager is not None:
            items = dict(zip(self.last.ids, self.last.item_ids, strict=True))
            manager.note_retrieval(self.last.item_ids, [items[d] for d in used if d in items])
        return turn

    def _room(self, manager: ContextManager) -> int:
        row = manager.snapshot().row(Component.KNOWLEDGE)
        if row.remaining is not None:
            room = row.remaining
        else:
            room = manager.accountant.ledger.allocation.usable - manager.total()
        if self.max_tokens is not None:
            room = min(room, self.max_tokens)
        return max(room, 0)

    def _drop_previous(self, manager: ContextManager) -> None:
        if not self.replace_previous or self.last is None or not self.last.item_ids:
            return
        present = {i.id for i in manager.view.items}
        gone = tuple(i for i in self.last.item_ids if i in present)
        if not gone:
            return
        edits = (Edit(kind="hide", remove=gone, note="replaced by a newer retrieval"),)
        record = manager.apply("retrieval", Proposal(edits=edits), "new retrieval turn")
        if isinstance(record, str):
            raise UsageError(f"could not take out the previous retrieval: {record}")


def _item(doc: Document, stem: str, manager: ContextManager) -> Item:
    title = f' title="{doc.title}"' if doc.title else ""
    text = f'<document id="{doc.id}"{title}>\n{doc.text}\n</document>'
    item_id, n = stem, 1
    while item_id in manager.log:
        n += 1
        item_id = f"{stem}-{n}"
    return Item(
        id=item_id, role="user", component=Component.KNOWLEDGE, parts=(TextPart(text=text),)
    )
