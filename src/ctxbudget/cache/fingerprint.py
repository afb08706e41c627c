"""Fingerprint a rendered request block by block, and name the first block that changed.

A provider's prompt cache only helps while the start of each request is byte-identical to
the previous one. Each block (the tool schemas, the system prompt, each message) gets a
digest of its canonical JSON (``cache_control`` markers left out, as providers do) and a
chained digest of everything up to it. When a new request does not extend the previous one,
:func:`find_bust` says where it diverged and how: the "cache-bust detector".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from itertools import accumulate, islice
from typing import Any, TypeVar, overload

from ctxbudget.convert.anthropic import from_anthropic, from_anthropic_tools
from ctxbudget.convert.openai_chat import from_openai_chat, from_openai_chat_tools
from ctxbudget.convert.openai_responses import from_openai_responses, from_openai_responses_tools
from ctxbudget.convert.request import Format
from ctxbudget.tokens.counter import TokenCounter
from ctxbudget.tokens.framing import Tally

__all__ = [
    "Block",
    "CacheBust",
    "CacheBustWarning",
    "Fingerprint",
    "Fingerprinter",
    "Prefix",
    "chain_digest",
    "find_bust",
    "head_blocks",
]

_PREVIEW = 60
"""Characters of context shown on each side of a change."""


class CacheBustWarning(UserWarning):
    """A request's prefix changed where no compaction was planned: the cache was lost."""


@dataclass(frozen=True, slots=True)
class Block:
    """One cacheable unit of a request."""

    label: str
    """Where it is in the body, e.g. ``tools``, ``system``, ``messages[4] (tool)``."""
    digest: str
    """sha256 of its canonical JSON, without cache markers."""
    tokens: int
    """Its input tokens (as the session's counter counts them; an estimate for some models)."""
    parts: int
    """Content blocks inside it (what Anthropic's 20-block lookback counts)."""
    text: str
    """Its canonical JSON, to say what changed."""
    position: int = -1
    """Its index in the body's ``messages`` / ``input`` list; -1 for tools and system."""


def chain_digest(previous: str, block: Block) -> str:
    """The digest of a prefix ending with ``block``, given the digest of the prefix before
    it ("" at the start): equal digests mean equal prefixes."""
    return hashlib.sha256(f"{previous}|{block.digest}".encode()).hexdigest()


T = TypeVar("T")


class Prefix(Sequence[T]):
    """The first ``n`` entries of a list that is only ever appended to past them: a
    read-only, tuple-like view (equal to the tuple of its entries).

    Fingerprints of consecutive requests share one list for their common prefix, so a new
    fingerprint costs its new blocks only.
    """

    __slots__ = ("_items", "_n")

    def __init__(self, items: list[T], n: int) -> None:
        self._items, self._n = items, n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...
    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        if isinstance(index, slice):
            return tuple(self._items[: self._n][index])
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("prefix index out of range")
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        return islice(self._items, self._n)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Prefix | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A rendered request as a chain of blocks (tuple-like sequences, read-only)."""

    blocks: Sequence[Block]
    chain: Sequence[str]
    """``chain[i]``: digest of blocks ``0..i``; equal chains mean equal prefixes."""
    cumulative: Sequence[int]
    """``cumulative[i]``: tokens of blocks ``0..i``."""

    @property
    def digest(self) -> str:
        """The digest of the whole request (empty for an empty request)."""
        return self.chain[-1] if self.chain else ""

    @property
    def tokens(self) -> int:
        """Tokens of the whole request."""
        return self.cumulative[-1] if self.cumulative else 0

    def tokens_before(self, index: int) -> int:
        """Tokens of the blocks before ``index``."""
        return self.cumulative[index - 1] if index > 0 else 0

    def common_prefix(self, other: Fingerprint) -> int:
        """How many leading blocks the two requests share."""
        n = min(len(self.chain), len(other.chain))
        lo, hi = 0, n  # chains are prefix-closed: binary search the first difference
        while lo < hi:
            mid = (lo + hi) // 2
            if self.chain[mid] == other.chain[mid]:
                lo = mid + 1
            else:
                hi = mid
        return lo


@dataclass(frozen=True, slots=True)
class CacheBust:
    """Where and how a request stopped extending the previous one."""

    index: int
    """Index of the first block that differs."""
    label: str
    """That block's place in the body."""
    change: str
    """What changed in it, in words."""
    lost_tokens: int
    """Tokens of the previous request from that block on: cached, now written again."""

    def describe(self) -> str:
        """One line for warnings and reports."""
        return (
            f"prompt prefix changed at {self.label} (block {self.index}): {self.change}; "
            f"{self.lost_tokens:,} previously cached tokens must be written again"
        )


