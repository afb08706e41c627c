"""Budget policy: how one context window is shared between the components.

All sizes are tokens. A window is cut like this::

    context window = output reserve + safety margin + usable window (+ unused, see max_fill)

The **usable window** is what the input may fill. Component budgets and the two watermarks
are cut from it; the planner compacts when use crosses the high watermark and stops once it
is back under the low one.

A component's ``share`` is a fraction of the usable window (``shares_of="usable"``, the
default) or of the whole context window (``shares_of="window"``), for layouts written as
slices of the window where the output reserve is itself a slice (``research-128k``). Shares
of ``output_reserve`` and ``safety_margin`` are always of the whole window.

Components a policy does not list are **unbudgeted**: no cap of their own, they count against
the usable window only; their kind comes from :data:`DEFAULT_KINDS`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ctxbudget.errors import PolicyError, UsageError
from ctxbudget.session.items import Component, ComponentKind

if TYPE_CHECKING:
    from ctxbudget.budget.models import ModelSpec

__all__ = [
    "DEFAULT_KINDS",
    "DEFAULT_STRATEGIES",
    "PRESETS",
    "Allocation",
    "Amount",
    "ComponentAllocation",
    "ComponentBudget",
    "Policy",
    "SharesOf",
    "preset",
]

SharesOf: TypeAlias = Literal["window", "usable"]
"""What component shares are fractions of."""

FIXED, PROTECTED, PRUNABLE = ComponentKind.FIXED, ComponentKind.PROTECTED, ComponentKind.PRUNABLE

DEFAULT_KINDS: Mapping[Component, ComponentKind] = MappingProxyType(
    {
        Component.SYSTEM: FIXED,
        Component.TOOLS: FIXED,
        Component.EXAMPLES: PROTECTED,
        Component.KNOWLEDGE: PRUNABLE,
        Component.MEMORY: PROTECTED,
        Component.HISTORY: PRUNABLE,
        Component.TOOL_RESULTS: PRUNABLE,
        Component.WORKING: PROTECTED,
        Component.SCRATCHPAD: PRUNABLE,
    }
)
"""The kind of a component a policy does not list."""

DEFAULT_STRATEGIES: tuple[str, ...] = (
    "dedup",
    "truncate",
    "clear_tool_results",
    "importance",
    "summarize",
    "reset",
)
"""The compaction cascade, cheapest and least lossy first."""

DEFAULT_OUTPUT_RESERVE_CAP = 16_384
"""Default output reserve: the model's max output, at most this many tokens and a quarter of
the window (a 64K-output model need not give up 64K of context on every call)."""
MARGIN_ESTIMATED = 0.02
"""Default safety margin (share of the window) when counts are estimates."""
MARGIN_EXACT = 0.005
"""Default safety margin (share of the window) when counts are exact."""

_EPSILON = Decimal("1e-9")


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _fraction(share: float, base: int) -> int:
    """``share × base`` rounded down, computed exactly (0.35 × 128000 is 44800, not 44799)."""
    return math.floor(_dec(share) * base)


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


def _pick(kind: str, value: object, options: Sequence[str]) -> str:
    if isinstance(value, str) and value in options:
        return value
    close = difflib.get_close_matches(str(value), options, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise PolicyError(f"unknown {kind} {value!r}{hint}; expected one of {', '.join(options)}")


def _component(value: object) -> Component:
    return Component(_pick("component", value, [c.value for c in Component]))


def _kind(value: object) -> ComponentKind:
    return ComponentKind(_pick("component kind", value, [k.value for k in ComponentKind]))


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
        return self.tokens if self.tokens is not None else _fraction(self.share or 0.0, base)

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
        object.__setattr__(self, "component", _component(self.component))
        object.__setattr__(self, "kind", _kind(self.kind))
        _check_size(f"budget of {self.component.value!r}", self.share, self.tokens)


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentAllocation:
    """One component's absolute budget for one window."""

    component: Component
    """The component."""
    kind: ComponentKind
    """How it may be treated when space runs short."""
    budget: int | None
    """Budget (tokens); ``None`` when unbudgeted (counts against the usable window only)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """A policy applied to one model: every size in absolute tokens."""

    context_window: int
    """The model's context window (tokens)."""
    output_reserve: int
    """Kept free for the response; the ``max_tokens`` to send (tokens)."""
    safety_margin: int
    """Kept free for counting error (tokens)."""
    usable: int
    """What the input may fill (tokens)."""
    high_watermark: int
    """Compact when the input exceeds this (tokens)."""
    low_watermark: int
    """Compact down to this (tokens)."""
    components: tuple[ComponentAllocation, ...]
    """One entry per :class:`Component`, in declaration order."""
    policy_name: str = "custom"
    """Name of the policy this came from."""

    def __post_init__(self) -> None:
        if tuple(c.component for c in self.components) != tuple(Component):
            raise PolicyError("an allocation needs one entry per component, in Component order")
        if self.usable <= 0 or not 0 <= self.low_watermark <= self.high_watermark <= self.usable:
            raise PolicyError("an allocation needs usable > 0 and 0 <= low <= high <= usable")

    def component(self, component: Component) -> ComponentAllocation:
        """The entry of ``component``."""
        return self.components[_INDEX[component]]

    def budget(self, component: Component) -> int | None:
        """The budget of ``component`` (tokens), ``None`` when unbudgeted."""
        return self.component(component).budget

    def kind(self, component: Component) -> ComponentKind:
        """The kind of ``component``."""
        return self.component(component).kind

    def check_fixed(self, sizes: Mapping[Component, int]) -> None:
        """Raise :class:`PolicyError` if fixed content cannot fit.

        ``sizes`` maps components to their current size (tokens); non-fixed ones are ignored.
        Each fixed component must fit its own budget, and all fixed content the usable window.
        """
        total = 0
        for key, size in sizes.items():
            entry = self.component(_component(key))
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise UsageError(f"size of {entry.component.value!r} must be a non-negative int")
            if entry.kind is not FIXED:
                continue
            total += size
            if entry.budget is not None and size > entry.budget:
                raise PolicyError(
                    f"fixed component {entry.component.value!r} is {size:,} tokens but its budget "
                    f"is {entry.budget:,}; shorten it, raise its share or tokens in the policy, "
                    f"or use a model with a larger window",
                    component=entry.component.value,
                    size=size,
                    budget=entry.budget,
                )
        if total > self.usable:
            raise PolicyError(
                f"fixed content totals {total:,} tokens but the usable window is {self.usable:,}; "
                f"shorten the system prompt or tools, or lower the output reserve",
                component="fixed",
                size=total,
                budget=self.usable,
            )


