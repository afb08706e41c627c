"""Route by meaning with an embedding function the caller supplies (nothing downloaded).

ctxbudget ships no embedding model: none installs from a package registry with its weights
inside and no run-time download that we could vet. Pass any function mapping texts to
vectors (a local sentence-transformers model you installed, a provider's embeddings
endpoint, ...). :func:`hashing_embedder` is a built-in offline stand-in for tests and demos:
a hashed bag of words, lexical and not semantic.

Each route is described by a few example queries; a route's vector is the normalized mean
of its examples'. A query goes to the routes whose cosine similarity reaches ``threshold``
(best ``top_k``); below it, to the defaults with method ``default``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ctxbudget.compaction.strategies._bm25 import terms
from ctxbudget.errors import ConfigError, UsageError
from ctxbudget.routing.decision import RoutingDecision

__all__ = ["Embed", "EmbeddingRouter", "Route", "hashing_embedder"]

Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]
"""Texts → one vector each (all of the same length)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A destination described by example queries."""

    name: str
    """Shown in decisions."""
    examples: tuple[str, ...]
    """Queries that should come here (a handful is enough)."""
    domains: tuple[str, ...] = ()
    """Knowledge domains it routes to."""
    tool_groups: tuple[str, ...] = ()
    """Tool groups it routes to."""


class EmbeddingRouter:
    """Nearest routes by cosine similarity of embeddings."""

    def __init__(
        self,
        routes: Sequence[Route],
        embed: Embed,
        *,
        threshold: float = 0.3,
        top_k: int = 1,
        default_domains: Sequence[str] = (),
        default_groups: Sequence[str] = (),
    ) -> None:
        if not routes:
            raise ConfigError("an embedding router needs at least one route")
        if any(not r.examples for r in routes):
            raise ConfigError("every route needs at least one example query")
        if top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {top_k}")
        self.routes = tuple(routes)
        self.embed = embed
        self.threshold = threshold
        self.top_k = top_k
        self.default_domains = tuple(default_domains)
        self.default_groups = tuple(default_groups)
        self._centroids = [_unit(_mean(self._vectors(r.examples))) for r in self.routes]

    def route(self, query: str) -> RoutingDecision:
        """Where ``query`` goes."""
        (vector,) = self._vectors([query])
        unit = _unit(list(vector))
        similarity = [_dot(unit, c) for c in self._centroids]
        scored = sorted(((v, n) for n, v in enumerate(similarity)), key=lambda sn: (-sn[0], sn[1]))
        chosen = [self.routes[n] for score, n in scored[: self.top_k] if score >= self.threshold]
        scores = tuple((self.routes[n].name, score) for score, n in scored)
        if not chosen:
            return RoutingDecision(
                query=query,
                domains=self.default_domains,
                tool_groups=self.default_groups,
                method="default",
                scores=scores,
            )
        return RoutingDecision(
            query=query,
            domains=_union(r.domains for r in chosen),
            tool_groups=_union(r.tool_groups for r in chosen),
            method="embedding",
            scores=scores,
            matched=tuple(r.name for r in chosen),
        )

    def _vectors(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = [list(map(float, v)) for v in self.embed(list(texts))]
        if len(vectors) != len(texts):
            raise UsageError(
                f"the embedding function returned {len(vectors)} vectors for {len(texts)} texts"
            )
        sizes = {len(v) for v in vectors}
        if len(sizes) > 1 or 0 in sizes:
            raise UsageError("the embedding function must return non-empty vectors of one length")
        return vectors


def hashing_embedder(dimensions: int = 256) -> Embed:
    """An offline, deterministic bag-of-words embedding (feature hashing); lexical only."""
    if dimensions < 8:
        raise ConfigError(f"dimensions must be at least 8, got {dimensions}")

    def embed(texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vector = [0.0] * dimensions
            for term in terms(text):
                digest = hashlib.blake2b(term.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "big") % dimensions
                vector[index] += 1.0 if digest[4] & 1 else -1.0
            out.append(vector)
        return out

    return embed


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _mean(vectors: Sequence[Sequence[float]]) -> list[float]:
    return [sum(column) / len(vectors) for column in zip(*vectors, strict=True)]


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for name in group:
            seen.setdefault(name)
    return tuple(seen)