def find_bust(previous: Fingerprint, current: Fingerprint) -> CacheBust | None:
    """The first divergence of ``current`` from ``previous``; None when it extends it."""
    index = previous.common_prefix(current)
    if index >= len(previous.blocks):
        return None
    old = previous.blocks[index]
    lost = previous.tokens - previous.tokens_before(index)
    if index >= len(current.blocks):
        change = f"removed ({old.tokens:,} tokens)"
        return CacheBust(index, old.label, change, lost)
    new = current.blocks[index]
    return CacheBust(index, old.label, _what_changed(old, new), lost)


def _what_changed(old: Block, new: Block) -> str:
    if old.label == "tools" == new.label:
        named = _tool_change(old.text, new.text)
        if named:
            return named
    if old.label != new.label:
        return f"now {new.label}"
    at = next(
        (i for i, (a, b) in enumerate(zip(old.text, new.text, strict=False)) if a != b),
        min(len(old.text), len(new.text)),
    )
    start = max(at - 20, 0)
    before = old.text[start : at + _PREVIEW - 20]
    after = new.text[start : at + _PREVIEW - 20]
    return f"content differs at character {at}: {before!r} → {after!r}"


def _tool_change(old: str, new: str) -> str:
    """Name the first tool whose schema changed, appeared or disappeared."""
    try:
        before = {_tool_name(t): t for t in json.loads(old)}
        after = {_tool_name(t): t for t in json.loads(new)}
    except (ValueError, TypeError, AttributeError):
        return ""
    for name, schema in before.items():
        if name not in after:
            return f"tool {name!r} removed"
        if schema != after[name]:
            return f"schema of tool {name!r} changed"
    added = [n for n in after if n not in before]
    if added:
        return f"tool {added[0]!r} added"
    return "tool order changed"


def _tool_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function")
    if isinstance(function, Mapping):
        return str(function.get("name"))
    return str(tool.get("name"))


