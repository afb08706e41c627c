"""Okapi BM25 over lowercase words, identifiers and paths: relevance without a dependency.

Hand-written on purpose: it is about forty lines, needs no index (a view has at most a
few thousand units, scored once per compaction), and a library (rank_bm25, bm25s) would
add a dependency and its own tokenization for no gain. Pure and deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["bm25_scores", "terms"]

_TERM = re.compile(r"\w+(?:[./:\\-]\w+)*")
_PIECE = re.compile(r"[./:\\\-_]+")


def terms(text: str) -> list[str]:
    """Lowercase terms of ``text``: words, identifiers and paths.

    A compound such as ``src/ctxbudget/session/view.py`` or ``max_tokens`` yields itself and its
    pieces (``src``, ``ctxbudget``, ``view``, ``py``), so a query naming a file matches a
    result mentioning its path, and the other way round.
    """
    out: list[str] = []
    for match in _TERM.finditer(text.lower()):
        word = match.group()
        out.append(word)
        pieces = [p for p in _PIECE.split(word) if p]
        if len(pieces) > 1:
            out.extend(pieces)
    return out


def bm25_scores(
    query: Sequence[str], documents: Sequence[Sequence[str]], *, k1: float = 1.5, b: float = 0.75
) -> list[float]:
    """BM25 score of each document (a list of terms) for the query terms (each used once).

    Uses the non-negative idf ``ln(1 + (N - df + 0.5) / (df + 0.5))``, so a term found in
    every document still counts a little and no score is negative.
    """
    n = len(documents)
    if n == 0:
        return []
    counts = [Counter(doc) for doc in documents]
    lengths = [len(doc) for doc in documents]
    average = sum(lengths) / n or 1.0
    scores = [0.0] * n
    for term in sorted(set(query)):
        df = sum(1 for c in counts if term in c)
        if df == 0:
            continue
        idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        for index, tf_table in enumerate(counts):
            tf = tf_table.get(term, 0)
            if tf:
                norm = k1 * (1.0 - b + b * lengths[index] / average)
                scores[index] += idf * tf * (k1 + 1.0) / (tf + norm)
    return scores
