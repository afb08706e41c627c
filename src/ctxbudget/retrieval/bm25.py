"""A lexical index over documents the user adds: BM25, no dependency, fully offline.

Scoring is the BM25 of :mod:`ctxbudget.compaction.strategies._bm25` (shared with the importance
strategy), over its term splitter (words, identifiers and paths with their pieces). Term
lists are kept per document, so adding is one split and a search scores the documents of
the asked domains.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ctxbudget.compaction.strategies._bm25 import bm25_scores, terms
from ctxbudget.errors import UsageError
from ctxbudget.retrieval.documents import Document, Hit

__all__ = ["BM25Index", "bm25_rerank"]


class BM25Index:
    """Documents in insertion order, searchable by BM25."""

    def __init__(self, documents: Iterable[Document] = ()) -> None:
        self._docs: dict[str, Document] = {}
        self._terms: dict[str, list[str]] = {}
        self.add(documents)

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._docs

    def add(self, documents: Iterable[Document]) -> None:
        """Add documents; an id already present is a UsageError (use ``replace``)."""
        for doc in documents:
            if doc.id in self._docs:
                raise UsageError(f"document {doc.id!r} is already indexed; use replace()")
            self._put(doc)

    def replace(self, document: Document) -> None:
        """Add or overwrite one document."""
        self._put(document)

    def remove(self, doc_id: str) -> Document:
        """Take a document out of the index."""
        if doc_id not in self._docs:
            raise UsageError(f"document {doc_id!r} is not indexed")
        del self._terms[doc_id]
        return self._docs.pop(doc_id)

    def get(self, doc_id: str) -> Document:
        """The document with ``doc_id``."""
        if doc_id not in self._docs:
            raise UsageError(f"document {doc_id!r} is not indexed")
        return self._docs[doc_id]

    def search(self, query: str, *, limit: int, domains: Sequence[str] = ()) -> list[Hit]:
        """The best ``limit`` documents for ``query`` (score > 0), in ``domains`` if given."""
        wanted = set(domains)
        pool = [d for d in self._docs.values() if not wanted or not d.domain or d.domain in wanted]
        scores = bm25_scores(terms(query), [self._terms[d.id] for d in pool])
        ranked = sorted(
            ((s, n) for n, s in enumerate(scores) if s > 0), key=lambda sn: (-sn[0], sn[1])
        )
        return [Hit(document=pool[n], score=s) for s, n in ranked[:limit]]

    def _put(self, doc: Document) -> None:
        self._docs[doc.id] = doc
        self._terms[doc.id] = terms(f"{doc.title}\n{doc.text}")


def bm25_rerank(query: str, hits: Sequence[Hit]) -> list[Hit]:
    """Rescore candidates by BM25 among themselves (e.g. after a vector search); stable."""
    scores = bm25_scores(
        terms(query), [terms(f"{h.document.title}\n{h.document.text}") for h in hits]
    )
    order = sorted(range(len(hits)), key=lambda n: (-scores[n], n))
    return [Hit(document=hits[n].document, score=scores[n]) for n in order]