_INDEX: Mapping[Component, int] = MappingProxyType({c: i for i, c in enumerate(Component)})


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How a window is shared: component budgets, reserve, margin, watermarks, strategies."""

    name: str = "custom"
    """Shown in reports."""
    budgets: tuple[ComponentBudget, ...] = ()
    """Budgets of the listed components; unlisted ones are unbudgeted."""
    shares_of: SharesOf = "usable"
    """Whether component shares are of the usable window or of the whole window."""
    output_reserve: Amount | None = None
    """Tokens or share of the window kept for the response, capped at the model's max output;
    ``None``: the max output, at most 16,384 and a quarter of the window."""
    safety_margin: Amount | None = None
    """Tokens or share of the window kept for counting error; ``None``: 2% of the window when
    counts are estimates, 0.5% when exact."""
    max_fill: float | None = None
    """Most of the whole window (0..1) the input may ever fill, e.g. 0.6 to stay where
    long-context quality holds; ``None``: no cap beyond reserve and margin."""
    high_watermark: float = 0.85
    """Fraction of the usable window above which compaction starts."""
    low_watermark: float = 0.65
    """Fraction of the usable window compaction brings use back under."""
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    """Names of the compaction strategies, in cascade order."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PolicyError("a policy name must be a non-empty string")
        budgets = tuple(self.budgets)
        if not all(isinstance(b, ComponentBudget) for b in budgets):
            raise PolicyError("budgets must be ComponentBudget values")
        seen = [b.component for b in budgets]
        dupes = sorted({c.value for c in seen if seen.count(c) > 1})
        if dupes:
            raise PolicyError(f"components budgeted more than once: {', '.join(dupes)}")
        object.__setattr__(self, "budgets", budgets)
        _pick("shares_of", self.shares_of, ("window", "usable"))
        for field in ("output_reserve", "safety_margin"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, Amount.parse(value, what=field))
        high, low = self.high_watermark, self.low_watermark
        for label, value in (("high_watermark", high), ("low_watermark", low)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise PolicyError(f"{label} {value!r} must be a fraction in (0, 1]")
        if not low < high:
            raise PolicyError(f"low_watermark {low} must be below high_watermark {high}")
        fill = self.max_fill
        if fill is not None and (
            isinstance(fill, bool) or not isinstance(fill, int | float) or not 0 < fill <= 1
        ):
            raise PolicyError(f"max_fill {fill!r} must be a fraction of the window in (0, 1]")
        names = tuple(self.strategies)
        if not all(isinstance(s, str) and s for s in names) or len(set(names)) != len(names):
            raise PolicyError(f"strategies {names!r} must be distinct, non-empty names")
        object.__setattr__(self, "strategies", names)
        self._check_shares()

    def _check_shares(self) -> None:
        shares = {b.component.value: _dec(b.share) for b in self.budgets if b.share is not None}
        total = sum(shares.values(), Decimal(0))
        extra = ""
        if self.shares_of == "window":
            for label in ("output_reserve", "safety_margin"):
                amount: Amount | None = getattr(self, label)
                if amount is not None and amount.share is not None:
                    total += _dec(amount.share)
                    extra = " plus the output reserve and margin shares"
        if total > 1 + _EPSILON:
            listed = ", ".join(f"{k} {v}" for k, v in shares.items())
            raise PolicyError(
                f"component shares{extra} add up to {total} (> 1): {listed}; lower some shares"
            )

    def budget_for(self, component: Component) -> ComponentBudget | None:
        """The budget listed for ``component``, or ``None`` when unbudgeted."""
        return next((b for b in self.budgets if b.component is component), None)

    def allocate(
        self, context_window: int, max_output_tokens: int, *, exact_counts: bool = False
    ) -> Allocation:
        """Every budget in tokens for a window of ``context_window`` tokens.

        ``exact_counts`` picks the default safety margin (counts from the model's own
        tokenizer need less). Raises :class:`PolicyError` when the policy cannot fit.
        """
        for label, value in (
            ("context_window", context_window),
            ("max_output_tokens", max_output_tokens),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise PolicyError(f"{label} {value!r} must be a positive int (tokens)")
        window = context_window
        if self.output_reserve is None:
            reserve = min(max_output_tokens, DEFAULT_OUTPUT_RESERVE_CAP, window // 4)
        else:
            reserve = min(self.output_reserve.of(window), max_output_tokens)
        if not 0 < reserve < window:
            raise PolicyError(
                f"output_reserve {reserve:,} must be at least 1 and below the context window "
                f"{window:,}; change output_reserve"
            )
        if self.safety_margin is None:
            margin = math.ceil(window * (MARGIN_EXACT if exact_counts else MARGIN_ESTIMATED))
        else:
            margin = self.safety_margin.of(window)
        usable = window - reserve - margin
        if self.max_fill is not None:
            usable = min(usable, _fraction(self.max_fill, window))
        if usable <= 0:
            raise PolicyError(
                f"no room left for input: window {window:,} - output reserve {reserve:,} - "
                f"safety margin {margin:,}; lower output_reserve or safety_margin"
            )
        base = window if self.shares_of == "window" else usable
        entries = []
        for component in Component:
            listed = self.budget_for(component)
            budget: int | None = None
            if listed is not None and listed.tokens is not None:
                budget = listed.tokens
            elif listed is not None:
                budget = _fraction(listed.share or 0.0, base)
            kind = listed.kind if listed else DEFAULT_KINDS[component]
            entries.append(ComponentAllocation(component=component, kind=kind, budget=budget))
        budgeted = sum(e.budget or 0 for e in entries)
        if budgeted > usable:
            raise PolicyError(
                f"component budgets total {budgeted:,} tokens but the usable window is "
                f"{usable:,} (window {window:,} - reserve {reserve:,} - margin {margin:,}); "
                f"lower some budgets, the reserve or the margin",
                size=budgeted,
                budget=usable,
            )
        return Allocation(
            context_window=window,
            output_reserve=reserve,
            safety_margin=margin,
            usable=usable,
            high_watermark=_fraction(self.high_watermark, usable),
            low_watermark=_fraction(self.low_watermark, usable),
            components=tuple(entries),
            policy_name=self.name,
        )

    def allocate_for(self, model: ModelSpec) -> Allocation:
        """:meth:`allocate` for a resolved model (its window, output limit and exactness)."""
        return self.allocate(
            model.context_window, model.max_output_tokens, exact_counts=model.exact_tokenizer
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-ready dict that :meth:`from_dict` reads back to an equal policy."""
        return {
            "name": self.name,
            "shares_of": self.shares_of,
            "budgets": {
                b.component.value: {"kind": b.kind.value, **_amount(b).to_dict()}
                for b in self.budgets
            },
            "output_reserve": self.output_reserve.to_dict() if self.output_reserve else None,
            "safety_margin": self.safety_margin.to_dict() if self.safety_margin else None,
            "max_fill": self.max_fill,
            "high_watermark": self.high_watermark,
            "low_watermark": self.low_watermark,
            "strategies": list(self.strategies),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Build a policy from plain data (JSON, TOML...).

        ``{"preset": "agent", ...}`` starts from a preset; ``budgets`` then replaces the
        listed components (``null`` removes one). A budget is ``0.1`` / ``"10%"`` (share),
        ``5000`` (tokens) or ``{"share"|"tokens": ..., "kind": "fixed"}``.
        """
        if not isinstance(data, Mapping):
            raise PolicyError(f"a policy must be a mapping, got {type(data).__name__}")
        for key in data:
            _pick("policy key", key, _POLICY_KEYS)
        base = preset(str(data["preset"])) if "preset" in data else cls()
        budgets = {b.component: b for b in base.budgets}
        raw = data.get("budgets") or {}
        if not isinstance(raw, Mapping):
            raise PolicyError("budgets must be a mapping of component name to budget")
        for key, value in raw.items():
            component = _component(key)
            if value is None:
                budgets.pop(component, None)
            else:
                budgets[component] = _parse_budget(component, value)
        changes: dict[str, Any] = {k: data[k] for k in _PLAIN_KEYS if k in data}
        if "strategies" in data:
            if isinstance(data["strategies"], str | bytes) or not isinstance(
                data["strategies"], Sequence
            ):
                raise PolicyError("strategies must be a list of strategy names")
            changes["strategies"] = tuple(data["strategies"])
        ordered = tuple(budgets[c] for c in Component if c in budgets)
        return replace(base, budgets=ordered, **changes)


_PLAIN_KEYS = (
    "name",
    "shares_of",
    "output_reserve",
    "safety_margin",
    "max_fill",
    "high_watermark",
    "low_watermark",
)
_POLICY_KEYS = ("preset", "budgets", "strategies", *_PLAIN_KEYS)


def _amount(budget: ComponentBudget) -> Amount:
    return Amount(share=budget.share, tokens=budget.tokens)


def _parse_budget(component: Component, value: object) -> ComponentBudget:
    kind = DEFAULT_KINDS[component]
    if isinstance(value, Mapping):
        extra = set(value) - {"kind", "share", "tokens"}
        if extra:
            raise PolicyError(
                f"budget of {component.value!r}: unknown keys {sorted(extra)}; "
                f"use share or tokens, and optionally kind"
            )
        kind = _kind(value.get("kind", kind))
        value = {k: v for k, v in value.items() if k != "kind"}
    amount = Amount.parse(value, what=f"budget of {component.value!r}")
    return ComponentBudget(component=component, kind=kind, share=amount.share, tokens=amount.tokens)


def _built_in() -> Mapping[str, Policy]:
    data: dict[str, dict[str, Any]] = {
        # The seed's research agent on 128K, as slices of the whole window (output 5%); MEMORY is
        # the pinned, protected layer. On 128,000: system 12,800, memory 12,800, history 44,800,
        # tool results 38,400, scratchpad 12,800, output 6,400. The slices use the whole window,
        # so the margin is 0 and the watermarks keep real use below the budgets.
        "research-128k": {
            "shares_of": "window",
            "budgets": {"system": 0.10, "memory": 0.10, "history": 0.35, "tool_results": 0.30,
                        "scratchpad": 0.10},
            "output_reserve": "5%",
            "safety_margin": 0,
            "low_watermark": 0.6,
        },
        # Four layers as shares of the usable window, with a 16K (16,384 tokens) output reserve.
        "four-layer": {
            "budgets": {"system": 0.08, "working": 0.22, "knowledge": 0.30, "history": 0.40},
            "output_reserve": 16_384,
        },
        # The input never fills more than 60% of the window, where long-context quality holds.
        "quality": {
            "budgets": {"system": 0.10, "tools": 0.10, "working": 0.10, "knowledge": 0.20,
                        "history": 0.30, "tool_results": 0.20},
            "max_fill": 0.6,
            "high_watermark": 0.9,
            "low_watermark": 0.7,
        },
        # Coding / tool agents: fixed system and tools, protected working layer and memory,
        # prunable history, tool results and scratchpad (kinds: DEFAULT_KINDS).
        "agent": {
            "budgets": {"system": 0.10, "tools": 0.10, "working": 0.10, "memory": 0.05,
                        "history": 0.25, "tool_results": 0.35, "scratchpad": 0.05},
            "high_watermark": 0.8,
            "low_watermark": 0.6,
        },
    }  # fmt: skip
    return MappingProxyType({k: Policy.from_dict({"name": k, **v}) for k, v in data.items()})


PRESETS: Mapping[str, Policy] = _built_in()
"""Built-in policies by name (kinds of the listed components: :data:`DEFAULT_KINDS`)."""


def preset(name: str) -> Policy:
    """The built-in policy called ``name`` (see :data:`PRESETS`)."""
    return PRESETS[_pick("preset", name, tuple(PRESETS))]
