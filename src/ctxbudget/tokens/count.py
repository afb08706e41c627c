"""The token count value type: a number and whether it is exact."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenCount"]


@dataclass(frozen=True, slots=True)
class TokenCount:
    """A number of tokens and whether it is exact.

    ``exact`` is ``False`` when any contribution came from an estimate (a proxy tokenizer,
    a reverse-engineered framing rule...). Sums stay exact only if every term is.
    """

    tokens: int
    """How many tokens."""
    exact: bool
    """True only when every contribution came from the model's own tokenizer and rules."""

    def __add__(self, other: TokenCount) -> TokenCount:
        return TokenCount(self.tokens + other.tokens, self.exact and other.exact)

    def __sub__(self, other: TokenCount) -> TokenCount:
        return TokenCount(self.tokens - other.tokens, self.exact and other.exact)

    @property
    def label(self) -> str:
        """``"1234"`` when exact, ``"1234 (estimate)"`` otherwise: how counts are shown."""
        return str(self.tokens) if self.exact else f"{self.tokens} (estimate)"


ZERO = TokenCount(0, True)
