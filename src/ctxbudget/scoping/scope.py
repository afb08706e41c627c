"""The tools of the current phase, in one of two modes, fed to a ContextManager.

* ``remove``: the request carries only the phase's schemas. Smaller requests, but every
  change of the set rewrites the cached prefix (tools render first). A change that only
  removes tools is held while it does not pay (see :mod:`.pricing`); one that needs new
  tools always goes through.
* ``cache_stable``: the request carries every schema, in the same bytes on every call, and
  the phase is enforced with the provider's own option: OpenAI ``allowed_tools``; Anthropic
  deferred loading with tool search (or nothing, ``anthropic="full"``). See :mod:`.wire`.

``scope.apply(manager, provider)`` sets the manager's tools when they change and returns the
options for ``manager.prepare``; ``scope.prepare(manager, provider)`` does both and returns the
body with a :class:`ScopeReport` (what was sent, what may be called, what a change cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from ctxbudget.cache.fingerprint import CacheBust
from ctxbudget.compaction.cost_planner import expected_turns
from ctxbudget.errors import ConfigError, PolicyError
from ctxbudget.scoping.pricing import PhaseChange, price_change
from ctxbudget.scoping.registry import ToolRegistry
from ctxbudget.scoping.wire import (
    ANTHROPIC_TOOL_SEARCH_BETA,
    AllowedMode,
    ToolSearch,
    allowed_tools_choice,
    anthropic_deferred,
)
from ctxbudget.session.items import Component, ToolSpec
from ctxbudget.tokens.count import TokenCount

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = ["ScopeMode", "ScopeReport", "ToolScope"]

ScopeMode = Literal["remove", "cache_stable"]
"""How the phase narrows the tools: drop schemas, or keep them and constrain the choice."""
_PROVIDERS = ("openai", "openai_chat", "openai_responses", "anthropic")


class _Price(NamedTuple):
    rewrite_tokens: int
    rewrite_cost: Decimal | None
    saving_tokens: int
    saving_cost: Decimal | None
    pays: bool


class _Decision(Protocol):
    """What :meth:`ToolScope.follow` reads of a routing decision."""

    @property
    def tool_groups(self) -> tuple[str, ...]: ...

    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeReport:
    """What the scope put in one request."""

    phase: str
    """The phase the request was prepared for."""
    mode: ScopeMode
    """The scoping mode."""
    provider: str
    """The provider the body was rendered for."""
    sent: tuple[str, ...]
    """Tools whose schemas the request carries (deferred ones included)."""
    allowed: tuple[str, ...]
    """Tools the model may call now."""
    deferred: tuple[str, ...]
    """Anthropic tools marked ``defer_loading`` (loaded only when the model searches)."""
    tool_tokens: TokenCount
    """Schema tokens of ``sent`` as the manager counts them (deferred ones included)."""
    loaded_tool_tokens: TokenCount
    """Schema tokens the model loads up front: ``tool_tokens`` less the deferred tools."""
    change: PhaseChange | None
    """The phase change this request carried, if any."""
    prefix_change: CacheBust | None
    """Where the request's prefix diverged from the previous one (None: it extended it)."""
    headers: tuple[tuple[str, str], ...] = ()
    """HTTP headers the request needs (Anthropic's beta header for deferred loading)."""


