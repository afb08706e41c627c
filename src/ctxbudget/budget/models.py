"""Model registry: context window, output limit, tokenizer, framing and prices per model.

Two sources are combined, each for what it knows best:

* **genai-prices** (its embedded data snapshot only; this module never starts its network
  auto-update) gives prices and, where it has one, the context window.
* **Provider profiles** (:data:`PROFILES`, data in this module) give what genai-prices does
  not carry: the maximum output tokens, the tokenizer, the chat-framing family, the
  estimate factor of proxy tokenizers, and a fallback window.

Explicit settings passed to :func:`resolve_model` always win, so any model (a local Llama, a
fine-tune, a price sheet negotiated with a provider) works without a registry entry.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, get_args

from ctxbudget.errors import ConfigError, UnknownModelError

__all__ = [
    "CLAUDE_47_FACTOR",
    "CLAUDE_FACTOR",
    "GEMINI_FACTOR",
    "PROFILES",
    "Family",
    "ModelProfile",
    "ModelSpec",
    "Prices",
    "known_model_names",
    "list_models",
    "resolve_model",
]

Family: TypeAlias = Literal["openai", "anthropic", "gemini", "generic"]
"""Which chat-framing rules (per-message overhead) apply to a model's requests; the same
values as ``ctxbudget.tokens.framing.Family`` (not imported: the registry stays light)."""

_FAMILIES: tuple[str, ...] = get_args(Family)
_ENCODINGS = ("o200k_base", "cl100k_base")
_ESTIMATE = "estimate:"
_HF = "hf:"

CLAUDE_FACTOR = 1.2
"""Claude 3 … Opus 4.6 tokens per o200k_base token: a starting point that calibration corrects.

A published comparison of Claude 3.5 Sonnet and GPT-4o on fixed prompts found Claude's
tokenizer yields about 16% (English prose) to 30% (code) more tokens than o200k_base.
"""
CLAUDE_47_FACTOR = 1.4
"""Claude Opus 4.7 onward: Anthropic's migration notes say the updated tokenizer yields
1.0-1.35x the tokens of the previous one; 1.2 × ~1.17 (the midpoint), rounded."""
GEMINI_FACTOR = 1.0
"""Gemini tokens per o200k_base token: Google documents ~4 characters per token, about
o200k_base's rate on English; a neutral starting point that calibration corrects."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelProfile:
    """What we know about a model family that genai-prices does not carry."""

    name: str
    """Canonical model name, e.g. ``claude-sonnet-4-5`` (dated snapshots match it too)."""
    provider: str
    """Provider id as genai-prices spells it: ``openai``, ``anthropic``, ``google``."""
    max_output_tokens: int
    """The most tokens one response may contain (tokens)."""
    tokenizer: str
    """Tokenizer spec (see :attr:`ModelSpec.tokenizer`)."""
    family: Family
    """Chat-framing family."""
    context_window: int
    """Fallback window (tokens) used when genai-prices has none for the model."""
    estimate_factor: float = 1.0
    """Model tokens per proxy-tokenizer token when ``tokenizer`` is ``estimate:...``."""
    aliases: tuple[str, ...] = ()
    """Other names (genai-prices model ids, ``-latest`` names) that mean this model."""
    source: str = ""
    """Where the output limit and window were read (provider doc or corroborating page)."""


_PROVIDER_DEFAULTS: Mapping[str, tuple[str, Family, float]] = MappingProxyType(
    {
        "openai": ("o200k_base", "openai", 1.0),
        "azure": ("o200k_base", "openai", 1.0),
        "anthropic": ("estimate:o200k_base", "anthropic", CLAUDE_FACTOR),
        "google": ("estimate:o200k_base", "gemini", GEMINI_FACTOR),
    }
)
"""Per provider: tokenizer, framing family and estimate factor for models without a profile."""
_GENERIC_DEFAULTS: tuple[str, Family, float] = ("estimate:o200k_base", "generic", 1.0)


