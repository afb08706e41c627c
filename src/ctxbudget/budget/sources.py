"""Where each figure of a model spec comes from: the labels shown next to windows, output
limits, tokenizers and prices wherever they are shown."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EXPLICIT",
    "FAMILY_DEFAULT",
    "GIVEN",
    "PRICE_DATA",
    "REGISTRY",
    "UNKNOWN",
    "FigureSources",
]

REGISTRY = "registry"
"""A figure from a built-in profile (``data/profiles.toml``)."""
PRICE_DATA = "price data"
"""A figure from the installed genai-prices data."""
FAMILY_DEFAULT = "family default (estimate)"
"""A figure assumed for the model's family (``data/families.toml``): an estimate."""
GIVEN = "given"
"""A figure passed explicitly (an argument, a CLI option)."""
UNKNOWN = "unknown"
"""No source knows the figure (prices only: the model is unpriced)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FigureSources:
    """Where each figure of a :class:`ModelSpec` comes from: :data:`REGISTRY`,
    :data:`PRICE_DATA`, :data:`FAMILY_DEFAULT`, :data:`GIVEN`, ``provider default``,
    ``generic default (estimate)`` or (prices) :data:`UNKNOWN`."""

    context_window: str = GIVEN
    max_output_tokens: str = GIVEN
    tokenizer: str = GIVEN
    """Ends in ``(estimate)`` when a default chose a proxy tokenizer."""
    prices: str = GIVEN

    @property
    def estimates(self) -> tuple[str, ...]:
        """The figures that are assumptions rather than known (field names)."""
        return tuple(name for name, value in self.to_json().items() if "estimate" in value)

    def to_json(self) -> dict[str, str]:
        return {
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "tokenizer": self.tokenizer,
            "prices": self.prices,
        }


EXPLICIT = FigureSources()
"""A spec built by hand: every figure given."""
