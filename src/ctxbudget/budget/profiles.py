"""Model profiles: what genai-prices does not carry, read once from ``data/profiles.toml``.

A profile gives a model's output limit, tokenizer, chat-framing family, estimate factor and
a fallback window. Names match a profile when they are its name or an alias followed by a
snapshot suffix (a date, ``-0613``, ``-latest``...); the longest match wins. This is the one
place model names are matched: tokenizers and framing are chosen from the profile.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, get_args

__all__ = [
    "CLAUDE_47_FACTOR",
    "CLAUDE_FACTOR",
    "FACTORS",
    "GEMINI_FACTOR",
    "GENERIC_DEFAULTS",
    "PROFILES",
    "PROVIDER_DEFAULTS",
    "Family",
    "ModelProfile",
    "known_model_names",
    "match_profile",
    "profile_named",
    "split_provider",
]

Family: TypeAlias = Literal["openai", "anthropic", "gemini", "generic"]
"""Which chat-framing rules (per-message overhead) apply to a model's requests; the same
values as ``ctxbudget.tokens.framing.Family``."""
FAMILIES: tuple[str, ...] = get_args(Family)


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


def _load() -> dict[str, Any]:
    text = resources.files("ctxbudget.budget").joinpath("data/profiles.toml").read_text("utf-8")
    return tomllib.loads(text)


_DATA = _load()
FACTORS: Mapping[str, float] = MappingProxyType(dict(_DATA["factors"]))
"""Estimate factor by name (``claude``, ``claude_47``, ``gemini``): model tokens per proxy token."""
_FACTORS = FACTORS
CLAUDE_FACTOR = _FACTORS["claude"]
"""Claude 3 … Opus 4.6 tokens per o200k_base token: a starting point that calibration corrects
(see ``data/profiles.toml`` for the measurement behind it)."""
CLAUDE_47_FACTOR = _FACTORS["claude_47"]
"""Claude Opus 4.7 onward (the updated tokenizer yields 1.0-1.35x the previous one's tokens)."""
GEMINI_FACTOR = _FACTORS["gemini"]
"""Gemini tokens per o200k_base token: a neutral starting point that calibration corrects."""

PROVIDER_DEFAULTS: Mapping[str, tuple[str, Family, float]] = MappingProxyType(
    {
        name: (row["tokenizer"], row["family"], _FACTORS.get(row.get("factor", ""), 1.0))
        for name, row in _DATA["providers"].items()
    }
)
"""Per provider: tokenizer, framing family and estimate factor for models without a profile."""
GENERIC_DEFAULTS: tuple[str, Family, float] = ("estimate:o200k_base", "generic", 1.0)
"""Tokenizer, family and factor of a model nobody knows."""


def _profile(row: Mapping[str, Any]) -> ModelProfile:
    tokenizer, family, factor = PROVIDER_DEFAULTS[row["provider"]]
    return ModelProfile(
        name=row["name"],
        provider=row["provider"],
        max_output_tokens=row["max_output_tokens"],
        tokenizer=row.get("tokenizer", tokenizer),
        family=family,
        context_window=row["context_window"],
        estimate_factor=_FACTORS[row["factor"]] if "factor" in row else factor,
        aliases=tuple(row.get("aliases", ())),
        source=row.get("source", ""),
    )


PROFILES: tuple[ModelProfile, ...] = tuple(_profile(row) for row in _DATA["profile"])
"""Every built-in profile, in the data file's order."""

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


def split_provider(name: str) -> tuple[str | None, str]:
    if "/" not in name:
        return None, name
    head, _, rest = name.partition("/")
    head = head.strip().lower()
    return _PROVIDER_ALIASES.get(head, head), rest.strip()


_VENDOR_PREFIX = re.compile(r"^(?:[\w-]+[./:])+(?=claude-|gpt-|o\d|gemini-)")
"""A host's prefix before a model id: ``us.anthropic.``, ``anthropic/``, ``openai/``..."""


def match_profile(model: str) -> ModelProfile | None:
    """The profile whose name (or alias) is the longest prefix followed by a snapshot suffix;
    a host's prefix (``us.anthropic.claude-...``, ``openai/gpt-4o``) is tried without."""
    found = _match(model)
    if found is None and _VENDOR_PREFIX.match(model):
        found = _match(_VENDOR_PREFIX.sub("", model))
    return found


def _match(model: str) -> ModelProfile | None:
    best: tuple[str, ModelProfile] | None = None
    for key, profile in _NAME_INDEX:
        matches = model == key or (
            model.startswith(key) and _SNAPSHOT_SUFFIX.fullmatch(model[len(key) :]) is not None
        )
        if matches and (best is None or len(key) > len(best[0])):
            best = (key, profile)
    return best[1] if best else None


def profile_named(name: str) -> ModelProfile | None:
    """The profile whose name or alias is exactly ``name``."""
    return _BY_NAME.get(name)


def known_model_names() -> tuple[str, ...]:
    """Canonical names and aliases of every built-in profile, sorted."""
    return tuple(sorted(_BY_NAME))