def _p(
    provider: str,
    name: str,
    out: int,
    window: int,
    src: str,
    *,
    enc: str | None = None,
    factor: float | None = None,
    aliases: tuple[str, ...] = (),
) -> ModelProfile:
    tokenizer, family, default_factor = _PROVIDER_DEFAULTS[provider]
    return ModelProfile(
        name=name,
        provider=provider,
        max_output_tokens=out,
        tokenizer=enc or tokenizer,
        family=family,
        context_window=window,
        estimate_factor=default_factor if factor is None else factor,
        aliases=aliases,
        source=src,
    )


_OAI = "platform.openai.com/docs/models/"
_ANT = "docs.anthropic.com/en/docs/about-claude/models"
_GEM = "ai.google.dev/gemini-api/docs/models; cloud.google.com Vertex model cards"

# fmt: off
PROFILES: tuple[ModelProfile, ...] = (
    # OpenAI. Output limits: OpenAI model pages; gpt-4o/-mini also in Azure OpenAI model tables,
    # gpt-4.1/gpt-5/o4-mini also on Vercel AI Gateway model pages, gpt-5.4 on Box's model card.
    _p("openai", "gpt-4o", 16_384, 128_000, _OAI + "gpt-4o"),
    _p("openai", "gpt-4o-2024-05-13", 4_096, 128_000, _OAI + "gpt-4o (first snapshot: 4,096 out)"),
    _p("openai", "gpt-4o-mini", 16_384, 128_000, _OAI + "gpt-4o-mini"),
    _p("openai", "gpt-4.1", 32_768, 1_047_576, _OAI + "gpt-4.1"),
    _p("openai", "gpt-4.1-mini", 32_768, 1_047_576, _OAI + "gpt-4.1-mini"),
    _p("openai", "gpt-4.1-nano", 32_768, 1_047_576, _OAI + "gpt-4.1-nano"),
    _p("openai", "gpt-5", 128_000, 400_000, _OAI + "gpt-5"),
    _p("openai", "gpt-5-mini", 128_000, 400_000, _OAI + "gpt-5-mini"),
    _p("openai", "gpt-5-nano", 128_000, 400_000, _OAI + "gpt-5-nano"),
    _p("openai", "gpt-5.1", 128_000, 400_000, _OAI + "gpt-5.1"),
    _p("openai", "gpt-5.2", 128_000, 400_000, _OAI + "gpt-5.2"),
    _p("openai", "gpt-5.4", 128_000, 1_050_000, _OAI + "gpt-5.4"),
    _p("openai", "o1", 100_000, 200_000, _OAI + "o1"),
    _p("openai", "o3", 100_000, 200_000, _OAI + "o3"),
    _p("openai", "o3-mini", 100_000, 200_000, _OAI + "o3-mini"),
    _p("openai", "o4-mini", 100_000, 200_000, _OAI + "o4-mini"),
    _p("openai", "gpt-4", 8_192, 8_192, _OAI + "gpt-4 (window shared with output)",
       enc="cl100k_base"),
    _p("openai", "gpt-4-turbo", 4_096, 128_000, _OAI + "gpt-4-turbo", enc="cl100k_base",
       aliases=("gpt-4-turbo-preview", "gpt-4-1106-preview", "gpt-4-0125-preview")),
    _p("openai", "gpt-3.5-turbo", 4_096, 16_385, _OAI + "gpt-3.5-turbo", enc="cl100k_base"),
    # Anthropic. Output limits: Anthropic models overview; Opus 4.6+/Sonnet 4.6 at 128K per the
    # @effect/ai-anthropic 4.0.0-beta.106 fix; the tokenizer is not public, so counts are
    # o200k_base estimates scaled by CLAUDE_FACTOR / CLAUDE_47_FACTOR.
    _p("anthropic", "claude-3-haiku", 4_096, 200_000, _ANT + " (legacy)"),
    _p("anthropic", "claude-3-opus", 4_096, 200_000, _ANT + " (legacy)",
       aliases=("claude-3-opus-latest",)),
    _p("anthropic", "claude-3-5-haiku", 8_192, 200_000, _ANT + " (legacy)",
       aliases=("claude-3-5-haiku-latest",)),
    _p("anthropic", "claude-3-5-sonnet", 8_192, 200_000, _ANT + " (legacy)",
       aliases=("claude-3-5-sonnet-latest",)),
    _p("anthropic", "claude-3-7-sonnet", 64_000, 200_000, _ANT + " (128K with a beta header)",
       aliases=("claude-3-7-sonnet-latest",)),
    _p("anthropic", "claude-sonnet-4", 64_000, 200_000, _ANT, aliases=("claude-sonnet-4-0",)),
    _p("anthropic", "claude-opus-4", 32_000, 200_000, _ANT, aliases=("claude-opus-4-0",)),
    _p("anthropic", "claude-opus-4-1", 32_000, 200_000, _ANT),
    _p("anthropic", "claude-sonnet-4-5", 64_000, 200_000, _ANT),
    _p("anthropic", "claude-haiku-4-5", 64_000, 200_000, _ANT),
    _p("anthropic", "claude-opus-4-5", 64_000, 200_000, _ANT),
    _p("anthropic", "claude-sonnet-4-6", 128_000, 1_000_000, _ANT),
    _p("anthropic", "claude-opus-4-6", 128_000, 1_000_000, _ANT),
    _p("anthropic", "claude-opus-4-7", 128_000, 1_000_000, _ANT, factor=CLAUDE_47_FACTOR),
    _p("anthropic", "claude-opus-4-8", 128_000, 1_000_000, _ANT, factor=CLAUDE_47_FACTOR),
    # Google. Gemini's tokenizer is not public either (estimate).
    _p("google", "gemini-2.5-pro", 65_536, 1_048_576, _GEM),
    _p("google", "gemini-2.5-flash", 65_536, 1_048_576, _GEM),
    _p("google", "gemini-2.5-flash-lite", 65_536, 1_048_576, _GEM),
    _p("google", "gemini-2.0-flash", 8_192, 1_048_576, _GEM),
)
# fmt: on

