"""The exact request each policy sends at chosen model calls of a session.

The same replay as ``simulate`` (:func:`~ctxbudget.simulate.policies.start_policy`, the
client's own resets applied to baselines, one call every ``STEP_SECONDS``): every policy
is stepped through every call, so ctxbudget's manager compacts exactly as in a simulation,
and the body of each chosen call is kept. Cache marks are not placed (they change no text).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ctxbudget.budget.models import ModelSpec
from ctxbudget.cache.fingerprint import CacheBustWarning
from ctxbudget.simulate.policies import start_policy, wire_format
from ctxbudget.simulate.replay import STEP_SECONDS
from ctxbudget.tokens.counter import TokenCounter
from ctxbudget.traces.session import Session

__all__ = ["StepView", "body_text", "views_at"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepView:
    """What one policy sent at one model call."""

    body: dict[str, Any]
    """The request body (the provider's wire format for the replayed model)."""
    format: str
    """``openai_chat`` or ``anthropic``."""
    tokens: int
    """Input tokens of the request (counted on its items and tools)."""
    exact: bool
    """Whether ``tokens`` is exact (else an estimate)."""


def views_at(
    session: Session,
    policies: Sequence[str],
    spec: ModelSpec,
    calls: Collection[int],
    counter: TokenCounter,
) -> dict[str, dict[int, StepView]]:
    """policy → call → the request that policy sends at that call, for each of ``calls``."""
    wanted = set(calls)
    out: dict[str, dict[int, StepView]] = {}
    fmt = wire_format(spec)
    clock = [0.0]
    for name in policies:
        clock[0] = 0.0
        runner = start_policy(name, session.tools, spec, counter, lambda: clock[0])
        kept: dict[int, StepView] = {}
        try:
            call = 0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CacheBustWarning)
                for index, item in enumerate(session.items):
                    if item.role != "assistant":
                        continue
                    if call > max(wanted, default=-1):
                        break
                    clock[0] += STEP_SECONDS
                    history = session.items[:index]
                    request = session.request(index) if session.resets else history
                    step = runner.step(history, request)
                    if call in wanted:
                        count = counter.count_request(step.view, session.tools)
                        kept[call] = StepView(
                            body=step.body, format=fmt, tokens=count.tokens, exact=count.exact
                        )
                    call += 1
        finally:
            runner.close()
        out[name] = kept
    return out


def body_text(body: dict[str, Any]) -> str:
    """Every text a request carries to the model, one string (tool-call arguments decoded),
    without the tool schemas and the request's settings."""
    out: list[str] = []
    _collect({k: v for k, v in body.items() if k in ("system", "messages", "input")}, out)
    return "\n".join(out)


def _collect(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
        if value[:1] in "{[":
            try:
                decoded = json.loads(value)
            except ValueError:
                return
            _collect(decoded, out)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key not in ("role", "type", "id", "tool_call_id", "tool_use_id", "cache_control"):
                _collect(inner, out)
    elif isinstance(value, list):
        for inner in value:
            _collect(inner, out)
