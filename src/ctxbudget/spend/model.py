"""Spend limits as data: scopes, periods, actions, money in integer nano-dollars.

A :class:`Limit` caps the dollars (and optionally tokens) one scope may spend per period:
``session``, ``agent``, ``user``, ``team`` or ``global`` scope; ``call``, ``day`` or
``month`` period (UTC calendar days and months). A call is tagged with the scopes it
belongs to (:class:`Tags`); every limit whose scope and key match applies. Money is kept
in integer nano-dollars (1e-9 USD) so every backend adds it exactly: a reservation is
rounded up to the next nano-dollar (never under-reserved), a billed cost to the nearest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Literal, TypeAlias, get_args

from ctxbudget.errors import ConfigError

__all__ = [
    "NANOS",
    "Action",
    "Limit",
    "Period",
    "Scope",
    "Tags",
    "bucket_of",
    "from_nanos",
    "to_nanos",
]

Scope: TypeAlias = Literal["session", "agent", "user", "team", "global"]
Period: TypeAlias = Literal["call", "day", "month"]
Action: TypeAlias = Literal["warn", "switch", "refuse"]
NANOS = Decimal(1_000_000_000)
"""Nano-dollars per dollar."""
ANY = "*"
"""A limit key matching every value of its scope (each user, each team...); global's key."""


def to_nanos(usd: Decimal, *, up: bool = False) -> int:
    """Dollars as integer nano-dollars: rounded up (reservations) or half-up (bills)."""
    if not isinstance(usd, Decimal) or not usd.is_finite() or usd < 0:
        raise ConfigError(f"an amount of money must be a finite, non-negative Decimal, got {usd!r}")
    return int((usd * NANOS).to_integral_value(ROUND_CEILING if up else ROUND_HALF_UP))


def from_nanos(nanos: int) -> Decimal:
    """Integer nano-dollars as dollars."""
    return Decimal(nanos) / NANOS


def bucket_of(period: Period, now: float) -> str:
    """The UTC calendar bucket ``now`` (Unix seconds) falls in: ``2025-06-01``, ``2025-06``."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "month":
        return moment.strftime("%Y-%m")
    return "call"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tags:
    """Which scopes a call belongs to (None: not tagged with that scope)."""

    session: str | None = None
    agent: str | None = None
    user: str | None = None
    team: str | None = None

    def scopes(self) -> tuple[tuple[Scope, str], ...]:
        """(scope, key) of every scope the call belongs to, ``global`` included."""
        pairs: list[tuple[Scope, str]] = []
        names: tuple[Scope, ...] = ("session", "agent", "user", "team")
        for scope in names:
            value = getattr(self, scope)
            if value is not None:
                if not isinstance(value, str) or not value or value == ANY:
                    raise ConfigError(f"spend tag {scope}={value!r} must be a non-empty name")
                pairs.append((scope, value))
        pairs.append(("global", ANY))
        return tuple(pairs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """At most ``usd`` dollars (and/or ``tokens``) per ``period`` for one scope."""

    scope: Scope
    """Who the limit is for."""
    key: str = ANY
    """Which one (a team name, a user id...); ``*``: each of them separately."""
    period: Period = "month"
    """``call`` (each call on its own), ``day`` or ``month`` (UTC calendar)."""
    usd: Decimal | None = None
    """Dollars allowed per period (None: no dollar cap)."""
    tokens: int | None = None
    """Tokens (input + output) allowed per period (None: no token cap)."""
    action: Action = "refuse"
    """When a call would cross it: ``warn`` and go on, ``switch`` to ``fallback_model``, or
    ``refuse`` with BudgetExceeded."""
    fallback_model: str | None = None
    """The cheaper model ``switch`` moves to."""

    def __post_init__(self) -> None:
        if self.scope not in get_args(Scope):
            raise ConfigError(f"spend scope {self.scope!r} is not one of {get_args(Scope)}")
        if self.period not in get_args(Period):
            raise ConfigError(f"spend period {self.period!r} is not one of {get_args(Period)}")
        if self.action not in get_args(Action):
            raise ConfigError(f"spend action {self.action!r} is not one of {get_args(Action)}")
        if not isinstance(self.key, str) or not self.key:
            raise ConfigError(f"spend limit key {self.key!r} must be a non-empty name or '*'")
        if self.scope == "global" and self.key != ANY:
            raise ConfigError("a global limit has no key (it is '*')")
        if self.usd is None and self.tokens is None:
            raise ConfigError("a spend limit needs usd= (dollars) or tokens=, or both")
        if self.usd is not None:
            to_nanos(self.usd)
        if self.tokens is not None and (
            isinstance(self.tokens, bool) or not isinstance(self.tokens, int) or self.tokens < 0
        ):
            raise ConfigError(f"spend limit tokens={self.tokens!r} must be a non-negative int")
        if self.action == "switch" and not self.fallback_model:
            raise ConfigError("action='switch' needs fallback_model= (the cheaper model)")

    @property
    def usd_nanos(self) -> int | None:
        """The dollar cap in nano-dollars."""
        return None if self.usd is None else to_nanos(self.usd)

    def matches(self, scope: str, key: str) -> bool:
        """Whether the limit applies to a call tagged ``scope=key``."""
        return self.scope == scope and self.key in (ANY, key)

    def describe(self) -> str:
        """E.g. ``team 'research' per day``."""
        who = "global" if self.scope == "global" else f"{self.scope} {self.key!r}"
        if self.key == ANY and self.scope != "global":
            who = f"each {self.scope}"
        return f"{who} per {self.period}"


def check_finite(value: float) -> float:
    """A finite clock reading (seconds)."""
    if not math.isfinite(value):
        raise ConfigError(f"clock reading {value!r} is not a finite number of seconds")
    return value