_PROVIDER_ALIASES: Mapping[str, str] = MappingProxyType({"gemini": "google", "vertex_ai": "google"})

_NAME_INDEX: tuple[tuple[str, ModelProfile], ...] = tuple(
    (key, p) for p in PROFILES for key in (p.name, *p.aliases)
)
_BY_NAME: Mapping[str, ModelProfile] = MappingProxyType(dict(_NAME_INDEX))

_SNAPSHOT_SUFFIX = re.compile(
    r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3,4}|latest|preview(?:-\d{2}-\d{2})?"
    r"|exp(?:-\d{2}-\d{2}|-\d{4})?|v\d+(?::\d+)?))*"
)
"""What may follow a profile name: dates, ``-0613``, ``-001``, ``-latest``, ``@20250929``..."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Prices:
    """Prices of one model, in USD per million tokens. ``None`` means not listed, never free."""

    input: Decimal | None = None
    """Uncached input tokens (USD per million tokens)."""
    output: Decimal | None = None
    """Output tokens, reasoning included (USD per million tokens)."""
    cache_read: Decimal | None = None
    """Input tokens read from the prompt cache (USD per million tokens)."""
    cache_write_5m: Decimal | None = None
    """Input tokens written to a 5-minute cache (USD per million tokens); ``None`` where the
    provider lists no separate write price (OpenAI bills cache writes as plain input)."""
    cache_write_1h: Decimal | None = None
    """Input tokens written to a 1-hour cache (USD per million tokens)."""
    tiered_above: int | None = None
    """Input tokens (per request) above which higher tier prices apply; the fields above are
    the base tier. ``None`` when the price is flat."""
    notes: tuple[str, ...] = ()
    """Human notes, e.g. the tier prices this flat view leaves out."""
    source: str = ""
    """Where the prices come from (genai-prices version and model id, or ``override``)."""

    def __post_init__(self) -> None:
        for name in _PRICE_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ConfigError(
                    f"price {name}={value!r} must be a finite, non-negative Decimal in USD per "
                    f"million tokens, e.g. Decimal('2.5'); use None when unknown"
                )

    def with_overrides(self, overrides: Mapping[str, object]) -> Prices:
        """A copy with some prices replaced (numbers or strings become ``Decimal``)."""
        changes: dict[str, Any] = {}
        for key, raw in overrides.items():
            if key not in _PRICE_FIELDS:
                hint = difflib.get_close_matches(str(key), _PRICE_FIELDS, n=1)
                also = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ConfigError(
                    f"unknown price {key!r}{also}; expected some of {', '.join(_PRICE_FIELDS)}"
                )
            changes[key] = _to_decimal(key, raw)
        source = f"{self.source} + override" if self.source else "override"
        return replace(self, source=source, **changes)


_PRICE_FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
_GENAI_KEYS = (
    ("input", "input_mtok"),
    ("output", "output_mtok"),
    ("cache_read", "cache_read_mtok"),
    ("cache_write_5m", "cache_write_mtok"),
    ("cache_write_1h", "cache_write_1h_mtok"),
)


def _to_decimal(key: str, raw: object) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, Decimal | int | float | str):
        raise ConfigError(f"price {key}={raw!r} must be a number or a decimal string")
    try:
        return raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except InvalidOperation:
        raise ConfigError(f"price {key}={raw!r} is not a number") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Everything ctxbudget needs to know about one model."""

    name: str
    """Model name as the provider's API expects it (provider prefix removed)."""
    provider: str
    """``openai``, ``anthropic``, ``google``, or any other provider id."""
    context_window: int
    """Tokens the request, input plus the output reserve, must fit in (tokens)."""
    max_output_tokens: int
    """The most tokens one response may contain, reasoning included (tokens)."""
    tokenizer: str
    """``o200k_base`` / ``cl100k_base`` (tiktoken, exact), ``hf:<path to tokenizer.json>``
    (exact), or ``estimate:<encoding>``: a proxy whose counts are scaled by
    :attr:`estimate_factor` and marked as estimates."""
    family: Family = "generic"
    """Chat-framing family whose per-message overhead rules apply."""
    estimate_factor: float = 1.0
    """Model tokens per proxy token (dimensionless); must be 1.0 for exact tokenizers."""
    prices: Prices | None = None
    """Prices (USD per million tokens), or ``None`` when unknown."""
    profile: str | None = None
    """Name of the built-in profile the limits came from, if any."""
    pricing_id: str | None = None
    """``provider/model`` id in genai-prices the prices and window came from, if any."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("model name must be a non-empty string")
        for label, value in (
            ("context_window", self.context_window),
            ("max_output_tokens", self.max_output_tokens),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"model {self.name!r}: {label} must be a positive int (tokens)")
        if self.max_output_tokens > self.context_window:
            raise ConfigError(
                f"model {self.name!r}: max_output_tokens {self.max_output_tokens} exceeds the "
                f"context window {self.context_window}; lower max_output_tokens"
            )
        _check_tokenizer(self.name, self.tokenizer)
        if self.family not in _FAMILIES:
            raise ConfigError(
                f"model {self.name!r}: family {self.family!r} must be one of {_FAMILIES}"
            )
        factor = self.estimate_factor
        if isinstance(factor, bool) or not isinstance(factor, int | float):
            raise ConfigError(f"model {self.name!r}: estimate_factor must be a number")
        if not math.isfinite(factor) or factor <= 0:
            raise ConfigError(f"model {self.name!r}: estimate_factor must be positive and finite")
        if self.exact_tokenizer and factor != 1.0:
            raise ConfigError(
                f"model {self.name!r}: estimate_factor {factor} applies only to proxy "
                f"tokenizers ('estimate:...'), not to the exact tokenizer {self.tokenizer!r}"
            )

    @property
    def exact_tokenizer(self) -> bool:
        """True when counts come from the model's own tokenizer (not a proxy estimate)."""
        return not self.tokenizer.startswith(_ESTIMATE)

    @property
    def encoding(self) -> str | None:
        """The tiktoken encoding to run (own or proxy), or ``None`` for a HF tokenizer."""
        if self.tokenizer.startswith(_HF):
            return None
        return self.tokenizer.removeprefix(_ESTIMATE)

    @property
    def hf_tokenizer_path(self) -> str | None:
        """Path of the ``tokenizer.json`` for ``hf:`` tokenizers, else ``None``."""
        return self.tokenizer[len(_HF) :] if self.tokenizer.startswith(_HF) else None