class ToolScope:
    """Chooses the tools of each request from a :class:`ToolRegistry` and the current phase."""

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        mode: ScopeMode = "cache_stable",
        phase: str | None = None,
        choice: AllowedMode = "auto",
        anthropic: Literal["defer", "full"] = "defer",
        tool_search: ToolSearch = "bm25",
        cost_aware: bool = True,
        horizon: int | None = None,
    ) -> None:
        """``choice``: OpenAI ``allowed_tools`` mode; ``anthropic``: defer or send all as is.

        ``cost_aware`` (remove mode): hold a shrink of the tool list while it does not pay
        over ``horizon`` more turns (None: as many as the scope has prepared, 5 to 100).
        """
        if mode not in ("remove", "cache_stable"):
            raise ConfigError(f"scope mode must be 'remove' or 'cache_stable', got {mode!r}")
        if anthropic not in ("defer", "full"):
            raise ConfigError(f"anthropic must be 'defer' or 'full', got {anthropic!r}")
        self.registry = registry
        self.mode: ScopeMode = mode
        self.choice: AllowedMode = choice
        self.anthropic = anthropic
        self.tool_search: ToolSearch = tool_search
        self.cost_aware = cost_aware
        self.horizon = horizon
        self.phase = phase if phase is not None else registry.phases[0].name
        """The current phase (a registered one, or groups joined by ``+`` after a route)."""
        self._groups = registry.phase(self.phase).groups
        self._sent: tuple[str, ...] | None = None
        """Names of the tools last given to the manager (remove mode)."""
        self._sent_phase = self.phase
        self._key: tuple[str, tuple[str, ...]] | None = None
        self._pending: PhaseChange | None = None
        self._held: tuple[str, ...] | None = None
        self._turns = 0
        self.changes: list[PhaseChange] = []
        """Every phase change seen, in order."""
        self.last_report: ScopeReport | None = None
        """What the last :meth:`prepare` sent."""

    # -- choosing the phase --------------------------------------------------------------

    def set_phase(self, name: str) -> None:
        """Move to a registered phase (takes effect at the next request)."""
        self._groups = self.registry.phase(name).groups
        self.phase = name

    def use_groups(self, groups: Sequence[str]) -> str:
        """Move to the smallest phase offering ``groups`` (or exactly those groups); its name."""
        if not groups:
            return self.phase
        covering = self.registry.covering_phase(groups)
        if covering is not None:
            self.set_phase(covering)
        else:
            self.registry.tools_of(groups)  # unknown groups raise here
            self._groups = tuple(groups)
            self.phase = "+".join(groups)
        return self.phase

    def follow(self, decision: _Decision, manager: ContextManager | None = None) -> str:
        """Move to the phase a routing decision's tool groups call for; its name. With
        ``manager``, the decision is noted for the next call's metrics record."""
        if manager is not None:
            manager.note_routing(decision)
        return self.use_groups(decision.tool_groups)

    @property
    def allowed(self) -> tuple[str, ...]:
        """Tools the current phase offers."""
        return self.registry.tools_of(self._groups)

    # -- what to send ----------------------------------------------------------------------

    def tools(self, provider: str = "openai") -> list[ToolSpec]:
        """The specs for ``manager.set_tools`` under the current phase (no cost decision)."""
        _check_provider(provider)
        if self.mode == "remove":
            return list(self.registry.specs(self.allowed))
        if provider == "anthropic" and self.anthropic == "defer":
            loaded = self.registry.tools_of(())
            return anthropic_deferred(self.registry.tools, loaded, self.tool_search)
        return list(self.registry.tools)

    def options(self, provider: str = "openai") -> dict[str, Any]:
        """The keyword options for ``manager.prepare`` under the current phase."""
        _check_provider(provider)
        if self.mode == "remove" or provider == "anthropic":
            return {}
        return {"tool_choice": allowed_tools_choice(self.allowed, provider, self.choice)}

    def headers(self, provider: str = "openai") -> dict[str, str]:
        """HTTP headers the request needs: Anthropic's beta header when tools are deferred."""
        deferring = self.mode == "cache_stable" and self.anthropic == "defer"
        if provider == "anthropic" and deferring:
            return {"anthropic-beta": ANTHROPIC_TOOL_SEARCH_BETA}
        return {}

    def apply(
        self, manager: ContextManager, provider: str = "openai", *, now: float | None = None
    ) -> dict[str, Any]:
        """Give ``manager`` this phase's tools if they changed; the options for ``prepare``.

        ``now`` (the manager's clock) tells whether the cache is still warm; without it a
        cache that held any entry counts as warm, so rewrites are never under-priced.
        """
        _check_provider(provider)
        self._turns += 1
        wanted = self.allowed if self.mode == "remove" else self.registry.names
        if self._key is not None and self._key[0] != provider:
            self._key = None  # another wire format: set its tools afresh
        if self.mode == "remove":
            if self._sent is not None and self._key is not None:
                wanted = self._decide(manager, wanted, now)
        elif self._sent is not None and self._sent_phase != self.phase:
            self._note_stable_change()
        key = (provider, wanted)
        if key != self._key:
            specs = self.registry.specs(wanted) if self.mode == "remove" else self.tools(provider)
            self._check_budget(manager, list(specs))
            manager.set_tools(list(specs), planned=self._sent is not None)
            self._key, self._sent = key, wanted
        self._sent_phase = self.phase
        return self.options(provider)

    def prepare(
        self,
        manager: ContextManager,
        provider: str = "openai",
        *,
        now: float | None = None,
        **options: Any,
    ) -> tuple[dict[str, Any], ScopeReport]:
        """``apply`` then ``manager.prepare``; the body and what the scope did.

        A tool-list change this scope chose is a planned prefix change (priced in
        ``report.change``), not a cache bust.
        """
        merged = {**self.apply(manager, provider, now=now), **options}
        change, self._pending = self._pending, None
        body = manager.prepare(provider, **merged)  # type: ignore[arg-type]
        report = manager.last_report
        sent = self._sent or ()
        tools, counter = manager.accountant.tools, manager.accountant.counter
        deferred = tuple(t.name for t in tools if t.provider_details.get("defer_loading"))
        self.last_report = ScopeReport(
            phase=self.phase,
            mode=self.mode,
            provider=provider,
            sent=sent,
            allowed=self.allowed,
            deferred=deferred,
            tool_tokens=counter.count_tools(tools),
            loaded_tool_tokens=counter.count_tools([t for t in tools if t.name not in deferred]),
            change=change,
            prefix_change=report.cache.prefix_change if report and report.cache else None,
            headers=tuple(self.headers(provider).items()),
        )
        return body, self.last_report

    # -- internals ------------------------------------------------------------------------

    def _decide(
        self, manager: ContextManager, wanted: tuple[str, ...], now: float | None
    ) -> tuple[str, ...]:
        """Remove mode: the tool list to send, pricing the change from the last one."""
        sent = self._sent or ()
        if wanted == sent:
            self._held = None
            if self._sent_phase != self.phase:
                self._note(sent, sent, None, applied=False, reason="same tools: nothing to rewrite")
            return sent
        price = self._price(manager, wanted, sent, now)
        if set(wanted) - set(sent):
            applied, reason = True, "the phase needs tools the request lacked"
        elif not self.cost_aware or price.rewrite_cost is None:
            applied, reason = True, "shrink (not priced)"
        elif price.pays:
            applied, reason = True, "shrink pays: the saving over the horizon beats the rewrite"
        else:
            applied, reason = False, "held: the shrink would not pay for its rewrite yet"
        if applied or self._held != wanted:  # a held shrink is priced again each turn, noted once
            self._note(wanted, sent, price, applied=applied, reason=reason)
        self._held = None if applied else wanted
        return wanted if applied else sent

    def _price(
        self,
        manager: ContextManager,
        wanted: Sequence[str],
        sent: Sequence[str],
        now: float | None,
    ) -> _Price:
        counter = manager.accountant.counter
        old = counter.count_tools(list(self.registry.specs(sent))).tokens
        new = counter.count_tools(list(self.registry.specs(wanted))).tokens
        cache = manager.cache
        if cache.rules.mode == "none":
            cached = False
        elif now is not None:
            cached = cache.state.is_warm(now)
        else:
            cached = len(cache.state) > 0
        rewrite, rewrite_cost, saving_cost, pays = price_change(
            request_tokens=manager.total(),
            old_tools=old,
            new_tools=new,
            cached=cached,
            horizon=expected_turns(self._turns, self.horizon),
            prices=manager.model.prices,
            ttl=cache.ttl,
        )
        return _Price(rewrite, rewrite_cost, old - new, saving_cost, pays)

    def _note(
        self,
        wanted: tuple[str, ...],
        sent: tuple[str, ...],
        price: _Price | None,
        *,
        applied: bool,
        reason: str,
    ) -> None:
        change = PhaseChange(
            before=self._sent_phase,
            after=self.phase,
            added=tuple(n for n in wanted if n not in sent),
            removed=tuple(n for n in sent if n not in wanted),
            applied=applied,
            rewrite_tokens=price.rewrite_tokens if price and applied else 0,
            rewrite_cost=price.rewrite_cost if price and applied else None,
            saving_tokens=price.saving_tokens if price and applied else 0,
            saving_cost=price.saving_cost if price and applied else None,
            reason=reason,
        )
        self.changes.append(change)
        self._pending = change

    def _note_stable_change(self) -> None:
        """Cache-stable mode: a phase change moves only the constraint, not the prefix."""
        names = self.registry.names
        change = PhaseChange(
            before=self._sent_phase,
            after=self.phase,
            added=(),
            removed=(),
            applied=False,
            rewrite_tokens=0,
            rewrite_cost=None,
            saving_tokens=0,
            saving_cost=None,
            reason=f"cache-stable: all {len(names)} schemas kept; only the allowed set changed",
        )
        self.changes.append(change)
        self._pending = change

    def _check_budget(self, manager: ContextManager, specs: list[ToolSpec]) -> None:
        """The tools component must fit its budget: a clear error naming the phase if not."""
        budget = manager.accountant.ledger.allocation.budget(Component.TOOLS)
        if budget is None:
            return
        tokens = manager.accountant.counter.count_tools(specs).tokens
        if tokens > budget:
            raise PolicyError(
                f"the tool schemas of phase {self.phase!r} ({self.mode} mode) need {tokens:,} "
                f"tokens but the tools budget is {budget:,}; give the phase fewer groups, use "
                "remove mode, or raise the tools share in the policy",
                component=Component.TOOLS.value,
                size=tokens,
                budget=budget,
            )


def _check_provider(provider: str) -> None:
    if provider not in _PROVIDERS:
        raise ConfigError(f"unknown provider {provider!r}; expected one of {', '.join(_PROVIDERS)}")
