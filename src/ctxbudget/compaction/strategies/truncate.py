"""Truncate: cut every oversized tool result to its head and tail, at the door.

One ``cat`` of a log file can be larger than the rest of the conversation; keeping its
first and last tokens (where errors and summaries usually are) and noting what was cut
bounds any single result. It runs on each new result whatever ``need`` says and may cut
the latest result too, but never a pinned, fixed or (unless last resort) protected item.
The cut is token-exact (``tokens.slicing``); the full text stays recallable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ctxbudget.compaction.strategies._mechanical import (
    Content,
    fair_shares,
    omission_marker,
    replace_item,
    with_contents,
)
from ctxbudget.compaction.strategies.base import CompactionInput, derived_kind, editable
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import DocumentPart, ImagePart, TextPart, ToolResultPart
from ctxbudget.session.log import Edit
from ctxbudget.tokens.backends import Tokenizer
from ctxbudget.tokens.slicing import truncate_middle

__all__ = ["MIN_MAX_TOKENS", "TruncateConfig", "propose"]

MIN_MAX_TOKENS = 64
"""Smallest ``max_tokens`` allowed: room for the omission marker plus some text."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TruncateConfig:
    """Cut tool results over ``max_tokens`` to head + marker + tail."""

    kind: Literal["truncate"] = "truncate"
    max_tokens: int = 4000
    """Largest tool result text kept whole (tokens)."""
    head_share: float = 0.6
    """Share of ``max_tokens`` given to the head; the tail gets the rest."""
    tokenizer: Tokenizer | None = field(default=None, compare=False)
    """The model's tokenizer, filled in by the manager; required to run."""

    def __post_init__(self) -> None:
        if self.kind != "truncate":
            raise ConfigError(f"TruncateConfig.kind must be 'truncate', got {self.kind!r}")
        if not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool):
            raise ConfigError(f"max_tokens must be an int (tokens), got {self.max_tokens!r}")
        if self.max_tokens < MIN_MAX_TOKENS:
            raise ConfigError(
                f"max_tokens must be at least {MIN_MAX_TOKENS} (room for the omission "
                f"marker), got {self.max_tokens}"
            )
        share = self.head_share
        if not isinstance(share, int | float) or isinstance(share, bool):
            raise ConfigError(f"head_share must be a number, got {share!r}")
        if not (math.isfinite(share) and 0.0 <= share <= 1.0):
            raise ConfigError(f"head_share must be between 0 and 1, got {share!r}")
        if self.tokenizer is not None and not isinstance(self.tokenizer, Tokenizer):
            raise ConfigError(f"tokenizer must be a ctxbudget Tokenizer, got {self.tokenizer!r}")


def _cut(config: TruncateConfig, tok: Tokenizer, content: Content, item_id: str) -> Content | None:
    """The truncated content, or None when it already fits."""
    marker = omission_marker(item_id)
    if isinstance(content, str):
        if tok.count(content) <= config.max_tokens:
            return None
        return truncate_middle(
            tok, content, config.max_tokens, marker, head_share=config.head_share
        )
    texts = [(i, p) for i, p in enumerate(content) if isinstance(p, TextPart)]
    counts = [tok.count(p.text) for _, p in texts]
    if sum(counts) <= config.max_tokens:
        return None
    parts: list[TextPart | ImagePart | DocumentPart] = list(content)
    for (index, part), share in zip(texts, fair_shares(counts, config.max_tokens), strict=True):
        if tok.count(part.text) > share:
            cut = truncate_middle(tok, part.text, share, marker, head_share=config.head_share)
            parts[index] = TextPart(text=cut, provider_details=part.provider_details)
    return tuple(parts)


"""Items this strategy produced end with this: their text already fits ``max_tokens``."""


def propose(config: TruncateConfig, view: CompactionInput) -> tuple[Edit, ...]:
    """Cut every editable tool result whose text is over ``max_tokens`` (whatever ``need``)."""
    tok = config.tokenizer
    if tok is None:
        raise ConfigError(
            "TruncateConfig.tokenizer is not set; pass the model's tokenizer, e.g. "
            "TruncateConfig(tokenizer=TiktokenTokenizer.load('o200k_base'))"
        )
    edits: list[Edit] = []
    for item in view.items:
        if not item.tool_results or not editable(item, view):
            continue
        if view.count(item) <= config.max_tokens or derived_kind(item.id) == "truncate":
            continue  # fits by its cached count, or is already our own cut: no tokenizing
        contents: dict[int, Content] = {}
        for index, part in enumerate(item.parts):
            if isinstance(part, ToolResultPart):
                new = _cut(config, tok, part.content, item.id)
                if new is not None:
                    contents[index] = new
        if contents:
            note = f"tool result over {config.max_tokens:,} tokens cut to head and tail"
            edits.append(
                replace_item(item, with_contents(item, contents), "truncate", "truncate", note)
            )
    return tuple(edits)