def _check_tokenizer(model: str, spec: object) -> None:
    if isinstance(spec, str):
        if spec in _ENCODINGS:
            return
        if spec.startswith(_HF) and spec[len(_HF) :].strip():
            return
        if spec.startswith(_ESTIMATE) and spec[len(_ESTIMATE) :] in _ENCODINGS:
            return
    raise ConfigError(
        f"model {model!r}: tokenizer {spec!r} is not one of 'o200k_base', 'cl100k_base', "
        f"'hf:<path to tokenizer.json>', 'estimate:o200k_base', 'estimate:cl100k_base'"
    )


def _split_provider(name: str) -> tuple[str | None, str]:
    if "/" not in name:
        return None, name
    head, _, rest = name.partition("/")
    head = head.strip().lower()
    return _PROVIDER_ALIASES.get(head, head), rest.strip()


def _match_profile(model: str) -> ModelProfile | None:
    """The profile whose name (or alias) is the longest prefix followed by a snapshot suffix."""
    best: tuple[str, ModelProfile] | None = None
    for key, profile in _NAME_INDEX:
        matches = model == key or (
            model.startswith(key) and _SNAPSHOT_SUFFIX.fullmatch(model[len(key) :]) is not None
        )
        if matches and (best is None or len(key) > len(best[0])):
            best = (key, profile)
    return best[1] if best else None


