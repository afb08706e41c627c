"""The report's data: a simulation or an analysis as the plain JSON the HTML page draws.

The page (``report.html``) only draws what is here, so every figure it shows is one the
CLI also prints or emits with ``--json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from importlib import metadata
from typing import Any

from ctxbudget.analyze.analysis import Analysis
from ctxbudget.simulate.results import Simulation

__all__ = ["analysis_report", "simulation_report", "with_probe_accuracy"]


def _version() -> str:
    """ctxbudget's installed version (the package metadata, not the package: no cycle)."""
    try:
        return metadata.version("ctxbudget")
    except metadata.PackageNotFoundError:
        return "unknown"


def _money(value: Decimal | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _components(compositions: Sequence[Mapping[str, list[int]]]) -> list[str]:
    """Every component in first-seen order (each session lists fixed components first)."""
    seen: dict[str, None] = {}
    for composition in compositions:
        for name in composition:
            seen.setdefault(name, None)
    return list(seen)


def simulation_report(
    sim: Simulation, compositions: Mapping[str, Mapping[str, list[int]]], title: str
) -> dict[str, Any]:
    """The report data of a simulation; ``compositions``: session name → composition."""
    totals = sim.totals()
    sessions = []
    for s in sim.sessions:
        sessions.append(
            {
                "name": s.name,
                "format": s.format,
                "calls": s.calls,
                "model": s.model,
                "composition": dict(compositions.get(s.name, {})),
                "recorded_cost": None,
                "computed_cost": None,
                "cache_hit_rate": None,
                "policies": {
                    p: {
                        "context": list(r.context),
                        "cumulative_cost": [
                            c if c is not None else 0.0 for c in r.cumulative_cost()
                        ],
                        "compactions": [
                            {
                                "call": c.call,
                                "strategy": c.strategy,
                                "tokens_before": c.tokens_before,
                                "tokens_after": c.tokens_after,
                            }
                            for c in r.compactions
                        ],
                        "retention": r.retention.share,
                        "line_retention": r.retention.line_share,
                        "recalls": r.recalls,
                        "input_tokens": r.usage.input_tokens,
                        "peak": r.peak,
                        "cached_share": r.cached_share,
                        "input_cost": _money(r.input_cost),
                    }
                    for p, r in s.runs.items()
                },
            }
        )
    return {
        "kind": "simulate",
        "title": title,
        "version": _version(),
        "model": sim.model,
        "provider": sim.provider,
        "exact": sim.exact,
        "components": _components(list(compositions.values())),
        "policies": list(sim.policies),
        "totals": {
            "sessions": len(sim.sessions),
            "calls": sum(s.calls for s in sim.sessions),
            "components": {},
            "policies": {
                p: {
                    "input_tokens": t.input_tokens,
                    "peak": t.peak,
                    "cached_share": t.cached_share,
                    "input_cost": _money(t.input_cost),
                    "output_cost": _money(sim.output_cost),
                    "retention": t.retention.share,
                    "line_retention": t.retention.line_share,
                    "recalls": t.recalls,
                    "compactions": t.compactions,
                    "vs_none": sim.ratio(p, "none"),
                    "worse_than_none": t.worse_than_none,
                }
                for p, t in totals.items()
            },
            "recorded_cost": None,
            "computed_cost": None,
        },
        "sessions": sessions,
    }


def with_probe_accuracy(
    report: dict[str, Any], reader: str, accuracy: Mapping[str, float | None]
) -> dict[str, Any]:
    """``report`` (a simulation's) with each policy's probe accuracy (policy → share of
    probes answered, None when it had none) and the label of the reader that answered."""
    report["probe_reader"] = reader
    for name, totals in report["totals"]["policies"].items():
        totals["probe_accuracy"] = accuracy.get(name)
    return report


def analysis_report(analysis: Analysis, title: str) -> dict[str, Any]:
    """The report data of an analysis."""
    models = sorted({s.model for s in analysis.sessions})
    recorded = [s.recorded_cost for s in analysis.sessions if s.recorded_cost is not None]
    computed = [s.computed_cost for s in analysis.sessions if s.computed_cost is not None]
    return {
        "kind": "analyze",
        "title": title,
        "version": _version(),
        "model": ", ".join(models),
        "provider": "",
        "exact": analysis.exact,
        "components": _components([s.composition for s in analysis.sessions]),
        "policies": [],
        "totals": {
            "sessions": len(analysis.sessions),
            "calls": sum(s.calls for s in analysis.sessions),
            "components": {
                name: {"tokens": tokens, "cost": _money(dollars)}
                for name, (tokens, dollars) in analysis.by_component().items()
            },
            "policies": {},
            "recorded_cost": _money(sum(recorded, Decimal(0))) if recorded else None,
            "computed_cost": _money(sum(computed, Decimal(0))) if computed else None,
        },
        "sessions": [
            {
                "name": s.name,
                "format": s.format,
                "calls": s.calls,
                "model": s.model,
                "composition": s.composition,
                "recorded_cost": _money(s.recorded_cost),
                "computed_cost": _money(s.computed_cost),
                "cache_hit_rate": s.cache_hit_rate,
                "policies": {},
            }
            for s in analysis.sessions
        ],
    }
