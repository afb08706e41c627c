"""One session's view of the provider cache: fingerprint, breakpoints, prediction, busts.

The manager hands every prepared body to :meth:`SessionCache.on_request`, which
fingerprints it, places Anthropic breakpoints, predicts the cache reads and writes the
provider will bill, and compares the prefix with the previous request's. A divergence
anywhere but at a compaction the planner chose is a cache bust: a
:class:`~ctxbudget.cache.fingerprint.CacheBustWarning` is issued and counted.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ctxbudget.cache.breakpoints import (
    _unmarked_message,
    choose_breakpoints,
    place_anthropic_breakpoints,
    strip_cache_control,
)
from ctxbudget.cache.fingerprint import (
    CacheBust,
    CacheBustWarning,
    Fingerprint,
    Fingerprinter,
    find_bust,
)
from ctxbudget.cache.predictor import CachePrediction, CacheState
from ctxbudget.cache.rules import CacheRules, Ttl
from ctxbudget.convert.request import Format
from ctxbudget.tokens.counter import TokenCounter

__all__ = ["RequestCache", "SessionCache"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCache:
    """What the cache layer did for one request."""

    fingerprint: Fingerprint
    """The request's blocks and prefix digests."""
    breakpoints: tuple[int, ...]
    """Block indices marked with ``cache_control`` (Anthropic)."""
    prediction: CachePrediction
    """Expected cache reads and writes."""
    prefix_change: CacheBust | None
    """Where the request stopped extending the previous one (None: it extends it)."""
    planned: bool
    """Whether that change came from a compaction the planner chose."""

    @property
    def bust(self) -> CacheBust | None:
        """The unplanned prefix change, if any: the cache-bust detector's finding."""
        return None if self.planned else self.prefix_change


class SessionCache:
    """Per-session cache bookkeeping; pure apart from the clock passed in."""

    def __init__(
        self, rules: CacheRules, counter: TokenCounter, *, ttl: Ttl = "5m", enabled: bool = True
    ) -> None:
        self.rules = rules
        self.ttl = ttl
        self.enabled = enabled
        """Place breakpoints (Anthropic); off leaves the caller's ``cache_control`` alone."""
        self.state = CacheState(rules)
        self.busts = 0
        """Unplanned prefix changes seen so far (the cache-bust metric)."""
        self._fingerprinter = Fingerprinter(counter)
        self._last: Fingerprint | None = None
        self._last_format: Format | None = None
        self._seen: list[Any] = []
        self._stripped: list[Any] = []
        """The messages of the last Anthropic body handed in, and the same without markers."""

    def on_request(
        self,
        body: dict[str, Any],
        fmt: Format,
        *,
        now: float,
        planned: bool,
        boundary: int | None = None,
        next_edit: int | None = None,
        planned_from: int | None = None,
        stable: int = 0,
    ) -> tuple[dict[str, Any], RequestCache]:
        """The body to send (breakpoints placed) and what the cache layer expects of it.

        ``boundary``: block index of the latest compaction boundary, if any.
        ``next_edit``: block index of the first block the next request will change, if
        known; the rolling breakpoint goes before it. ``planned_from``: a prefix change at
        or after this block index was planned too (scheduled edits of the newest blocks),
        while one before it is still a bust. ``stable``: how many leading messages are the
        very objects of the last body of ``fmt`` handed in (0: look at them all); only the
        others are stripped and fingerprinted. The body returned shares the unmarked
        message dicts with the one handed in: both are read-only.
        """
        if fmt == "anthropic" and self.enabled:
            body = self._strip(body, stable)
        fp = self._fingerprinter.fingerprint(body, fmt, stable)
        previous = self._last if self._last_format == fmt else None
        change = find_bust(previous, fp) if previous is not None else None
        if change is not None and planned_from is not None and change.index >= planned_from:
            planned = True
        marks: tuple[int, ...] = ()
        if fmt == "anthropic" and self.enabled:
            shared = previous.common_prefix(fp) if previous is not None else 0
            marks = choose_breakpoints(
                fp,
                self.rules,
                stable_end=_stable_end(fp),
                boundary=boundary,
                previous_end=shared - 1 if shared > 0 else None,
                rolling_end=next_edit - 1 if next_edit is not None else None,
            )
            body = place_anthropic_breakpoints(body, fp, marks, self.ttl, stripped=True)
        elif fmt == "anthropic":
            marks = _caller_marks(body, fp)
        prediction = self.state.predict(fp, now=now, breakpoints=marks, ttl=self.ttl)
        self.state.commit(fp, now=now, breakpoints=marks, ttl=self.ttl)
        info = RequestCache(
            fingerprint=fp,
            breakpoints=marks,
            prediction=prediction,
            prefix_change=change,
            planned=planned,
        )
        if info.bust is not None and self.rules.mode != "none":
            self.busts += 1
            warnings.warn(CacheBustWarning(info.bust.describe()), stacklevel=3)
        self._last, self._last_format = fp, fmt
        return body, info

    def _strip(self, body: dict[str, Any], stable: int) -> dict[str, Any]:
        """:func:`strip_cache_control` of ``body``, looking only at the messages after the
        ``stable`` ones (their stripped versions are those of the last body)."""
        messages = body.get("messages")
        if not isinstance(messages, list):
            return strip_cache_control(body)
        seen, stripped = self._seen, self._stripped
        keep = min(stable, len(seen), len(messages))
        if keep and messages[keep - 1] is not seen[keep - 1]:
            keep = 0  # not the body it was told: strip it all
        del seen[keep:], stripped[keep:]
        tail = messages[keep:]
        seen.extend(tail)
        stripped.extend(_unmarked_message(m) for m in tail)
        out = strip_cache_control({**body, "messages": None})
        out["messages"] = list(stripped)  # the key stays where the body had it
        return out


def _stable_end(fp: Fingerprint) -> int | None:
    """The last leading tools/system block: the prefix that outlives compaction."""
    end = None
    for index, block in enumerate(fp.blocks):
        if block.label not in ("tools", "system"):
            break
        end = index
    return end


def _caller_marks(body: Mapping[str, Any], fp: Fingerprint) -> tuple[int, ...]:
    """Blocks the caller marked with ``cache_control`` themselves (breakpoints disabled)."""
    marks = []
    for index, block in enumerate(fp.blocks):
        raw = body["messages"][block.position] if block.position >= 0 else body.get(block.label)
        if '"cache_control"' in json.dumps(raw):
            marks.append(index)
    return tuple(marks)
