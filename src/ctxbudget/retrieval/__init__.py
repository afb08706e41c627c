"""Budgeted retrieval: search broadly, rerank, keep what fits the knowledge budget, mark use.

A feature: may import the manager and everything below it, never another feature.

::

    index = BM25Index([Document(id="refunds", text="..."), ...])   # or FunctionSearcher(fn)
    retriever = BudgetedRetriever(index, reranker=None, candidates=50)
    retrieval = retriever.retrieve(manager, user_message)   # knowledge items, within budget
    ... call the model ...
    turn = retriever.mark_used(answer)   # TurnUsage(retrieved, used); retriever.hit_rate.value

See docs/scoping.md.
"""

from ctxbudget.retrieval.adapters import FunctionSearcher, SearchFunction
from ctxbudget.retrieval.bm25 import BM25Index, bm25_rerank
from ctxbudget.retrieval.documents import Document, Hit
from ctxbudget.retrieval.retriever import BudgetedRetriever, Reranker, Retrieval, Searcher
from ctxbudget.retrieval.usage import HitRate, TurnUsage, used_documents

__all__ = [
    "BM25Index",
    "BudgetedRetriever",
    "Document",
    "FunctionSearcher",
    "Hit",
    "HitRate",
    "Reranker",
    "Retrieval",
    "SearchFunction",
    "Searcher",
    "TurnUsage",
    "bm25_rerank",
    "used_documents",
]
