"""Every model ctxbudget knows: the registry's profiles plus every model of the installed
price data, each resolved with its figures' sources (``ctxbudget models`` lists them)."""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime

from ctxbudget.budget.genai import price_data_models
from ctxbudget.budget.models import ModelSpec, assemble_spec, list_models
from ctxbudget.budget.profiles import match_profile, profile_named, split_provider
from ctxbudget.errors import ConfigError

__all__ = ["known_models", "matches"]


def known_models(pattern: str | None = None, *, at: datetime | None = None) -> list[ModelSpec]:
    """The registry's models and every other model of the price data, by provider then
    name; those matching ``pattern`` (see :func:`matches`) when given."""
    when = at or datetime.now(tz=UTC)
    out: list[ModelSpec] = []
    seen: set[str] = set()
    for spec in list_models(at=when):
        seen.add(spec.pricing_id or spec.name)
        if matches(spec, pattern):
            out.append(spec)
    for row in price_data_models(when):
        if row.pricing_id in seen:
            continue
        seen.add(row.pricing_id)
        bare = split_provider(row.model)[1].lower()
        profile = profile_named(bare) or match_profile(bare)
        try:
            spec = assemble_spec(
                row.model,
                hint=row.provider,
                profile=profile,
                listed_window=row.context_window,
                listed=row.prices,
                pricing_id=row.pricing_id,
            )
        except ConfigError:  # the data's window is below the profile's output limit
            spec = assemble_spec(
                row.model,
                hint=row.provider,
                profile=None,
                listed_window=row.context_window,
                listed=row.prices,
                pricing_id=row.pricing_id,
            )
        if matches(spec, pattern):
            out.append(spec)
    return sorted(out, key=lambda s: (s.provider, s.name))


def matches(spec: ModelSpec, pattern: str | None) -> bool:
    """Whether ``pattern`` (case-insensitive) is in ``provider/name`` or the pricing id, or,
    holding ``*``, ``?`` or ``[``, matches one of them or the bare name as a glob."""
    if not pattern:
        return True
    needle = pattern.lower()
    names = {
        f"{spec.provider}/{spec.name}".lower(),
        spec.name.lower(),
        (spec.pricing_id or "").lower(),
    }
    if any(c in needle for c in "*?["):
        return any(fnmatch.fnmatchcase(name, needle) for name in names)
    return any(needle in name for name in names)
