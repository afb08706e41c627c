"""Tokenizer backends behind one small protocol.

* :class:`TiktokenTokenizer`: OpenAI's own encodings, exact.
* :class:`HFTokenizer`: a HuggingFace ``tokenizer.json`` (open-weight models), exact.
* :class:`EstimatingTokenizer`: for models without a public tokenizer (Claude, Gemini):
  a proxy tokenizer's count times a per-model factor, never exact. The factor starts
  from :data:`ESTIMATE_FACTORS` and is refined from billed usage (see ``calibration``).

All count text as plain text: special-token strings such as ``<|endoftext|>`` inside a
message are ordinary characters to the provider, so they are counted as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import tiktoken

from ctxbudget.errors import ConfigError, TokenizerError
from ctxbudget.tokens.encodings import load_encoding

__all__ = [
    "ESTIMATE_FACTORS",
    "EstimatingTokenizer",
    "HFTokenizer",
    "TiktokenTokenizer",
    "Tokenizer",
    "scale",
]

ESTIMATE_FACTORS: Final[dict[str, float]] = {"anthropic": 1.2, "gemini": 1.0}
"""Starting factor (model tokens per ``o200k_base`` token) per estimated family.

The same starting points as the model registry (``models.CLAUDE_FACTOR`` /
``GEMINI_FACTOR``, which also knows per-model exceptions and should be preferred): Claude's
tokenizer yields roughly 16-30% more tokens than o200k_base; Google documents ~4
characters per token for Gemini. The tokenizers are not public; calibration against billed
usage replaces these numbers within a few calls.
"""


@runtime_checkable
class Tokenizer(Protocol):
    """Counts the tokens of a text for one model."""

    @property
    def name(self) -> str:
        """What this tokenizer is, for reports (e.g. ``o200k_base``)."""
        ...

    @property
    def exact(self) -> bool:
        """True when counts are the model's own tokenizer, False when estimated."""
        ...

    def count(self, text: str) -> int:
        """How many tokens ``text`` is, as plain text (no special tokens)."""
        ...


def scale(raw: int, factor: float) -> int:
    """``raw`` proxy tokens times ``factor``, rounded up (an estimate never rounds down).

    Rounding to 6 decimals first keeps ``10 * 1.3`` at 13, not 14.
    """
    if factor == 1.0:
        return raw
    return math.ceil(round(raw * factor, 6))


@dataclass(frozen=True, slots=True)
class TiktokenTokenizer:
    """An OpenAI encoding loaded offline (see ``encodings``); exact."""

    encoding: tiktoken.Encoding
    """The tiktoken encoding."""
    exact: bool = True

    @classmethod
    def load(cls, name: str) -> TiktokenTokenizer:
        """``o200k_base`` or ``cl100k_base``, verified and cached per process."""
        return cls(load_encoding(name))

    @property
    def name(self) -> str:
        """The encoding name."""
        return self.encoding.name

    def count(self, text: str) -> int:
        """Token count of ``text`` via ``encode_ordinary`` (no special-token scan)."""
        return len(self.encoding.encode_ordinary(text))


def _import_hf() -> Any:
    try:
        import tokenizers
    except ImportError as exc:
        raise ConfigError(
            "HuggingFace tokenizers are an optional dependency; "
            "install it with: pip install 'ctxbudget[hf]'"
        ) from exc
    return tokenizers


@dataclass(frozen=True, slots=True)
class HFTokenizer:
    """A HuggingFace ``tokenizers`` tokenizer (from a ``tokenizer.json``); exact."""

    tokenizer: Any
    """A ``tokenizers.Tokenizer``."""
    name: str
    """What to call it in reports (the file path by default)."""
    exact: bool = True

    @classmethod
    def from_file(cls, path: str | Path, *, name: str | None = None) -> HFTokenizer:
        """Load ``tokenizer.json``; needs the ``hf`` extra (``pip install 'ctxbudget[hf]'``)."""
        lib = _import_hf()
        file = Path(path)
        if not file.is_file():
            raise TokenizerError(
                f"tokenizer file {str(file)!r} does not exist; pass the path of the model's "
                "tokenizer.json (downloaded once from its model repository)"
            )
        try:
            tok = lib.Tokenizer.from_file(str(file))
        except Exception as exc:  # the Rust side raises plain Exception
            raise TokenizerError(
                f"tokenizer file {str(file)!r} cannot be read ({exc}); "
                "pass a valid HuggingFace tokenizer.json"
            ) from exc
        return cls(tok, name or str(file))

    def count(self, text: str) -> int:
        """Token count of ``text`` without the model's added special tokens (BOS...)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))


@dataclass(frozen=True, slots=True)
class EstimatingTokenizer:
    """A proxy tokenizer times a factor, for models whose tokenizer is not public."""

    proxy: Tokenizer
    """The tokenizer whose counts are scaled (``o200k_base`` by default)."""
    factor: float
    """Model tokens per proxy token; must be positive and finite."""
    name: str = field(default="")
    """What to call it in reports; ``<proxy>*<factor>`` when empty."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise ConfigError(
                f"estimate factor must be a positive finite number, got {self.factor!r}; "
                "use e.g. 1.3 (model tokens per proxy token)"
            )
        if not self.name:
            object.__setattr__(self, "name", f"{self.proxy.name}*{self.factor:g}")

    @classmethod
    def for_family(cls, family: str, *, proxy: Tokenizer | None = None) -> EstimatingTokenizer:
        """The default estimate for ``anthropic`` or ``gemini`` (factor from the table)."""
        factor = ESTIMATE_FACTORS.get(family)
        if factor is None:
            raise ConfigError(
                f"no estimate factor for family {family!r}; known: "
                f"{', '.join(sorted(ESTIMATE_FACTORS))}. Pass EstimatingTokenizer(proxy, factor)."
            )
        return cls(proxy or TiktokenTokenizer.load("o200k_base"), factor)

    @property
    def exact(self) -> bool:
        """Always False: the count is scaled from another tokenizer."""
        return False

    def raw(self, text: str) -> int:
        """The proxy's count, before scaling (what calibration compares with billed usage)."""
        return self.proxy.count(text)

    def count(self, text: str) -> int:
        """The estimated count: the proxy's count times the factor, rounded up."""
        return scale(self.proxy.count(text), self.factor)

    def with_factor(self, factor: float) -> EstimatingTokenizer:
        """A copy with a new (e.g. calibrated) factor."""
        return EstimatingTokenizer(self.proxy, factor)
