"""Each provider's prompt-cache rules, kept as data (one profile per provider/model).

Anthropic caches only up to ``cache_control`` breakpoints (at most 4 per request, a
20-block lookback for earlier entries, a per-model minimum prefix length, 5-minute or
1-hour TTL). OpenAI caches automatically once a prompt reaches 1,024 tokens, in 128-token
steps. Providers without documented caching get ``mode="none"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ctxbudget.budget.models import ModelSpec

__all__ = ["TTL_SECONDS", "CacheRules", "Ttl", "cache_rules"]

Ttl = Literal["5m", "1h"]
TTL_SECONDS: dict[str, float] = {"5m": 300.0, "1h": 3600.0}
"""Cache lifetimes after the last use, in seconds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheRules:
    """How one model's provider caches prompt prefixes."""

    mode: Literal["explicit", "automatic", "none"]
    """``explicit``: only at breakpoints the request marks; ``automatic``: any prefix."""
    min_tokens: int = 1024
    """Shortest prefix the provider caches (tokens)."""
    step_tokens: int = 1
    """Cached prefixes are a multiple of this many tokens past the minimum (OpenAI: 128)."""
    max_breakpoints: int = 0
    """Most cache breakpoints one request may mark (explicit mode)."""
    lookback_blocks: int = 0
    """How many content blocks before a breakpoint the provider checks for an earlier entry."""
    ttl_seconds: dict[str, float] = field(default_factory=lambda: {"5m": TTL_SECONDS["5m"]})
    """Available lifetimes after the last use (seconds), by name."""


_ANTHROPIC_MIN_TOKENS: tuple[tuple[str, int], ...] = (
    # most specific first; names are matched as substrings of the model name
    ("opus-4-6", 4096),
    ("opus-4-5", 4096),
    ("haiku-4-5", 4096),
    ("sonnet-4-6", 2048),
    ("opus-4-7", 2048),
    ("haiku-3", 2048),
)
"""Minimum cacheable prompt lengths Anthropic documents per model; 1,024 otherwise."""


def cache_rules(model: ModelSpec) -> CacheRules:
    """The cache rules of ``model``'s provider."""
    if model.provider == "anthropic":
        name = model.name.replace(".", "-")
        minimum = next((n for key, n in _ANTHROPIC_MIN_TOKENS if key in name), 1024)
        return CacheRules(
            mode="explicit",
            min_tokens=minimum,
            max_breakpoints=4,
            lookback_blocks=20,
            ttl_seconds=dict(TTL_SECONDS),
        )
    if model.provider == "openai":
        return CacheRules(mode="automatic", min_tokens=1024, step_tokens=128)
    if model.provider == "google":
        return CacheRules(mode="automatic", min_tokens=1024)
    return CacheRules(mode="none")