def _genai_lookup(
    model: str, provider: str | None, at: datetime
) -> tuple[int | None, Prices | None, str | None, str | None]:
    """Window, prices, pricing id and genai model id from the embedded genai-prices data."""
    from genai_prices import __version__ as genai_version
    from genai_prices import data_snapshot
    from genai_prices.types import TieredPrices

    snapshot = data_snapshot.get_snapshot()
    if snapshot.from_auto_update:  # someone started UpdatePrices: use the embedded data only
        from genai_prices.data import providers

        snapshot = data_snapshot.DataSnapshot(providers=providers, from_auto_update=False)
    try:
        found, info = snapshot.find_provider_model(model, None, provider, None)
    except LookupError:
        return None, None, None, None
    pricing_id = f"{found.id}/{info.id}"
    model_price = info.get_prices(at)
    values: dict[str, Decimal] = {}
    notes: list[str] = []
    starts: list[int] = []
    for ours, theirs in _GENAI_KEYS:
        raw = getattr(model_price, theirs, None)
        if isinstance(raw, TieredPrices):
            values[ours] = raw.base
            for tier in raw.tiers:
                starts.append(tier.start)
                notes.append(f"{ours}: {tier.price} per MTok when input exceeds {tier.start}")
        elif isinstance(raw, Decimal):
            values[ours] = raw
    prices = None
    if "input" in values or "output" in values:
        prices = Prices(
            input=values.get("input"),
            output=values.get("output"),
            cache_read=values.get("cache_read"),
            cache_write_5m=values.get("cache_write_5m"),
            cache_write_1h=values.get("cache_write_1h"),
            tiered_above=min(starts) if starts else None,
            notes=tuple(notes),
            source=f"genai-prices {genai_version}: {pricing_id}",
        )
    return info.context_window, prices, pricing_id, info.id


