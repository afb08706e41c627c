"""Predict what the provider reads from and writes to its prompt cache for a request.

The state is the set of cached prefixes (chained digests, see
:mod:`~ctxbudget.cache.fingerprint`) with their expiry times. Explicit caching (Anthropic)
reads the longest live entry at or up to ``lookback_blocks`` content blocks before a
breakpoint and writes every breakpoint after it; automatic caching (OpenAI) reads the
longest live prefix seen before, in ``step_tokens`` steps from ``min_tokens``. Predictions
are made per block, so they are estimates of what the provider bills; the wrapper
reconciles them with the billed usage after each call.

Committing a request costs its breakpoints (explicit) or a prefix comparison with each
earlier request still alive (automatic), not its length: the clock is assumed never to go
backwards, so the latest request holding a prefix is the one that keeps it alive.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from ctxbudget.billing.usage import Usage
from ctxbudget.cache.fingerprint import Fingerprint
from ctxbudget.cache.rules import CacheRules, Ttl

__all__ = ["CachePrediction", "CacheState"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePrediction:
    """What a request is expected to read from and write to the cache."""

    read_tokens: int
    """Prompt tokens expected to be read from the cache."""
    write_tokens: int
    """Prompt tokens expected to be written (explicit caching only)."""
    input_tokens: int
    """All prompt tokens of the request."""
    ttl: Ttl = "5m"
    """Lifetime of what is written."""

    def as_usage(self) -> Usage:
        """The prediction in the shape of billed usage (output unknown: 0)."""
        write = min(self.write_tokens, self.input_tokens - self.read_tokens)
        return Usage(
            input_tokens=self.input_tokens,
            cache_read_tokens=self.read_tokens,
            cache_write_5m_tokens=write if self.ttl == "5m" else 0,
            cache_write_1h_tokens=write if self.ttl == "1h" else 0,
        )


class CacheState:
    """The provider's cache for one session, as far as ctxbudget can tell."""

    def __init__(self, rules: CacheRules) -> None:
        self.rules = rules
        self._expires: dict[str, float] = {}
        """Explicit mode: chained prefix digest → time (seconds) when the entry expires."""
        self._sent: list[tuple[Fingerprint, float]] = []
        """Automatic mode: requests sent and when their prefixes expire; each prefix of at
        least ``min_tokens`` of each is an entry. None is a prefix of a later one."""
        self._committed = float("-inf")
        """When the last request was committed: entries expired then are gone."""
        self._pruned = 0
        """Entries left after the last pruning of expired ones (explicit mode)."""

    def __len__(self) -> int:
        """Cached prefixes alive when the last request was committed."""
        alive = self._committed
        if self.rules.mode != "automatic":
            return sum(t > alive for t in self._expires.values())
        count = 0
        sent = [fp for fp, t in self._sent if t > alive]
        for n, fp in enumerate(sent):
            shared = max((fp.common_prefix(o) for o in sent[:n]), default=0)
            count += len(fp.chain) - max(_first_cached(fp, self.rules.min_tokens), shared)
        return count

    def is_warm(self, now: float) -> bool:
        """Whether any entry is still alive."""
        if self.rules.mode == "automatic":
            return any(t > now for _, t in self._sent)
        return any(t > now for t in self._expires.values())

    def predict(
        self,
        fp: Fingerprint,
        *,
        now: float,
        breakpoints: Sequence[int] = (),
        ttl: Ttl = "5m",
    ) -> CachePrediction:
        """Expected cache reads and writes for ``fp`` sent at ``now``."""
        read, write = self._plan(fp, now, breakpoints)
        return CachePrediction(
            read_tokens=read, write_tokens=write, input_tokens=fp.tokens, ttl=ttl
        )

    def commit(
        self,
        fp: Fingerprint,
        *,
        now: float,
        breakpoints: Sequence[int] = (),
        ttl: Ttl = "5m",
    ) -> None:
        """Record that ``fp`` was sent at ``now``: its cacheable prefixes are live until TTL."""
        rules = self.rules
        if rules.mode == "none" or not fp.blocks:
            return
        self._committed = now
        seconds = rules.ttl_seconds.get(ttl, next(iter(rules.ttl_seconds.values())))
        if rules.mode == "automatic":
            first = _first_cached(fp, rules.min_tokens)
            cached = first < len(fp.chain)
            # the new request's prefixes expire last: it replaces the requests it extends
            self._sent = [
                (old, t)
                for old, t in self._sent
                if t > now
                and not (
                    cached
                    and fp.common_prefix(old) == len(old.chain)
                    and first <= _first_cached(old, rules.min_tokens)
                )
            ]
            if cached:
                self._sent.append((fp, now + seconds))
            return
        if len(self._expires) > 2 * self._pruned + 64:  # amortized: O(1) per commit
            self._expires = {k: t for k, t in self._expires.items() if t > now}
            self._pruned = len(self._expires)
        hit = self._explicit_hit(fp, now, breakpoints)
        marks = [b for b in breakpoints if fp.cumulative[b] >= rules.min_tokens]
        if hit is not None:
            marks.append(hit)
        for index in marks:
            self._expires[fp.chain[index]] = now + seconds

    def _plan(self, fp: Fingerprint, now: float, breakpoints: Sequence[int]) -> tuple[int, int]:
        rules = self.rules
        if rules.mode == "none" or not fp.blocks:
            return 0, 0
        if rules.mode == "automatic":
            best = 0
            for old, expires in self._sent:
                shared = fp.common_prefix(old) if expires > now else 0
                if shared and old.cumulative[shared - 1] >= rules.min_tokens:
                    best = max(best, fp.cumulative[shared - 1])
            if best < rules.min_tokens:
                return 0, 0
            return best - (best - rules.min_tokens) % rules.step_tokens, 0
        hit = self._explicit_hit(fp, now, breakpoints)
        read = fp.cumulative[hit] if hit is not None else 0
        marks = [b for b in breakpoints if fp.cumulative[b] >= rules.min_tokens]
        last = max(marks, default=-1)
        write = fp.cumulative[last] - read if last >= 0 and fp.cumulative[last] > read else 0
        return read, write

    def _explicit_hit(self, fp: Fingerprint, now: float, breakpoints: Sequence[int]) -> int | None:
        """Index of the longest live entry reachable from a breakpoint, if any."""
        best: int | None = None
        for mark in breakpoints:
            seen = 0
            index = mark
            while index >= 0 and seen <= self.rules.lookback_blocks:
                if (
                    fp.cumulative[index] >= self.rules.min_tokens
                    and self._expires.get(fp.chain[index], 0.0) > now
                ):
                    if best is None or index > best:
                        best = index
                    break
                seen += fp.blocks[index].parts
                index -= 1
        return best


def _first_cached(fp: Fingerprint, min_tokens: int) -> int:
    """Index of the first block whose prefix is at least ``min_tokens`` long."""
    return bisect.bisect_left(fp.cumulative, min_tokens)
