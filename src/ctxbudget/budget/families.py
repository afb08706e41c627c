"""Family defaults: what a model the price data knows is assumed to have where neither the
price data nor a profile says (window, output limit, tokenizer), read once from
``data/families.toml``. Every figure taken from here is an estimate and labelled so.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ctxbudget.budget.profiles import FACTORS, GENERIC_DEFAULTS, PROVIDER_DEFAULTS, Family

__all__ = ["GENERIC_FAMILY", "FamilyDefault", "match_family"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FamilyDefault:
    """Limits and tokenizer assumed for the models of one family (all estimates)."""

    name: str
    """The family, e.g. ``claude`` or ``gpt-5`` (``generic`` when none matched)."""
    provider: str | None
    """Provider id of the family (``None`` for ``generic``)."""
    context_window: int
    """Assumed window (tokens), used only where the price data has none."""
    max_output_tokens: int
    """Assumed output limit (tokens)."""
    tokenizer: str
    """Tokenizer spec (see :attr:`ModelSpec.tokenizer`)."""
    framing: Family
    """Chat-framing family."""
    estimate_factor: float
    """Model tokens per proxy token (1.0 for exact tokenizers)."""
    note: str
    """Where the assumption comes from, for people."""
    pattern: re.Pattern[str] | None = None
    """What a lower-cased model id must contain (``None``: matches nothing by name)."""


def _load() -> dict[str, Any]:
    text = resources.files("ctxbudget.budget").joinpath("data/families.toml").read_text("utf-8")
    return tomllib.loads(text)


def _family(row: Mapping[str, Any]) -> FamilyDefault:
    tokenizer, framing, factor = PROVIDER_DEFAULTS.get(row["provider"], GENERIC_DEFAULTS)
    tokenizer = row.get("tokenizer", tokenizer)
    if "factor" in row:
        factor = FACTORS[row["factor"]]
    if not tokenizer.startswith("estimate:"):
        factor = 1.0
    return FamilyDefault(
        name=row["name"],
        provider=row["provider"],
        context_window=row["context_window"],
        max_output_tokens=row["max_output_tokens"],
        tokenizer=tokenizer,
        framing=framing,
        estimate_factor=factor,
        note=row["note"],
        pattern=re.compile(row["pattern"]),
    )


_DATA = _load()
FAMILIES: tuple[FamilyDefault, ...] = tuple(_family(row) for row in _DATA["family"])
"""Every family default, first match wins."""
GENERIC_FAMILY = FamilyDefault(
    name="generic",
    provider=None,
    context_window=_DATA["generic"]["context_window"],
    max_output_tokens=_DATA["generic"]["max_output_tokens"],
    tokenizer=_DATA["generic"]["tokenizer"],
    framing=GENERIC_DEFAULTS[1],
    estimate_factor=GENERIC_DEFAULTS[2],
    note=_DATA["generic"]["note"],
)
"""What a priced model of no known family is assumed to have."""


def match_family(model: str) -> FamilyDefault | None:
    """The first family default whose pattern is found in ``model`` (lower-cased), if any."""
    key = model.lower()
    for family in FAMILIES:
        if family.pattern is not None and family.pattern.search(key):
            return family
    return None
