"""Probing sessions under policies, and the accuracy per policy, kind and age."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ctxbudget.billing.prices import Prices
from ctxbudget.budget.models import ModelSpec
from ctxbudget.probe.facts import AGE_BUCKETS, KINDS, Probe, generate_probes
from ctxbudget.probe.readers import Reader, grade
from ctxbudget.probe.views import StepView, views_at
from ctxbudget.tokens.counter import TokenCounter
from ctxbudget.traces.session import Session

__all__ = ["Outcome", "PolicyScore", "ProbeRun", "probe_session", "score"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One probe asked under one policy."""

    probe: Probe
    policy: str
    reply: str
    correct: bool
    input_tokens: int
    output_tokens: int
    calls: int
    """Provider calls made (0 for the offline reader)."""

    def to_json(self) -> dict[str, object]:
        return {
            **self.probe.to_json(),
            "policy": self.policy,
            "reply": self.reply,
            "correct": self.correct,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


def probe_session(
    session: Session,
    policies: Sequence[str],
    spec: ModelSpec,
    reader: Reader,
    counter: TokenCounter,
    *,
    per_session: int = 8,
    probes: Sequence[Probe] | None = None,
    on_view: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Ask every probe of ``session`` (default :func:`generate_probes`) under every policy."""
    asked = list(probes) if probes is not None else generate_probes(session, per_session)
    if not asked:
        return []
    views = views_at(session, policies, spec, {p.call for p in asked}, counter)
    out: list[Outcome] = []
    for policy in policies:
        for probe in asked:
            view: StepView = views[policy][probe.call]
            answer = reader.answer(probe, view)
            if on_view is not None:
                on_view()
            out.append(
                Outcome(
                    probe=probe,
                    policy=policy,
                    reply=answer.text,
                    correct=grade(answer.text, probe.answer),
                    input_tokens=answer.input_tokens,
                    output_tokens=answer.output_tokens,
                    calls=answer.calls,
                )
            )
    return out


@dataclass(slots=True)
class _Tally:
    correct: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.correct += ok
        self.total += 1

    def to_json(self) -> dict[str, object]:
        share = self.correct / self.total if self.total else None
        return {"correct": self.correct, "total": self.total, "accuracy": share}


@dataclass(slots=True, kw_only=True)
class PolicyScore:
    """One policy's probing: accuracy overall, by kind, by age, and what asking cost."""

    policy: str
    overall: _Tally = field(default_factory=_Tally)
    kinds: dict[str, _Tally] = field(default_factory=lambda: {k: _Tally() for k in KINDS})
    ages: dict[str, _Tally] = field(
        default_factory=lambda: {label: _Tally() for label, _, _ in AGE_BUCKETS}
    )
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    cost: Decimal | None = Decimal(0)
    """What the provider calls cost (``None``: unpriced); 0 for the offline reader."""

    @property
    def accuracy(self) -> float | None:
        return self.overall.correct / self.overall.total if self.overall.total else None

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            **self.overall.to_json(),
            "by_kind": {k: t.to_json() for k, t in self.kinds.items()},
            "by_age": {k: t.to_json() for k, t in self.ages.items()},
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "calls": self.calls,
            "cost": None if self.cost is None else str(self.cost),
        }


@dataclass(slots=True, kw_only=True)
class ProbeRun:
    """Outcomes of a probing run and the scores per policy."""

    policies: tuple[str, ...]
    reader: str
    outcomes: list[Outcome] = field(default_factory=list)

    def scores(self, prices: Prices | None) -> dict[str, PolicyScore]:
        """Scores per policy; ``prices``: what the reader's calls cost (offline: none)."""
        return score(self.outcomes, self.policies, prices)


def score(
    outcomes: Iterable[Outcome], policies: Sequence[str], prices: Prices | None
) -> dict[str, PolicyScore]:
    """Accuracy and cost per policy (a policy with no outcome scores nothing)."""
    out = {p: PolicyScore(policy=p) for p in policies}
    for o in outcomes:
        s = out[o.policy]
        s.overall.add(o.correct)
        s.kinds[o.probe.kind].add(o.correct)
        s.ages[o.probe.bucket].add(o.correct)
        s.input_tokens += o.input_tokens
        s.output_tokens += o.output_tokens
        s.calls += o.calls
    for s in out.values():
        s.cost = _cost(s, prices)
    return out


def _cost(s: PolicyScore, prices: Prices | None) -> Decimal | None:
    if s.calls == 0:
        return Decimal(0)
    if prices is None or prices.input is None or prices.output is None:
        return None
    million = Decimal(1_000_000)
    return (
        Decimal(s.input_tokens) * prices.input + Decimal(s.output_tokens) * prices.output
    ) / million
