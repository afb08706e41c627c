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

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ctxbudget.budget.allocation import Allocation, ComponentAllocation
from ctxbudget.budget.amounts import (
    EPSILON,
    Amount,
    ComponentBudget,
    exact_share,
    fraction,
    pick,
    pick_component,
    pick_kind,
)
from ctxbudget.errors import PolicyError
from ctxbudget.session.items import Component, ComponentKind

if TYPE_CHECKING:
    from ctxbudget.budget.models import ModelSpec

__all__ = [
    "DEFAULT_KINDS",
    "DEFAULT_POLICY",
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

DEFAULT_POLICY = "digest"
"""The preset a ContextManager uses when none is named: tool outputs digested once answered
(measured cheapest at the retention goals, see ``bench/bench_simulate.py``); ``agent`` is
the batched cascade that was the default before."""

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
        pick("shares_of", self.shares_of, ("window", "usable"))
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
        shares = {
            b.component.value: exact_share(b.share) for b in self.budgets if b.share is not None
        }
        total = sum(shares.values(), Decimal(0))
        extra = ""
        if self.shares_of == "window":
            for label in ("output_reserve", "safety_margin"):
                amount: Amount | None = getattr(self, label)
                if amount is not None and amount.share is not None:
                    total += exact_share(amount.share)
                    extra = " plus the output reserve and margin shares"
        if total > 1 + EPSILON:
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
            usable = min(usable, fraction(self.max_fill, window))
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
                budget = fraction(listed.share or 0.0, base)
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
            high_watermark=fraction(self.high_watermark, usable),
            low_watermark=fraction(self.low_watermark, usable),
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
            pick("policy key", key, _POLICY_KEYS)
        base = preset(str(data["preset"])) if "preset" in data else cls()
        budgets = {b.component: b for b in base.budgets}
        raw = data.get("budgets") or {}
        if not isinstance(raw, Mapping):
            raise PolicyError("budgets must be a mapping of component name to budget")
        for key, value in raw.items():
            component = pick_component(key)
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
        kind = pick_kind(value.get("kind", kind))
        value = {k: v for k, v in value.items() if k != "kind"}
    amount = Amount.parse(value, what=f"budget of {component.value!r}")
    return ComponentBudget(component=component, kind=kind, share=amount.share, tokens=amount.tokens)


def _built_in() -> Mapping[str, Policy]:
    """The presets of ``data/presets.toml``, each read through :meth:`Policy.from_dict`."""
    text = resources.files("ctxbudget.budget").joinpath("data/presets.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return MappingProxyType({k: Policy.from_dict({"name": k, **v}) for k, v in data.items()})


PRESETS: Mapping[str, Policy] = _built_in()
"""Built-in policies by name (kinds of the listed components: :data:`DEFAULT_KINDS`)."""


def preset(name: str) -> Policy:
    """The built-in policy called ``name`` (see :data:`PRESETS`)."""
    return PRESETS[pick("preset", name, tuple(PRESETS))]
