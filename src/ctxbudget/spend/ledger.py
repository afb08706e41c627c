"""The spend ledger's interface and its decisions, shared by every backend.

Before a call, :meth:`SpendLedger.reserve` checks the call's projected cost against every
limit that applies and, in the same atomic step, adds it to the ``reserved`` column of
every bucket the call counts in (its session, agent, user, team and global scopes, per day
and per month). After the call, :meth:`SpendLedger.settle` moves the reservation to
``spent`` at the billed amount. So concurrent workers never both pass a check the sum of
their calls would fail: the sum of what is spent and reserved never crosses a ``refuse``
limit. What a crossing means is decided here (pure functions); backends only make the
read-check-write atomic.

A reservation expires ``ttl`` seconds after it was made (default :data:`RESERVATION_TTL`,
10 minutes; on the guard: ``SpendGuard(reservation_ttl=...)``), on the clock of the
``now`` the caller passes: a worker that died between reserve and settle cannot hold a
budget for ever. Every reserve first releases the expired reservations (their amounts
leave ``reserved`` in every bucket; the reservation's state becomes ``expired``), in the
same atomic step as its own check, so the check already counts without them;
:meth:`SpendLedger.expire` does only that (e.g. before showing the totals). A reservation
settled after it expired is still settled: the billed amount is added to ``spent`` (the
call did cost it) and ``reserved``, released already, is left alone, so a late settle can
take spend past a ``refuse`` limit; releasing an expired reservation changes no tally.
Make ``ttl`` longer than the longest call, streaming and retries included.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ctxbudget.errors import BudgetExceeded
from ctxbudget.spend.model import Limit, Period, Tags, bucket_of, from_nanos

__all__ = [
    "MAX_SWEEP",
    "RESERVATION_TTL",
    "Bucket",
    "Crossing",
    "Reservation",
    "SpendLedger",
    "Switch",
    "Totals",
    "crossings",
    "plan",
    "refusal",
]

RESERVATION_TTL = 600.0
"""Seconds an unsettled reservation counts against the limits (see the module docstring)."""
MAX_SWEEP = 64
"""Expired reservations one reserve releases at most (the rest go with the next ones)."""

TRACKED: tuple[Period, ...] = ("day", "month")
"""Periods every call is tallied in, limited or not (so ``spend show`` has figures)."""


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Bucket:
    """One tally: a scope's spend in one calendar period."""

    scope: str
    key: str
    period: str
    bucket: str
    """``2025-06-01`` (day) or ``2025-06`` (month)."""

    @property
    def id(self) -> str:
        """``scope|key|period|bucket``: how stores name it."""
        return f"{self.scope}|{self.key}|{self.period}|{self.bucket}"

    @classmethod
    def from_id(cls, text: str) -> Bucket:
        scope, key, period, bucket = text.split("|", 3)
        return cls(scope=scope, key=key, period=period, bucket=bucket)


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """A bucket's tally; money in nano-dollars."""

    spent_nanos: int = 0
    reserved_nanos: int = 0
    spent_tokens: int = 0
    reserved_tokens: int = 0
    calls: int = 0
    """Calls settled into it."""

    @property
    def spent(self) -> Decimal:
        """Settled dollars."""
        return from_nanos(self.spent_nanos)

    @property
    def reserved(self) -> Decimal:
        """Dollars reserved by calls in flight."""
        return from_nanos(self.reserved_nanos)