def resolve_model(
    name: str,
    *,
    provider: str | None = None,
    context_window: int | None = None,
    max_output_tokens: int | None = None,
    tokenizer: str | None = None,
    family: Family | None = None,
    estimate_factor: float | None = None,
    prices: Prices | Mapping[str, object] | None = None,
    at: datetime | None = None,
) -> ModelSpec:
    """The :class:`ModelSpec` for ``name``; explicit settings win over the registry.

    ``name`` may carry a provider prefix (``openai/gpt-4o``) and a snapshot suffix
    (``gpt-4o-2024-08-06``, ``claude-sonnet-4-5-20250929``). ``prices`` is either a full
    :class:`Prices` or a mapping of some price fields (e.g. a negotiated price sheet)
    applied over the registry's. ``at`` picks time-dependent prices (default: now).

    Raises :class:`UnknownModelError` (with close names) when the window or the output limit
    is known neither from the registry nor from the arguments.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("model name must be a non-empty string, e.g. 'gpt-4o'")
    hint, model = _split_provider(name.strip())
    key = model.lower()
    profile = _match_profile(key)
    lookup_provider = hint or (profile.provider if profile else None)
    when = at or datetime.now(tz=UTC)
    window, listed, pricing_id, genai_id = _genai_lookup(key, lookup_provider, when)
    if genai_id is not None and genai_id in _BY_NAME:
        profile = _BY_NAME[genai_id]  # genai-prices' curated matching beats our prefix match

    if context_window is not None:
        window = context_window
    elif window is None and profile is not None:
        window = profile.context_window
    max_out = max_output_tokens
    if max_out is None and profile is not None:
        max_out = profile.max_output_tokens
    if window is None or max_out is None:
        raise UnknownModelError(model, suggestions=_suggest(key))

    spec_provider = provider or hint or (profile.provider if profile else None)
    if spec_provider is None:
        spec_provider = pricing_id.split("/", 1)[0] if pricing_id else "custom"
    base_tokenizer, base_family, base_factor = (
        (profile.tokenizer, profile.family, profile.estimate_factor)
        if profile
        else _PROVIDER_DEFAULTS.get(spec_provider, _GENERIC_DEFAULTS)
    )
    spec_tokenizer = tokenizer or base_tokenizer
    if estimate_factor is None:  # a registry factor belongs to its proxy tokenizer only
        estimate_factor = base_factor if spec_tokenizer == base_tokenizer else 1.0
    if isinstance(prices, Prices):
        listed = prices
    elif prices is not None:
        listed = (listed or Prices()).with_overrides(prices)
    return ModelSpec(
        name=model,
        provider=spec_provider,
        context_window=window,
        max_output_tokens=max_out,
        tokenizer=spec_tokenizer,
        family=family or base_family,
        estimate_factor=estimate_factor,
        prices=listed,
        profile=profile.name if profile else None,
        pricing_id=pricing_id,
    )


def _suggest(model: str) -> tuple[str, ...]:
    return tuple(difflib.get_close_matches(model, known_model_names(), n=3, cutoff=0.6))


def known_model_names() -> tuple[str, ...]:
    """Canonical names and aliases of every built-in profile, sorted."""
    return tuple(sorted(_BY_NAME))


def list_models(*, at: datetime | None = None) -> tuple[ModelSpec, ...]:
    """Every built-in model resolved (limits, tokenizer, prices), by provider then name."""
    ordered = sorted(PROFILES, key=lambda p: (p.provider, p.name))
    return tuple(resolve_model(p.name, at=at) for p in ordered)
