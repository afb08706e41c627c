"""The last resort after a reset: cut the largest editable contents so the request fits.

A reset keeps the latest turn verbatim; when that turn alone is bigger than the window
(three parallel 4K tool results in an 8K window, a pasted log...), this shrinks the text of
the largest editable items, head and tail kept, token-exact, with a marker that says how to
get the original back. Pinned, fixed and system items are never cut.
"""

from __future__ import annotations

from collections.abc import Callable

from ctxbudget.compaction.strategies.base import CompactionInput, derived_id, editable
from ctxbudget.session.items import DocumentPart, ImagePart, Item, Part, TextPart, ToolResultPart
from ctxbudget.session.log import Edit
from ctxbudget.tokens.backends import Tokenizer
from ctxbudget.tokens.slicing import truncate_middle

__all__ = ["squeeze_edit"]

_FLOOR = 24
"""Fewest text tokens a cut part keeps (the marker needs some room)."""


def squeeze_edit(view: CompactionInput, tokenizer: Tokenizer) -> Edit | None:
    """One edit shrinking the largest editable item by about ``view.need`` tokens, or None."""
    candidates = [i for i in view.items if editable(i, view)]
    if not candidates or view.need <= 0:
        return None
    biggest = max(candidates, key=view.count)
    size = view.count(biggest)
    keep = max(size - view.need - 8, 0) / size if size else 0.0
    shrunk = _shrink(biggest, keep, tokenizer)
    if shrunk is None:
        return None
    return Edit(kind="truncate", remove=(biggest.id,), insert=(shrunk,), note="squeezed to fit")


def _shrink(item: Item, keep: float, tokenizer: Tokenizer) -> Item | None:
    """A copy with every text cut to about ``keep`` of its tokens; None if nothing changed."""

    def cut(text: str) -> str:
        tokens = tokenizer.count(text)
        limit = max(int(tokens * keep), _FLOOR)
        if tokens <= limit:
            return text
        return truncate_middle(
            tokenizer,
            text,
            limit,
            lambda n: f"\n[... {n} tokens cut to fit the window; full text: recall({item.id!r})]\n",
        )

    parts: list[Part] = []
    changed = False
    for part in item.parts:
        new = _shrink_part(part, cut)
        changed = changed or new is not part
        parts.append(new)
    if not changed:
        return None
    return item.with_(id=derived_id(item.id, "squeeze"), parts=tuple(parts))


def _shrink_part(part: Part, cut: Callable[[str], str]) -> Part:
    if isinstance(part, TextPart):
        text = cut(part.text)
        if text == part.text:
            return part
        return TextPart(text=text, provider_details=part.provider_details)
    if isinstance(part, ToolResultPart):
        if isinstance(part.content, str):
            text = cut(part.content)
            if text == part.content:
                return part
            return ToolResultPart(
                call_id=part.call_id,
                content=text,
                is_error=part.is_error,
                provider_details=part.provider_details,
            )
        inner: list[TextPart | ImagePart | DocumentPart] = []
        for sub in part.content:
            if isinstance(sub, TextPart):
                inner.append(TextPart(text=cut(sub.text), provider_details=sub.provider_details))
            else:
                inner.append(sub)
        return ToolResultPart(
            call_id=part.call_id,
            content=tuple(inner),
            is_error=part.is_error,
            provider_details=part.provider_details,
        )
    return part