@dataclass(frozen=True, slots=True, kw_only=True)
class Crossing:
    """A limit the call would cross."""

    limit: Limit
    unit: str
    """``usd`` or ``tokens``."""
    cap: int
    """The limit (nano-dollars or tokens)."""
    used: int
    """Spent so far in the bucket (same unit)."""
    reserved: int
    """Reserved by calls in flight (same unit)."""
    requested: int
    """This call's reservation (same unit)."""

    def describe(self) -> str:
        def show(n: int) -> str:
            return f"${from_nanos(n):.6f}" if self.unit == "usd" else f"{n:,} tokens"

        return (
            f"{self.limit.describe()} limit {show(self.cap)}: spent {show(self.used)} + "
            f"reserved {show(self.reserved)} + this call {show(self.requested)} "
            f"> {show(self.cap)}"
        )

    def error(self, key: str) -> BudgetExceeded:
        """The BudgetExceeded this crossing raises when the limit refuses."""

        def value(n: int) -> Decimal | int:
            return from_nanos(n) if self.unit == "usd" else n

        return BudgetExceeded(
            f"spend limit reached: {self.describe()}. Nothing was sent. Raise the limit "
            f"(`ctxbudget spend set-limit`), wait for the next {self.limit.period}, or use a "
            "cheaper model (a 'switch' limit does that on its own).",
            scope=self.limit.scope,
            key=key,
            period=self.limit.period,
            unit=self.unit,
            limit=value(self.cap),
            spent=value(self.used),
            reserved=value(self.reserved),
            requested=value(self.requested),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """Money and tokens set aside for one call; settle or release it after the call."""

    id: str
    nanos: int
    """Reserved nano-dollars (the projection rounded up)."""
    tokens: int
    """Reserved tokens (input + max output)."""
    model: str
    buckets: tuple[Bucket, ...]
    """Where it is tallied."""
    warnings: tuple[Crossing, ...] = ()
    """``warn`` limits the call crosses (it goes ahead)."""
    expires: float | None = None
    """When (the reserving clock's seconds) it stops counting if never settled."""

    @property
    def usd(self) -> Decimal:
        return from_nanos(self.nanos)


@dataclass(frozen=True, slots=True, kw_only=True)
class Switch:
    """A ``switch`` limit would be crossed: retry the reservation with ``model``."""

    model: str
    crossing: Crossing


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One limit to test, against a bucket (None: a per-call limit)."""

    limit: Limit
    key: str
    bucket: Bucket | None


def plan(tags: Tags, limits: Sequence[Limit], now: float) -> tuple[list[Bucket], list[Check]]:
    """The buckets a call counts in (sorted, so backends lock in one order) and its checks."""
    buckets: set[Bucket] = set()
    checks: list[Check] = []
    for scope, key in tags.scopes():
        for period in TRACKED:
            buckets.add(Bucket(scope=scope, key=key, period=period, bucket=bucket_of(period, now)))
        for limit in limits:
            if not limit.matches(scope, key):
                continue
            bucket = None
            if limit.period != "call":
                bucket = Bucket(
                    scope=scope, key=key, period=limit.period, bucket=bucket_of(limit.period, now)
                )
                buckets.add(bucket)
            checks.append(Check(limit=limit, key=key, bucket=bucket))
    return sorted(buckets), checks


def crossings(
    checks: Sequence[Check], totals: Mapping[Bucket, Totals], nanos: int, tokens: int
) -> list[Crossing]:
    """The limits a call reserving ``nanos`` and ``tokens`` would cross, in check order."""
    found = []
    for check in checks:
        tally = totals.get(check.bucket, Totals()) if check.bucket is not None else Totals()
        cap = check.limit.usd_nanos
        if cap is not None and tally.spent_nanos + tally.reserved_nanos + nanos > cap:
            found.append(
                Crossing(
                    limit=check.limit,
                    unit="usd",
                    cap=cap,
                    used=tally.spent_nanos,
                    reserved=tally.reserved_nanos,
                    requested=nanos,
                )
            )
        cap = check.limit.tokens
        if cap is not None and tally.spent_tokens + tally.reserved_tokens + tokens > cap:
            found.append(
                Crossing(
                    limit=check.limit,
                    unit="tokens",
                    cap=cap,
                    used=tally.spent_tokens,
                    reserved=tally.reserved_tokens,
                    requested=tokens,
                )
            )
    return found


def refusal(found: Sequence[Crossing], checks: Sequence[Check]) -> BudgetExceeded | Switch | None:
    """What stops the call: a refusing limit first, then a switching one; None: go ahead."""
    keys = {id(c.limit): c.key for c in checks}
    for crossing in found:
        if crossing.limit.action == "refuse":
            return crossing.error(keys.get(id(crossing.limit), crossing.limit.key))
    for crossing in found:
        if crossing.limit.action == "switch" and crossing.limit.fallback_model:
            return Switch(model=crossing.limit.fallback_model, crossing=crossing)
    return None


class SpendLedger(ABC):
    """Limits and spend of a fleet, in a SQLite, PostgreSQL or Redis store."""

    @abstractmethod
    def set_limit(self, limit: Limit) -> None:
        """Add or replace the limit for (scope, key, period)."""

    @abstractmethod
    def remove_limit(self, scope: str, key: str, period: str) -> bool:
        """Drop a limit; whether there was one."""

    @abstractmethod
    def limits(self) -> list[Limit]:
        """Every limit, sorted by scope, key, period."""

    @abstractmethod
    def reserve(
        self,
        tags: Tags,
        *,
        nanos: int,
        tokens: int,
        model: str,
        now: float,
        ttl: float = RESERVATION_TTL,
    ) -> Reservation | Switch:
        """Release the reservations expired at ``now``, then check every applicable limit
        and reserve until ``now + ttl``, atomically; raises BudgetExceeded."""

    @abstractmethod
    def expire(self, now: float) -> int:
        """Release the reservations expired at ``now`` (what every reserve does first);
        how many."""

    @abstractmethod
    def settle(self, reservation_id: str, *, nanos: int, tokens: int) -> None:
        """Replace a reservation with the billed amount (nano-dollars, tokens); an expired
        one only adds the billed amount (its reservation was released already)."""

    @abstractmethod
    def release(self, reservation_id: str) -> None:
        """Drop a reservation whose call never happened (or failed unbilled); an expired
        one is marked released, no tally changes."""

    @abstractmethod
    def totals(self) -> dict[Bucket, Totals]:
        """Every bucket's tally."""
