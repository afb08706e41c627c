"""Documents the user adds, and search hits over them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctxbudget.errors import UsageError

__all__ = ["Document", "Hit"]


def _meta() -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """One retrievable text."""

    id: str
    """Unique id; the model cites it, usage marking and metrics refer to it."""
    text: str
    """The content put in the context when retrieved."""
    title: str = ""
    """Optional title, shown before the text."""
    domain: str = ""
    """Knowledge domain, for routing (empty: every domain)."""
    metadata: dict[str, Any] = field(default_factory=_meta)
    """Anything else; never sent to the model."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise UsageError(f"a document needs a non-empty string id, got {self.id!r}")
        if not isinstance(self.text, str):
            raise UsageError(f"document {self.id!r}: text must be a string")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """A document a search returned, with its score (higher is better)."""

    document: Document
    """The document."""
    score: float
    """Relevance as the stage that produced the hit scored it."""
