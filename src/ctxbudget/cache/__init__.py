"""Prompt caching: provider rules as data, request fingerprints, breakpoints, predictions.

Core: may import ``convert``, ``budget``, ``tokens``, ``session``, ``billing``, ``errors``.

Providers bill a cached prefix at a fraction of the input price, so the bytes at the start
of a request are worth money. This package knows each provider's rules
(:mod:`~ctxbudget.cache.rules`), fingerprints a rendered request block by block and names
the first block that changed (:mod:`~ctxbudget.cache.fingerprint`), places Anthropic
``cache_control`` breakpoints (:mod:`~ctxbudget.cache.breakpoints`), and predicts what the
provider will read from and write to its cache (:mod:`~ctxbudget.cache.predictor`).
"""

from ctxbudget.cache.breakpoints import choose_breakpoints, place_anthropic_breakpoints
from ctxbudget.cache.fingerprint import (
    Block,
    CacheBust,
    CacheBustWarning,
    Fingerprint,
    Fingerprinter,
    find_bust,
)
from ctxbudget.cache.predictor import CachePrediction, CacheState
from ctxbudget.cache.rules import CacheRules, cache_rules

__all__ = [
    "Block",
    "CacheBust",
    "CacheBustWarning",
    "CachePrediction",
    "CacheRules",
    "CacheState",
    "Fingerprint",
    "Fingerprinter",
    "cache_rules",
    "choose_breakpoints",
    "find_bust",
    "place_anthropic_breakpoints",
]
