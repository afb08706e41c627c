"""Tokenizers from the registry's spec strings, and OpenAI's framing facts per model line.

Which model a name means is the registry's business (``ctxbudget.budget.profiles``, the one
place names are matched); this module turns what the registry says (a tokenizer spec, an
encoding) into tokenizers and framing rules. OpenAI's message rule counts as exact only for
the lines the OpenAI cookbook checked against the API (gpt-3.5-turbo, gpt-4, gpt-4o,
gpt-4o-mini); later lines get the same rule marked estimate until someone verifies them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

from ctxbudget.errors import ConfigError
from ctxbudget.tokens.backends import (
    EstimatingTokenizer,
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
)
from ctxbudget.tokens.encodings import EncodingName
from ctxbudget.tokens.framing import FRAMINGS, Framing, ToolRule

__all__ = ["openai_framing", "tokenizer_from_spec"]

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


def openai_framing(name: str, encoding: EncodingName) -> Framing:
    """OpenAI's framing for model ``name`` (lower case, no provider prefix) in ``encoding``."""
    base = FRAMINGS["openai"]
    func_init = 7 if encoding == "o200k_base" else 10
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
