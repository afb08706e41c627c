"""Token-exact text slicing: keep the first and last tokens of a text, drop the middle.

Cutting by characters would miss a token budget in both directions (one CJK character
can be three tokens, twenty spaces one), so the cut is made on the tokenizer's own tokens:

* tiktoken: ``encode_ordinary``, slice, decode; a cut that would split a UTF-8 character
  (byte-level BPE splits emoji and rare CJK over several tokens) backs off to the nearest
  token boundary that is also a character boundary, so no half character is ever produced;
* HuggingFace tokenizers: the same on the encoding's character offsets (tokens sharing one
  character's offsets are never separated);
* :class:`EstimatingTokenizer`: the proxy's tokens are cut at ``floor(limit / factor)``, so
  the scaled count stays within the limit;
* any other tokenizer: a binary search on character prefixes with ``count``.

BPE is not prefix-stable (re-encoding a cut text can merge differently), so
:func:`truncate_middle` re-counts its result and shrinks until it fits: its bound holds
for every input, not just typical ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from ctxbudget.tokens.backends import (
    EstimatingTokenizer,
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
    scale,
)

__all__ = ["head_tail", "truncate_middle"]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (one for one, so character
    offsets still match the input)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _is_boundary(data: bytes, at: int) -> bool:
    """Whether byte offset ``at`` starts a character (or is the end) of UTF-8 ``data``."""
    return at >= len(data) or (data[at] & 0xC0) != 0x80


def _tiktoken(tok: TiktokenTokenizer, text: str, head: int, tail: int) -> tuple[str, str, int]:
    enc = tok.encoding
    clean = _clean(text)
    data = clean.encode("utf-8")
    tokens = enc.encode_ordinary(clean)
    n = len(tokens)
    h = min(head, n)
    h_end = len(enc.decode_bytes(tokens[:h]))
    while not _is_boundary(data, h_end):  # back off over a split character
        h -= 1
        h_end -= len(enc.decode_single_token_bytes(tokens[h]))
    s = max(n - min(tail, n), h)
    s_start = len(data) - len(enc.decode_bytes(tokens[s:]))
    while not _is_boundary(data, s_start):
        s_start += len(enc.decode_single_token_bytes(tokens[s]))
        s += 1
    head_chars = len(data[:h_end].decode("utf-8"))
    tail_chars = len(data[s_start:].decode("utf-8"))
    return text[:head_chars], text[len(text) - tail_chars :], s - h


def _hf(tok: HFTokenizer, text: str, head: int, tail: int) -> tuple[str, str, int]:
    encoding = tok.tokenizer.encode(_clean(text), add_special_tokens=False)
    offsets: list[tuple[int, int]] = encoding.offsets
    n = len(offsets)

    def clean(i: int) -> bool:
        return i in (0, n) or offsets[i - 1][1] <= offsets[i][0]

    def cut(i: int) -> int:
        return 0 if i == 0 else len(text) if i == n else offsets[i][0]

    h = min(head, n)
    while not clean(h):
        h -= 1
    s = max(n - min(tail, n), h)
    while not clean(s):
        s += 1
    return text[: cut(h)], text[cut(s) :], s - h


def _prefix_len(count: Callable[[str], int], text: str, limit: int) -> int:
    """Longest ``k`` with ``count(text[:k]) <= limit`` (binary search; counts are near-monotone)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _generic(tok: Tokenizer, text: str, head: int, tail: int) -> tuple[str, str, int]:
    total = tok.count(text)
    k = _prefix_len(tok.count, text, max(head, 0))
    rest = text[k:]
    j = _prefix_len(lambda s: tok.count(s[::-1]), rest[::-1], max(tail, 0))
    head_text, tail_text = text[:k], rest[len(rest) - j :]
    if k + j == len(text):
        return head_text, tail_text, 0
    return head_text, tail_text, max(total - tok.count(head_text) - tok.count(tail_text), 0)


def head_tail(tokenizer: Tokenizer, text: str, head: int, tail: int) -> tuple[str, str, int]:
    """The longest prefix of at most ``head`` tokens, the longest suffix of at most ``tail``
    tokens after it, and how many tokens lie between (0 when nothing is omitted).

    Counts are in ``tokenizer``'s units (an estimate's omitted count is scaled). Negative
    limits count as 0. The pieces are always a real prefix and suffix of ``text``.
    """
    head, tail = max(head, 0), max(tail, 0)
    if isinstance(tokenizer, EstimatingTokenizer):
        factor = tokenizer.factor
        h, t, omitted = head_tail(
            tokenizer.proxy,
            text,
            math.floor(round(head / factor, 6)),
            math.floor(round(tail / factor, 6)),
        )
        return h, t, scale(omitted, factor)
    if isinstance(tokenizer, TiktokenTokenizer):
        return _tiktoken(tokenizer, text, head, tail)
    if isinstance(tokenizer, HFTokenizer):
        return _hf(tokenizer, text, head, tail)
    return _generic(tokenizer, text, head, tail)


def _fit_prefix(tokenizer: Tokenizer, text: str, limit: int) -> str:
    """The longest prefix of ``text`` that re-counts within ``limit``."""
    budget = limit
    while budget > 0:
        prefix = head_tail(tokenizer, text, budget, 0)[0]
        over = tokenizer.count(prefix) - limit
        if over <= 0:
            return prefix
        budget -= over
    return ""


def truncate_middle(
    tokenizer: Tokenizer,
    text: str,
    max_tokens: int,
    marker: Callable[[int], str],
    *,
    head_share: float = 0.6,
) -> str:
    """``text`` if it fits in ``max_tokens``, else head + ``marker(omitted)`` + tail that does.

    The result always counts at most ``max_tokens`` with ``tokenizer`` (re-counted, not
    assumed). ``head_share`` of the room goes to the head. When even the marker does not
    fit, the result is as much of the marker as fits.
    """
    total = tokenizer.count(text)
    if total <= max_tokens:
        return text
    if max_tokens <= 0:
        return ""
    share = min(max(head_share, 0.0), 1.0)
    widest = marker(total)
    budget = max_tokens - tokenizer.count(widest)
    tries = 0
    while budget > 0:
        head_n = math.floor(budget * share)
        h, t, omitted = head_tail(tokenizer, text, head_n, budget - head_n)
        result = h + marker(omitted) + t
        over = tokenizer.count(result) - max_tokens
        if over <= 0:
            return result
        tries += 1
        budget -= over if tries < 4 else max(over, budget // 2)
    return (
        widest
        if tokenizer.count(widest) <= max_tokens
        else _fit_prefix(tokenizer, widest, max_tokens)
    )