def canonical(value: Any) -> str:
    """Canonical JSON of ``value`` without ``cache_control`` markers."""
    return json.dumps(_strip(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_strip(v) for v in value]
    return value


class Fingerprinter:
    """Fingerprints one session's requests; remembers block token counts by digest.

    Consecutive requests of a session mostly extend each other. Told how many leading
    messages are the very objects of the last body fingerprinted (``stable``), it reuses
    the blocks, chain and sums of that prefix and looks at the other blocks only; without
    the hint it still reuses each unchanged block (by identity) and the chain of the
    unchanged prefix.
    """

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self._tallies: dict[tuple[str, str], tuple[Tally, ...]] = {}
        """Each block's tallies by (kind, digest), before the factor."""
        self._by_id: dict[int, tuple[Any, Block, int]] = {}
        self._last: Fingerprint | None = None
        self._last_format: Format | None = None
        self._raws: list[Any] = []
        """The raw object (tools, system, message) of each block of the last fingerprint."""
        self._head = 0
        """How many of them came before the messages (tools, system)."""
        self._store: tuple[list[Block], list[str], list[int]] = ([], [], [])
        """Blocks, chain and sums of the last fingerprint: the lists its views share."""
        self._factor = counter.factor

    def fingerprint(self, body: Mapping[str, Any], fmt: Format, stable: int = 0) -> Fingerprint:
        """The request's blocks in the order the provider caches them.

        ``stable``: how many leading messages are the very objects of the last body
        fingerprinted (0: look at every block).
        """
        if self.counter.factor != self._factor:  # recalibrated: every count changed
            self._factor = self.counter.factor
            self._rescale()
        head, key, entries = _split(body, fmt)
        last = self._last if fmt == self._last_format else None
        raws = self._raws
        keep = 0
        if (
            last is not None
            and stable > 0
            and len(head) == self._head
            and all(h[2] is raws[i] for i, h in enumerate(head))
        ):
            keep = len(head) + min(stable, len(entries), len(raws) - len(head))
            if keep > len(head) and entries[keep - len(head) - 1] is not raws[keep - 1]:
                keep = 0  # not the body it was told: look at every block
        del raws[keep:]
        todo = head[keep:] if keep < len(head) else []
        todo.extend(
            (partial(_label, key, i, entries[i]), "message", entries[i], i)
            for i in range(max(keep - len(head), 0), len(entries))
        )
        known = self._by_id
        seen = known if keep else {}  # a whole body: keep only its own blocks
        new: list[Block] = []
        for position, (label, kind, raw, index) in enumerate(todo, keep):
            entry = known.get(id(raw))
            if entry is None or entry[0] is not raw or entry[2] != position:
                entry = (raw, self._block(label(), kind, raw, fmt, index), position)
            seen[id(raw)] = entry
            new.append(entry[1])
            raws.append(raw)
        if len(seen) > 2 * len(raws) + 64:  # amortized: O(1) per new block
            seen = {id(r): seen[id(r)] for r in raws if id(r) in seen}
        self._by_id = seen
        self._head, self._last_format = len(head), fmt
        self._last = self._extend(last, keep, new)
        return self._last

    def _extend(self, last: Fingerprint | None, keep: int, new: list[Block]) -> Fingerprint:
        """The fingerprint of the last one's first ``keep`` blocks plus ``new``; blocks
        that are the last one's own objects keep its digests and sums."""
        blocks, chain, cumulative = self._store if last is not None else ([], [], [])
        same = keep if last is not None else 0
        end = min(len(blocks), keep + len(new))
        while same < end and blocks[same] is new[same - keep]:
            same += 1
        if same < len(blocks):  # fingerprints handed out keep the old lists: start new ones
            blocks, chain, cumulative = blocks[:same], chain[:same], cumulative[:same]
        self._store = (blocks, chain, cumulative)
        digest = chain[-1] if chain else ""
        total = cumulative[-1] if cumulative else 0
        for block in new[same - keep :]:
            digest = chain_digest(digest, block)
            total += block.tokens
            blocks.append(block)
            chain.append(digest)
            cumulative.append(total)
        n = len(blocks)
        return Fingerprint(Prefix(blocks, n), Prefix(chain, n), Prefix(cumulative, n))

    def _rescale(self) -> None:
        """The last fingerprint's blocks counted with the new factor, from their tallies:
        nothing is read or hashed again."""
        if self._last is None:
            return
        blocks, chain, _ = self._store
        scaled = [
            replace(b, tokens=self._scaled(self._tallies[_kind(b), b.digest])) for b in blocks
        ]
        cumulative = list(accumulate(b.tokens for b in scaled))
        by_block = {id(old): new for old, new in zip(blocks, scaled, strict=True)}
        self._by_id = {  # the blocks of older bodies had the old counts: forgotten
            key: (raw, by_block[id(block)], position)
            for key, (raw, block, position) in self._by_id.items()
            if id(block) in by_block
        }
        self._store = (scaled, list(chain), cumulative)
        n = len(scaled)
        self._last = Fingerprint(
            Prefix(scaled, n), Prefix(self._store[1], n), Prefix(cumulative, n)
        )

    def _scaled(self, tallies: tuple[Tally, ...]) -> int:
        return sum(t.total(self._factor).tokens for t in tallies)

    def _block(self, label: str, kind: str, raw: Any, fmt: Format, index: int) -> Block:
        text = canonical(_as_blocks(raw, kind) if fmt == "anthropic" else raw)
        digest = hashlib.sha256(text.encode()).hexdigest()
        tallies = self._tallies.get((kind, digest))
        if tallies is None:
            tallies = self._tallies[kind, digest] = self._count(kind, raw, fmt)
        parts = len(raw) if isinstance(raw, list) else _parts(raw)
        return Block(label, digest, self._scaled(tallies), parts, text, index)

    def _count(self, kind: str, raw: Any, fmt: Format) -> tuple[Tally, ...]:
        """The block's tallies (before the factor: they survive a recalibration)."""
        if kind == "tools":
            reader = {
                "openai_chat": from_openai_chat_tools,
                "openai_responses": from_openai_responses_tools,
                "anthropic": from_anthropic_tools,
            }[fmt]
            return (self.counter.tally_tools(reader(raw)),)
        if fmt == "anthropic":
            items = from_anthropic([raw]) if kind == "message" else from_anthropic([], system=raw)
        elif fmt == "openai_responses":
            items = (
                from_openai_responses([raw])
                if kind == "message"
                else from_openai_responses([], instructions=raw)
            )
        else:
            items = from_openai_chat([raw])
        return tuple(self.counter.tally(item) for item in items)


def _kind(block: Block) -> str:
    """The kind a block was counted as (its label says: ``tools``, ``system`` or
    ``instructions``, else a message)."""
    if block.label == "tools":
        return "tools"
    return "system" if block.label in ("system", "instructions") else "message"


def _as_blocks(raw: Any, kind: str) -> Any:
    """Anthropic reads ``"text"`` and ``[{"type": "text", "text": "text"}]`` alike: so do we."""
    if kind == "system" and isinstance(raw, str):
        return [{"type": "text", "text": raw}]
    if kind == "message" and isinstance(raw, Mapping) and isinstance(raw.get("content"), str):
        content = raw["content"]
        return {**raw, "content": [{"type": "text", "text": content}] if content else []}
    return raw


def _parts(message: Any) -> int:
    content = message.get("content") if isinstance(message, Mapping) else None
    return len(content) if isinstance(content, list) else 1


def head_blocks(body: Mapping[str, Any], fmt: Format) -> int:
    """How many blocks come before the first message of ``body`` (tools, system or
    instructions): the block index of message ``n`` is ``n`` plus this."""
    return len(_split(body, fmt)[0])


def _split(
    body: Mapping[str, Any], fmt: Format
) -> tuple[list[tuple[Callable[[], str], str, Any, int]], str, Sequence[Any]]:
    """The leading blocks (tools, system) as (label maker, kind, raw, -1), the key of the
    message list, and the messages: the blocks in cache order.

    Labels are made only for blocks not seen before, which keeps fingerprinting a long,
    mostly unchanged request cheap.
    """
    head: list[tuple[Callable[[], str], str, Any, int]] = []
    tools = body.get("tools")
    if tools:
        head.append((lambda: "tools", "tools", tools, -1))
    if fmt == "anthropic" and body.get("system"):
        head.append((lambda: "system", "system", body["system"], -1))
    if fmt == "openai_responses" and body.get("instructions"):
        head.append((lambda: "instructions", "system", body["instructions"], -1))
    key = "input" if fmt == "openai_responses" else "messages"
    entries: Sequence[Any] = body.get(key) or ()
    if isinstance(entries, str):
        entries = [{"role": "user", "content": entries}]
    return head, key, entries


def _label(key: str, index: int, entry: Any) -> str:
    role = (entry.get("role") or entry.get("type")) if isinstance(entry, Mapping) else None
    return f"{key}[{index}] ({role})"
