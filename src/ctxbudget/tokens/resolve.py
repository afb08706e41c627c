"""From a model name to its family, tokenizer and framing.

OpenAI names map to their encodings as in tiktoken's ``model.py``: gpt-4o, gpt-4.1,
gpt-4.5, gpt-5 and o-series use ``o200k_base``; gpt-4 (incl. -turbo, -32k) and
gpt-3.5-turbo use ``cl100k_base``. The message rule counts as exact only for the families
the OpenAI cookbook checked against the API (gpt-3.5-turbo, gpt-4, gpt-4o, gpt-4o-mini);
later families get the same rule marked estimate until someone verifies them. Claude and
Gemini get estimating tokenizers. A ``provider/`` prefix (``openai/gpt-4o``) is ignored.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

from ctxbudget.errors import ConfigError, UnknownModelError
from ctxbudget.tokens.backends import (
    EstimatingTokenizer,
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
)
from ctxbudget.tokens.encodings import EncodingName
from ctxbudget.tokens.framing import FRAMINGS, Family, Framing, ToolRule

__all__ = [
    "encoding_for_model",
    "family_for_model",
    "framing_for_model",
    "tokenizer_for_model",
    "tokenizer_from_spec",
]

_CL100K = re.compile(r"(gpt-3\.5-turbo|gpt-4)(-|$)")
_O200K = re.compile(r"(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o[134])(-|\.|$)")
_VERIFIED = re.compile(r"(gpt-3\.5-turbo|gpt-4|gpt-4o|gpt-4o-mini)(-|$)")
"""Model lines whose message counts the cookbook checked against the API."""

_IMAGE_TOKENS: Final = (
    ("gpt-4o-mini", 25501, 2833),
    ("gpt-4.1-mini", 1659, 1659),
    ("gpt-4.1-nano", 2520, 2520),
    ("o4-mini", 1762, 1762),
)
"""(prefix, 1024x1024 image, low detail) where OpenAI's image pricing differs from gpt-4o's
765 / 85: gpt-4o-mini scales tiles (2833 + 5667 each); the others count 32px patches with
a multiplier. Guesses for an image of unknown size."""

_SUGGESTIONS: Final = ("gpt-4o", "gpt-4.1", "gpt-5", "claude-sonnet-4-5", "gemini-2.5-pro")


def _bare(model: str) -> str:
    """``openai/gpt-4o`` → ``gpt-4o``; ``models/gemini-2.5-pro`` → ``gemini-2.5-pro``."""
    return model.strip().lower().rsplit("/", 1)[-1]


def family_for_model(model: str) -> Family:
    """The provider family of ``model``; UnknownModelError when we cannot tell."""
    name = _bare(model)
    if name.startswith("claude"):
        return "anthropic"
    if name.startswith("gemini"):
        return "gemini"
    if _O200K.match(name) or _CL100K.match(name):
        return "openai"
    raise UnknownModelError(model, suggestions=_SUGGESTIONS)


def encoding_for_model(model: str) -> EncodingName:
    """The tiktoken encoding of an OpenAI model; UnknownModelError for others."""
    name = _bare(model)
    if _O200K.match(name):
        return "o200k_base"
    if _CL100K.match(name):
        return "cl100k_base"
    raise UnknownModelError(model, suggestions=_SUGGESTIONS)


def framing_for_model(model: str, family: Family | None = None) -> Framing:
    """The framing rule of ``model``, with honest exactness (see module doc).

    ``family`` (e.g. from the model registry) skips guessing it from the name.
    """
    family = family or family_for_model(model)
    if family != "openai":
        return FRAMINGS[family]
    name = _bare(model)
    base = FRAMINGS["openai"]
    if not (_O200K.match(name) or _CL100K.match(name)):
        return dataclasses.replace(base, messages_exact=False)  # e.g. an Azure deployment name
    func_init = 7 if encoding_for_model(name) == "o200k_base" else 10
    image, low = base.image_tokens, base.low_detail_image_tokens
    for prefix, high_tokens, low_tokens in _IMAGE_TOKENS:
        if name.startswith(prefix):
            image, low = high_tokens, low_tokens
            break
    return dataclasses.replace(
        base,
        messages_exact=_VERIFIED.match(name) is not None,
        tool_rule=ToolRule(func_init=func_init),
        image_tokens=image,
        low_detail_image_tokens=low,
    )


def tokenizer_for_model(model: str) -> Tokenizer:
    """OpenAI models: their exact encoding; Claude / Gemini: the default estimate."""
    family = family_for_model(model)
    if family == "openai":
        return TiktokenTokenizer.load(encoding_for_model(model))
    return EstimatingTokenizer.for_family(family)


def tokenizer_from_spec(spec: str, *, factor: float = 1.0) -> Tokenizer:
    """A tokenizer from the registry's spec string (``ModelSpec.tokenizer``).

    ``o200k_base`` / ``cl100k_base``: exact tiktoken; ``hf:<path>``: a tokenizer.json;
    ``estimate:<encoding>``: that encoding times ``factor``.
    """
    if spec.startswith("estimate:"):
        return EstimatingTokenizer(TiktokenTokenizer.load(spec.removeprefix("estimate:")), factor)
    if factor != 1.0:
        raise ConfigError(
            f"factor {factor} applies only to 'estimate:<encoding>' tokenizers, not {spec!r}"
        )
    if spec.startswith("hf:"):
        return HFTokenizer.from_file(spec.removeprefix("hf:"))
    return TiktokenTokenizer.load(spec)
