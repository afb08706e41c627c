"""Shorten: keep only the telling lines of the agent's own answered messages.

Most of what an agent reuses comes from its own earlier messages, and what it reuses there
is a command, a path, a name, a number or a decision, on the line that said it. Once an
assistant message has been answered (the agent has moved on to its next message), this
strategy keeps its commands (fenced code blocks, whole) and every line naming something
(paths, identifiers, numbers, errors) verbatim, and drops the lines of plain prose, with
a marker naming the original for recall. Tool calls and reasoning are never touched, so
calls stay paired with their results and signed thinking stays as it was sent.

Like the digest, it is scheduled once per message, the first request after the agent's
next message, where the previous request's cache breakpoint stood in front of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ctxbudget.compaction.strategies._mechanical import replace_item
from ctxbudget.compaction.strategies.base import CompactionInput, derived_kind, editable
from ctxbudget.compaction.strategies.digest import has_names
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import Item, Part, TextPart
from ctxbudget.session.log import Edit

__all__ = ["ShortenConfig", "propose", "shorten_text", "would_shorten"]

_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShortenConfig:
    """Drop the nameless prose lines of answered assistant messages."""

    kind: Literal["shorten"] = "shorten"
    min_chars: int = 400
    """Messages shorter than this (characters) are left alone: too little to gain."""
    min_saving: float = 0.2
    """Least share of the text a shortening must remove to be made at all."""

    def __post_init__(self) -> None:
        if self.kind != "shorten":
            raise ConfigError(f"ShortenConfig.kind must be 'shorten', got {self.kind!r}")
        chars = self.min_chars
        if not isinstance(chars, int) or isinstance(chars, bool) or chars < 0:
            raise ConfigError(f"min_chars must be an int >= 0, got {chars!r}")
        share = self.min_saving
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            raise ConfigError(f"min_saving must be a fraction in [0, 1), got {share!r}")


def shorten_text(text: str, *, item_id: str) -> str:
    """``text`` with its fenced blocks and its lines naming something kept verbatim, other
    lines dropped (a run of dropped lines leaves one ``…``), and a recall marker."""
    out: list[str] = []
    fenced = False
    dropped = 0
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            out.append(line)
        elif fenced or not line.strip() or has_names(line):
            out.append(line)
        else:
            dropped += 1
            if not out or out[-1] != "…":
                out.append("…")
    if not dropped:
        return text
    while out and not out[-1].strip():
        out.pop()
    out.append(f'[{dropped} lines of prose shortened; full message: recall("{item_id}")]')
    return "\n".join(out)


def _shortened(config: ShortenConfig, item: Item) -> tuple[Part, ...] | None:
    parts: list[Part] = []
    before = after = 0
    for part in item.parts:
        if isinstance(part, TextPart) and len(part.text) >= config.min_chars:
            new = shorten_text(part.text, item_id=item.id)
            before, after = before + len(part.text), after + len(new)
            parts.append(TextPart(text=new, provider_details=part.provider_details))
        else:
            parts.append(part)
    if not before or after > before * (1 - config.min_saving):
        return None
    return tuple(parts)


def would_shorten(config: ShortenConfig, item: Item) -> bool:
    """Whether ``item`` will be shortened once answered (where the next edit will be)."""
    return (
        item.role == "assistant"
        and derived_kind(item.id) is None
        and bool(_shortened(config, item))
    )


def propose(config: ShortenConfig, view: CompactionInput) -> tuple[Edit, ...]:
    """Shorten every editable assistant message in the view that a later assistant message
    follows (whatever ``need`` says: the manager decides when to run this)."""
    edits: list[Edit] = []
    later = False
    for item in reversed(view.items):
        if item.role != "assistant":
            continue
        if later and derived_kind(item.id) is None and editable(item, view):
            parts = _shortened(config, item)
            if parts is not None:
                note = "answered message: prose lines dropped, names and commands kept"
                edits.append(replace_item(item, parts, "truncate", "shorten", note))
        later = True
    edits.reverse()
    return tuple(edits)
