"""The policies a session can be replayed through: baselines, then ctxbudget's own.

A policy is started once per session and asked, at each model call, for the request the
model would have received (:class:`Step`). Baselines re-apply a pure function to what the
client sent for that call (:meth:`~ctxbudget.traces.session.Session.request`: the history
since the client's last own compaction, a ``/compact``, with the system prompt), as the
systems they model do on top of the client; ctxbudget's policies feed a real
:class:`~ctxbudget.manager.ContextManager` the whole history, item by item, and take what
``prepare()`` returns: they replace the client's context handling, so they manage the
history themselves (the client's compaction summary reaches them as one more item), and
the replay exercises exactly the code an agent would run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ctxbudget.budget.models import ModelSpec
from ctxbudget.budget.policy import DEFAULT_POLICY, PRESETS
from ctxbudget.convert.request import Format
from ctxbudget.errors import ConfigError
from ctxbudget.manager import ContextManager
from ctxbudget.render import AnthropicRenderer, OpenAIChatRenderer
from ctxbudget.session.items import Item, ToolSpec
from ctxbudget.session.log import CompactionRecord
from ctxbudget.simulate.baselines import clear_tool_uses, full_history, mask_observations
from ctxbudget.tokens.counter import TokenCounter

__all__ = [
    "BASELINE_POLICIES",
    "DEFAULT_POLICIES",
    "OWN_POLICY",
    "PolicyRunner",
    "Step",
    "check_policies",
    "start_policy",
]

BASELINE_POLICIES = ("none-nocache", "none", "mask-last-10", "clear-tool-uses")
"""No management without and with the provider's best prefix caching; observation masking
of all but the last 10 turns ("The Complexity Trap"); LangChain's ClearToolUsesEdit."""
OWN_POLICY = "ctxbudget"
"""ctxbudget's default: ``ContextManager(model)`` as shipped (preset ``digest``).
``ctxbudget:<preset>`` picks another preset: ``ctxbudget:agent`` is the batched cascade that
was the default before, ``ctxbudget:digest-lean`` adds shortened agent messages."""
DEFAULT_POLICIES = (*BASELINE_POLICIES, OWN_POLICY)
"""What ``simulate`` compares when no ``--policy`` is given."""
MAX_OUTPUT = 4096
"""``max_tokens`` of every replayed request (an upper bound on one agent step's output)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """What one policy sends for one model call."""

    view: Sequence[Item]
    """The items the model sees."""
    body: dict[str, Any]
    """The request body, before the provider's cache marks are placed."""
    compactions: tuple[CompactionRecord, ...] = ()
    """Compactions the policy made for this call."""


class PolicyRunner(Protocol):
    """One policy over one session."""

    name: str
    cached: bool
    """Priced with the provider's cache rules (``False``: every token at the input price)."""
    marks_cache: bool
    """Places its own Anthropic cache breakpoints (else the best the rules allow are)."""

    def step(self, history: Sequence[Item], request: Sequence[Item]) -> Step:
        """The request for the call that follows ``history`` (the session so far);
        ``request`` is what the client itself sent for it (``history`` unless the client
        compacted: see :meth:`~ctxbudget.traces.session.Session.request`)."""
        ...

    def close(self) -> None:
        """Release what the policy holds (the manager's background work)."""
        ...


def check_policies(names: Sequence[str]) -> tuple[str, ...]:
    """The names, validated; raises :class:`ConfigError` naming the known policies."""
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        own, _, preset_name = name.partition(":")
        known_name = name in BASELINE_POLICIES or name == OWN_POLICY
        if not known_name and not (own == OWN_POLICY and preset_name in PRESETS):
            known = ", ".join((*BASELINE_POLICIES, OWN_POLICY))
            presets = ", ".join(f"{OWN_POLICY}:{p}" for p in sorted(PRESETS))
            raise ConfigError(f"unknown policy {name!r}; known policies: {known}, {presets}")
        if name in out:
            raise ConfigError(f"policy {name!r} is listed twice")
        out.append(name)
    if not out:
        raise ConfigError("no policy given; e.g. --policy none,ctxbudget")
    return tuple(out)


def wire_format(spec: ModelSpec) -> Format:
    """The request format a model's provider speaks (OpenAI chat for everyone else)."""
    return "anthropic" if spec.provider == "anthropic" else "openai_chat"


class _Baseline:
    """A pure function of the client's request, re-applied at every call."""

    def __init__(
        self,
        name: str,
        view_of: Callable[[Sequence[Item]], list[Item]],
        render: Callable[[Sequence[Item]], dict[str, Any]],
        cached: bool,
    ) -> None:
        self.name, self.cached, self.marks_cache = name, cached, False
        self._view_of, self._render = view_of, render

    def step(self, history: Sequence[Item], request: Sequence[Item]) -> Step:
        view = self._view_of(request)
        return Step(view=view, body=self._render(view))

    def close(self) -> None:
        return None


class _Managed:
    """ctxbudget's ContextManager fed the whole session item by item (the client's own
    resets are not applied: the manager manages the history in the client's place)."""

    def __init__(
        self,
        name: str,
        spec: ModelSpec,
        tools: Sequence[ToolSpec],
        clock: Callable[[], float],
        preset_name: str,
    ) -> None:
        self.name, self.cached = name, True
        self.marks_cache = wire_format(spec) == "anthropic"
        # a log is what happened: what a provider would refuse (an interrupted call, a
        # repeated id) is repaired as the door states, not refused
        self._manager = ContextManager(spec, policy=preset_name, clock=clock, repair=True)
        if tools:
            self._manager.set_tools(list(tools))
        self._fed = 0
        self._provider: Any = "anthropic" if wire_format(spec) == "anthropic" else "openai"

    def step(self, history: Sequence[Item], request: Sequence[Item]) -> Step:
        manager = self._manager
        manager.extend(list(history[self._fed :]))
        self._fed = len(history)
        body = manager.prepare(self._provider)
        report = manager.last_report
        records = report.records if report is not None else ()
        return Step(view=manager.view.items, body=body, compactions=records)

    def close(self) -> None:
        self._manager.close()


def start_policy(
    name: str,
    tools: Sequence[ToolSpec],
    spec: ModelSpec,
    counter: TokenCounter,
    clock: Callable[[], float],
) -> PolicyRunner:
    """A fresh runner of policy ``name`` for one session (names as :func:`check_policies`)."""
    render = _renderer(spec, tools)
    if name == "none-nocache":
        return _Baseline(name, full_history, render, cached=False)
    if name == "none":
        return _Baseline(name, full_history, render, cached=True)
    if name == "mask-last-10":
        return _Baseline(name, mask_observations, render, cached=True)
    if name == "clear-tool-uses":

        def count(items: Sequence[Item]) -> int:
            return sum(counter.count_item(i).tokens for i in items)

        return _Baseline(name, lambda h: clear_tool_uses(h, count), render, cached=True)
    preset_name = name.partition(":")[2] or DEFAULT_POLICY
    check_policies([name])
    return _Managed(name, spec, tools, clock, preset_name)


def _renderer(
    spec: ModelSpec, tools: Sequence[ToolSpec]
) -> Callable[[Sequence[Item]], dict[str, Any]]:
    if wire_format(spec) == "anthropic":
        anthropic = AnthropicRenderer()
        return lambda view: anthropic.render(view, tools, model=spec.name, max_tokens=MAX_OUTPUT)
    chat = OpenAIChatRenderer()
    return lambda view: chat.render(view, tools, model=spec.name)
