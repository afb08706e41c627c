"""Model registry: context window, output limit, tokenizer, framing and prices per model.

Two sources are combined, each for what it knows best:

* **genai-prices** (its embedded data snapshot only; :mod:`~ctxbudget.budget.genai` never
  starts its network auto-update) gives prices and, where it has one, the context window.
* **Provider profiles** (:mod:`~ctxbudget.budget.profiles`, read from ``data/profiles.toml``)
  give what genai-prices does not carry: the maximum output tokens, the tokenizer, the
  chat-framing family, the estimate factor of proxy tokenizers, and a fallback window.

Explicit settings passed to :func:`resolve_model` always win, so any model (a local Llama, a
fine-tune, a price sheet negotiated with a provider) works without a registry entry. The
name-based helpers here (:func:`family_for_model`, :func:`tokenizer_for_model`...) read the
same profiles, so a model name is matched in one place only.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ctxbudget.billing.prices import Prices
from ctxbudget.budget.genai import genai_lookup
from ctxbudget.budget.profiles import (
    CLAUDE_47_FACTOR,
    CLAUDE_FACTOR,
    FAMILIES,
    GEMINI_FACTOR,
    GENERIC_DEFAULTS,
    PROFILES,
    PROVIDER_DEFAULTS,
    Family,
    ModelProfile,
    known_model_names,
    match_profile,
    profile_named,
    split_provider,
)
from ctxbudget.errors import ConfigError, UnknownModelError
from ctxbudget.tokens.backends import EstimatingTokenizer, TiktokenTokenizer, Tokenizer
from ctxbudget.tokens.encodings import EncodingName
from ctxbudget.tokens.framing import FRAMINGS, Framing
from ctxbudget.tokens.resolve import openai_framing

__all__ = [
    "CLAUDE_47_FACTOR",
    "CLAUDE_FACTOR",
    "GEMINI_FACTOR",
    "PROFILES",
    "Family",
    "ModelProfile",
    "ModelSpec",
    "Prices",
    "encoding_for_model",
    "family_for_model",
    "framing_for_model",
    "known_model_names",
    "list_models",
    "resolve_model",
    "tokenizer_for_model",
]

_ENCODINGS = ("o200k_base", "cl100k_base")
_ESTIMATE = "estimate:"
_HF = "hf:"
_SUGGESTIONS = ("gpt-4o", "gpt-4.1", "gpt-5", "claude-sonnet-4-5", "gemini-2.5-pro")


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
        if self.family not in FAMILIES:
            raise ConfigError(
                f"model {self.name!r}: family {self.family!r} must be one of {FAMILIES}"
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
    hint, model = split_provider(name.strip())
    key = model.lower()
    profile = match_profile(key)
    lookup_provider = hint or (profile.provider if profile else None)
    when = at or datetime.now(tz=UTC)
    window, listed, pricing_id, genai_id = genai_lookup(key, lookup_provider, when)
    if genai_id is not None and profile_named(genai_id) is not None:
        profile = profile_named(genai_id)  # genai-prices' curated matching beats our prefix match

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
        else PROVIDER_DEFAULTS.get(spec_provider, GENERIC_DEFAULTS)
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


def list_models(*, at: datetime | None = None) -> tuple[ModelSpec, ...]:
    """Every built-in model resolved (limits, tokenizer, prices), by provider then name."""
    ordered = sorted(PROFILES, key=lambda p: (p.provider, p.name))
    return tuple(resolve_model(p.name, at=at) for p in ordered)


def _bare(model: str) -> str:
    """``openai/gpt-4o`` → ``gpt-4o``; ``models/gemini-2.5-pro`` → ``gemini-2.5-pro``."""
    return split_provider(model.strip())[1].rsplit("/", 1)[-1].lower()


def _profile_of(model: str) -> ModelProfile:
    """The profile of ``model`` (``provider/`` prefix ignored); UnknownModelError without one."""
    profile = match_profile(_bare(model))
    if profile is None:
        raise UnknownModelError(model, suggestions=_SUGGESTIONS)
    return profile


def family_for_model(model: str) -> Family:
    """The chat-framing family of ``model``; UnknownModelError when no profile knows it."""
    return _profile_of(model).family


def encoding_for_model(model: str) -> EncodingName:
    """The tiktoken encoding of an exactly tokenized model; UnknownModelError for others."""
    tokenizer = _profile_of(model).tokenizer
    if tokenizer not in _ENCODINGS:
        raise UnknownModelError(model, suggestions=_SUGGESTIONS)
    return tokenizer  # type: ignore[return-value]


def tokenizer_for_model(model: str) -> Tokenizer:
    """OpenAI models: their exact encoding; Claude / Gemini: their family's estimate."""
    profile = _profile_of(model)
    if profile.tokenizer in _ENCODINGS:
        return TiktokenTokenizer.load(profile.tokenizer)
    return EstimatingTokenizer.for_family(profile.family)


def framing_for_model(model: str, family: Family | None = None) -> Framing:
    """The framing rule of ``model``, with honest exactness.

    ``family`` (e.g. from a resolved :class:`ModelSpec`) is used as given; an OpenAI model
    without a profile (an Azure deployment name) gets OpenAI's rule marked estimate.
    """
    family = family or family_for_model(model)
    if family != "openai":
        return FRAMINGS[family]
    bare = _bare(model)
    profile = match_profile(bare)
    if profile is None or profile.tokenizer not in _ENCODINGS:
        return dataclasses.replace(FRAMINGS["openai"], messages_exact=False)
    return openai_framing(bare, profile.tokenizer)  # type: ignore[arg-type]
