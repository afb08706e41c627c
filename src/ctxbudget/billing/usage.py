"""What a provider billed for one call, in one shape whatever the provider.

Each provider reports usage differently: OpenAI's ``prompt_tokens`` include the cached
tokens, Anthropic's ``input_tokens`` exclude both cache reads and cache writes. The mappers
here turn each provider's usage object (an SDK model or a plain dict) into :class:`Usage`,
whose fields say exactly what they contain. A payload that cannot be read raises
:class:`~ctxbudget.errors.ProviderError`; nothing is silently counted as zero except fields
the provider leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ctxbudget.errors import ProviderError

__all__ = [
    "Usage",
    "as_plain",
    "usage_from_anthropic",
    "usage_from_openai_chat",
    "usage_from_openai_responses",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Tokens of one call as billed (or predicted). All counts are tokens."""

    input_tokens: int
    """Every prompt token: uncached input + cache reads + cache writes."""
    cache_read_tokens: int = 0
    """Prompt tokens read from the provider's cache (inside ``input_tokens``)."""
    cache_write_5m_tokens: int = 0
    """Prompt tokens written to a 5-minute cache (inside ``input_tokens``; Anthropic)."""
    cache_write_1h_tokens: int = 0
    """Prompt tokens written to a 1-hour cache (inside ``input_tokens``; Anthropic)."""
    output_tokens: int = 0
    """Generated tokens, reasoning included."""
    reasoning_tokens: int = 0
    """Reasoning tokens (inside ``output_tokens``)."""

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "cache_read_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
            "reasoning_tokens",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ProviderError(f"usage {name}={value!r} must be a non-negative int (tokens)")
        cached = self.cache_read_tokens + self.cache_write_tokens
        if cached > self.input_tokens:
            raise ProviderError(
                f"usage cache tokens ({cached}) exceed input_tokens ({self.input_tokens})"
            )

    @property
    def cache_write_tokens(self) -> int:
        """Prompt tokens written to the cache, any TTL."""
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Prompt tokens neither read from nor written to the cache."""
        return self.input_tokens - self.cache_read_tokens - self.cache_write_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_5m_tokens=self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


def as_plain(value: Any) -> Any:
    """An SDK model (pydantic) as plain dicts and lists; plain values unchanged."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(exclude_none=True)
    return value


def usage_from_openai_chat(usage: Any) -> Usage:
    """Chat Completions ``usage``: ``prompt_tokens`` already include cached tokens."""
    return _openai_usage(usage, "OpenAI chat usage", "prompt_tokens", "completion_tokens")


def usage_from_openai_responses(usage: Any) -> Usage:
    """Responses ``usage``: ``input_tokens`` already include cached tokens."""
    return _openai_usage(usage, "OpenAI responses usage", "input_tokens", "output_tokens")


def _openai_usage(usage: Any, what: str, input_key: str, output_key: str) -> Usage:
    """Both OpenAI APIs: totals plus ``<key>_details`` with cached and reasoning tokens."""
    data = _mapping(usage, what)
    details = _mapping(data.get(f"{input_key}_details") or {}, f"{input_key}_details")
    output = _mapping(data.get(f"{output_key}_details") or {}, f"{output_key}_details")
    return _build(
        what,
        input_tokens=_int(data, input_key),
        cache_read_tokens=_int(details, "cached_tokens", 0),
        output_tokens=_int(data, output_key, 0),
        reasoning_tokens=_int(output, "reasoning_tokens", 0),
    )


def usage_from_anthropic(usage: Any) -> Usage:
    """Messages ``usage``: ``input_tokens`` are only the tokens after the last cache hit/write.

    The 5-minute / 1-hour split comes from ``cache_creation``; without it every write is
    taken as a 5-minute write (the default TTL).
    """
    data = _mapping(usage, "Anthropic usage")
    read = _int(data, "cache_read_input_tokens", 0)
    written = _int(data, "cache_creation_input_tokens", 0)
    split = _mapping(data.get("cache_creation") or {}, "cache_creation")
    one_hour = _int(split, "ephemeral_1h_input_tokens", 0)
    five_min = _int(split, "ephemeral_5m_input_tokens", written - one_hour)
    if one_hour > written:
        raise ProviderError(
            f"Anthropic usage: ephemeral_1h_input_tokens ({one_hour}) exceed "
            f"cache_creation_input_tokens ({written})"
        )
    if five_min + one_hour != written:
        five_min = written - one_hour  # the total is what is billed
    return _build(
        "Anthropic usage",
        input_tokens=_int(data, "input_tokens") + read + written,
        cache_read_tokens=read,
        cache_write_5m_tokens=five_min,
        cache_write_1h_tokens=one_hour,
        output_tokens=_int(data, "output_tokens", 0),
    )


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    value = as_plain(value)
    if not isinstance(value, Mapping):
        raise ProviderError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key)
    if value is None:
        if default is None:
            raise ProviderError(f"usage has no {key!r}; cannot tell what was billed")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProviderError(f"usage {key}={value!r} is not an integer token count")
    return value


def _build(what: str, **fields: int) -> Usage:
    try:
        return Usage(**fields)
    except ProviderError as exc:
        raise ProviderError(f"{what}: {exc}") from exc
