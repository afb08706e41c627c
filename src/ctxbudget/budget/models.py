"""Model registry: context window, output limit, tokenizer, framing and prices per model.

Three sources are combined, each for what it knows best, and every figure says which one
gave it (:class:`FigureSources`):

* **genai-prices** (its embedded data snapshot only; :mod:`~ctxbudget.budget.genai` never
  starts its network auto-update) gives prices and, where it has one, the context window.
* **Provider profiles** (:mod:`~ctxbudget.budget.profiles`, read from ``data/profiles.toml``)
  give what genai-prices does not carry: the maximum output tokens, the tokenizer, the
  chat-framing family, the estimate factor of proxy tokenizers, and a fallback window.
* **Family defaults** (:mod:`~ctxbudget.budget.families`, ``data/families.toml``) fill what
  is still missing for a model the price data knows (``claude-*``, ``gpt-5*``, o-series,
  ``gemini-*``, else a generic default); those figures are estimates and labelled so.

A model nobody knows (no profile, not in the price data) has no window and no prices:
:func:`resolve_model` raises :class:`UnknownModelError` unless its limits are given, and
it is never priced as another model. Explicit settings always win, so any model (a local
Llama, a fine-tune, a negotiated price sheet) works without a registry entry. The name-based
helpers here (:func:`family_for_model`, :func:`tokenizer_for_model`...) read the same
profiles and family defaults, so a model name is matched in one place only.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ctxbudget.billing.prices import Prices
from ctxbudget.budget.families import GENERIC_FAMILY, FamilyDefault, match_family
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
from ctxbudget.budget.sources import (
    EXPLICIT,
    FAMILY_DEFAULT,
    GIVEN,
    PRICE_DATA,
    REGISTRY,
    UNKNOWN,
    FigureSources,
)
from ctxbudget.errors import ConfigError, UnknownModelError
from ctxbudget.tokens.backends import EstimatingTokenizer, TiktokenTokenizer, Tokenizer
from ctxbudget.tokens.encodings import EncodingName
from ctxbudget.tokens.framing import FRAMINGS, Framing
from ctxbudget.tokens.resolve import openai_framing

__all__ = [
    "CLAUDE_47_FACTOR",
    "CLAUDE_FACTOR",
    "FAMILY_DEFAULT",
    "GEMINI_FACTOR",
    "GIVEN",
    "PRICE_DATA",
    "PROFILES",
    "REGISTRY",
    "UNKNOWN",
    "Family",
    "FigureSources",
    "ModelProfile",
    "ModelSpec",
    "Prices",
    "assemble_spec",
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
    sources: FigureSources = EXPLICIT
    """Where the window, output limit, tokenizer and prices come from."""
    family_default: str | None = None
    """The family default (``data/families.toml``) that supplied figures or the tokenizer,
    if any (``generic`` when the price data knows a model of no known family)."""

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

    A model the price data prices but no profile describes gets the window the price data
    gives and its family's defaults for the rest (:attr:`ModelSpec.sources` says which).
    Raises :class:`UnknownModelError` (with close names) when the window or the output limit
    is known neither from the registry nor from the arguments.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("model name must be a non-empty string, e.g. 'gpt-4o'")
    hint, model = split_provider(name.strip())
    key = model.lower()
    profile = match_profile(key)
    lookup_provider = hint or (profile.provider if profile else None)
    when = at or _now()
    window, listed, pricing_id, genai_id = genai_lookup(key, lookup_provider, when)
    if pricing_id is None and hint is None and lookup_provider is not None:  # a host's id
        window, listed, pricing_id, genai_id = genai_lookup(key, None, when)
    if genai_id is not None and profile_named(genai_id) is not None:
        profile = profile_named(genai_id)  # genai-prices' curated matching beats our prefix match
    return assemble_spec(
        model,
        hint=hint,
        profile=profile,
        listed_window=window,
        listed=listed,
        pricing_id=pricing_id,
        provider=provider,
        context_window=context_window,
        max_output_tokens=max_output_tokens,
        tokenizer=tokenizer,
        family=family,
        estimate_factor=estimate_factor,
        prices=prices,
    )


def assemble_spec(
    model: str,
    *,
    hint: str | None,
    profile: ModelProfile | None,
    listed_window: int | None,
    listed: Prices | None,
    pricing_id: str | None,
    provider: str | None = None,
    context_window: int | None = None,
    max_output_tokens: int | None = None,
    tokenizer: str | None = None,
    family: Family | None = None,
    estimate_factor: float | None = None,
    prices: Prices | Mapping[str, object] | None = None,
) -> ModelSpec:
    """A spec from what was looked up (a profile, the price data's row) and the explicit
    settings, each figure labelled with its source (see :func:`resolve_model`)."""
    named = match_family(model) if profile is None else None
    # family limits only for a model the price data knows: nobody's model gets no window
    limits = (named or GENERIC_FAMILY) if profile is None and pricing_id is not None else None
    window, window_from = _window(context_window, listed_window, profile, limits)
    max_out, max_out_from = _max_output(max_output_tokens, window, profile, limits)
    if window is None or max_out is None:
        raise UnknownModelError(model, suggestions=_suggest(model.lower()))

    spec_provider = (
        provider
        or hint
        or (profile.provider if profile else None)
        or (pricing_id.split("/", 1)[0] if pricing_id else None)
        or (named.provider if named else None)
        or "custom"
    )
    base, base_from = _base_tokenizer(profile, named, spec_provider)
    spec_tokenizer = tokenizer or base[0]
    if estimate_factor is None:  # a registry factor belongs to its proxy tokenizer only
        estimate_factor = base[2] if spec_tokenizer == base[0] else 1.0
    prices_from = PRICE_DATA if listed is not None else UNKNOWN
    if isinstance(prices, Prices):
        listed, prices_from = prices, GIVEN
    elif prices is not None:
        prices_from = f"{PRICE_DATA} + {GIVEN}" if listed is not None else GIVEN
        listed = (listed or Prices()).with_overrides(prices)
    return ModelSpec(
        name=model,
        provider=spec_provider,
        context_window=window,
        max_output_tokens=max_out,
        tokenizer=spec_tokenizer,
        family=family or base[1],
        estimate_factor=estimate_factor,
        prices=listed,
        profile=profile.name if profile else None,
        pricing_id=pricing_id,
        sources=FigureSources(
            context_window=window_from,
            max_output_tokens=max_out_from,
            tokenizer=GIVEN if tokenizer else base_from,
            prices=prices_from,
        ),
        family_default=_name_of(limits or named),
    )


def _name_of(family: FamilyDefault | None) -> str | None:
    return family.name if family is not None else None


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _window(
    given: int | None,
    listed: int | None,
    profile: ModelProfile | None,
    family: FamilyDefault | None,
) -> tuple[int | None, str]:
    if given is not None:
        return given, GIVEN
    if listed is not None:
        return listed, PRICE_DATA
    if profile is not None:
        return profile.context_window, REGISTRY
    if family is not None:
        return family.context_window, FAMILY_DEFAULT
    return None, UNKNOWN


def _max_output(
    given: int | None,
    window: int | None,
    profile: ModelProfile | None,
    family: FamilyDefault | None,
) -> tuple[int | None, str]:
    if given is not None:
        return given, GIVEN
    if profile is not None:
        return profile.max_output_tokens, REGISTRY
    if family is not None and window is not None:
        return min(family.max_output_tokens, window), FAMILY_DEFAULT
    return None, UNKNOWN


def _base_tokenizer(
    profile: ModelProfile | None, named: FamilyDefault | None, provider: str
) -> tuple[tuple[str, Family, float], str]:
    """(tokenizer, framing family, estimate factor) and where they come from."""
    if profile is not None:
        return (profile.tokenizer, profile.family, profile.estimate_factor), REGISTRY
    if named is not None:
        base = (named.tokenizer, named.framing, named.estimate_factor)
        label = "family default"
    elif provider in PROVIDER_DEFAULTS:
        base, label = PROVIDER_DEFAULTS[provider], "provider default"
    else:
        base, label = GENERIC_DEFAULTS, "generic default"
    return base, label + (" (estimate)" if base[0].startswith(_ESTIMATE) else "")


def _suggest(model: str) -> tuple[str, ...]:
    return tuple(difflib.get_close_matches(model, known_model_names(), n=3, cutoff=0.6))


def list_models(*, at: datetime | None = None) -> tuple[ModelSpec, ...]:
    """Every built-in model resolved (limits, tokenizer, prices), by provider then name."""
    ordered = sorted(PROFILES, key=lambda p: (p.provider, p.name))
    return tuple(resolve_model(p.name, at=at) for p in ordered)


def _bare(model: str) -> str:
    """``openai/gpt-4o`` → ``gpt-4o``; ``models/gemini-2.5-pro`` → ``gemini-2.5-pro``."""
    return split_provider(model.strip())[1].rsplit("/", 1)[-1].lower()


def _base_of(model: str) -> tuple[str, Family]:
    """(tokenizer, framing family) of ``model`` (``provider/`` prefix ignored) from its
    profile, else its family default; UnknownModelError when neither knows it."""
    bare = _bare(model)
    profile = match_profile(bare)
    if profile is not None:
        return profile.tokenizer, profile.family
    named = match_family(bare)
    if named is None:
        raise UnknownModelError(model, suggestions=_SUGGESTIONS)
    return named.tokenizer, named.framing


def family_for_model(model: str) -> Family:
    """The chat-framing family of ``model``; UnknownModelError when no profile or family
    default knows it."""
    return _base_of(model)[1]


def encoding_for_model(model: str) -> EncodingName:
    """The tiktoken encoding of an exactly tokenized model; UnknownModelError for others."""
    tokenizer = _base_of(model)[0]
    if tokenizer not in _ENCODINGS:
        raise UnknownModelError(model, suggestions=_SUGGESTIONS)
    return tokenizer  # type: ignore[return-value]


def tokenizer_for_model(model: str) -> Tokenizer:
    """OpenAI models: their exact encoding; Claude / Gemini: their family's estimate."""
    tokenizer, family = _base_of(model)
    if tokenizer in _ENCODINGS:
        return TiktokenTokenizer.load(tokenizer)
    return EstimatingTokenizer.for_family(family)


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
