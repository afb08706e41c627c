"""Sizes in a policy: a share of a window or a number of tokens, and one component's budget.

Shares are exact decimals of the repr of the float given (``0.1`` is one tenth, not
0.1000000000000000055...), so a budget computed from a share never drifts by a token.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ctxbudget.errors import PolicyError
from ctxbudget.session.items import Component, ComponentKind

__all__ = [
    "EPSILON",
    "Amount",
    "ComponentBudget",
    "exact_share",
    "fraction",
    "pick",
    "pick_component",
    "pick_kind",
]


EPSILON = Decimal("1e-9")
"""How far shares may sum over 1 before it is an error (float noise)."""


def exact_share(value: float) -> Decimal:
    """The share as the decimal its repr shows."""
    return Decimal(repr(float(value)))


def fraction(share: float, base: int) -> int:
    """``share × base`` rounded down, computed exactly (0.35 × 128000 is 44800, not 44799)."""
    return math.floor(exact_share(share) * base)


def _check_size(what: str, share: object, tokens: object) -> None:
    if (share is None) == (tokens is None):
        raise PolicyError(f"{what}: give exactly one of share (0..1) or tokens (int)")
    if share is not None and (
        isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1
    ):
        raise PolicyError(f"{what}: share {share!r} must be a number from 0 to 1 (0.1 = 10%)")
    if tokens is not None and (
        isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0
    ):
        raise PolicyError(f"{what}: tokens {tokens!r} must be a non-negative int")


def pick(kind: str, value: object, options: Sequence[str]) -> str:
    if isinstance(value, str) and value in options:
        return value
    close = difflib.get_close_matches(str(value), options, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise PolicyError(f"unknown {kind} {value!r}{hint}; expected one of {', '.join(options)}")


def pick_component(value: object) -> Component:
    return Component(pick("component", value, [c.value for c in Component]))


def pick_kind(value: object) -> ComponentKind:
    return ComponentKind(pick("component kind", value, [k.value for k in ComponentKind]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Amount:
    """A size given in tokens or as a share of a base; exactly one is set."""

    tokens: int | None = None
    """Absolute size (tokens)."""
    share: float | None = None
    """Fraction of the base (0..1)."""

    def __post_init__(self) -> None:
        _check_size("amount", self.share, self.tokens)

    def of(self, base: int) -> int:
        """The size in tokens for a base of ``base`` tokens."""
        return self.tokens if self.tokens is not None else fraction(self.share or 0.0, base)

    @classmethod
    def parse(cls, value: object, *, what: str = "amount") -> Amount:
        """Read ``16384`` (tokens), ``0.05`` or ``"5%"`` (share), ``{"tokens": n}``..."""
        if isinstance(value, Amount):
            return value
        if isinstance(value, Mapping):
            extra = set(value) - {"tokens", "share"}
            if extra:
                raise PolicyError(f"{what}: unknown keys {sorted(extra)}; use tokens or share")
            _check_size(what, value.get("share"), value.get("tokens"))
            return cls(tokens=value.get("tokens"), share=value.get("share"))
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            try:
                if text.endswith("%"):
                    return cls(share=float(Decimal(text[:-1]) / 100))
                return cls(tokens=int(text))
            except (ArithmeticError, ValueError):
                pass
        elif isinstance(value, float):
            _check_size(what, value, None)
            return cls(share=value)
        elif isinstance(value, int) and not isinstance(value, bool):
            _check_size(what, None, value)
            return cls(tokens=value)
        raise PolicyError(
            f"{what}: cannot read {value!r}; use an int of tokens, a float share such as 0.05, "
            f"a percentage string such as '5%', or {{'tokens': n}} / {{'share': x}}"
        )

    def to_dict(self) -> dict[str, int | float]:
        """``{"tokens": n}`` or ``{"share": x}``."""
        return {"tokens": self.tokens} if self.tokens is not None else {"share": self.share or 0.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentBudget:
    """The budget of one component: a share or an absolute number of tokens."""

    component: Component
    """The component budgeted."""
    kind: ComponentKind
    """How it may be treated when space runs short."""
    share: float | None = None
    """Fraction (0..1) of the usable window, or of the whole window (``shares_of``)."""
    tokens: int | None = None
    """Absolute budget (tokens)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "component", pick_component(self.component))
        object.__setattr__(self, "kind", pick_kind(self.kind))
        _check_size(f"budget of {self.component.value!r}", self.share, self.tokens)
