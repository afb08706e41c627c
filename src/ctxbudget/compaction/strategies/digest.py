"""Digest: freeze each tool output the agent has answered into a few of its own lines.

An agent reads a tool output once, in full, and answers it; afterwards what it reuses is
mostly in its own messages, and what it reuses from the output is a path, a name, a number
or an error, nearly always on the line that carried it. So once the agent has answered an
output, this strategy replaces it by a *digest*: the output's own lines, verbatim and in
their order, chosen within a token budget (lines the agent's reply referred to first, then
errors, then lines carrying paths, identifiers and numbers), under a header that names the
original's id so the model (or a human) can recall it whole.

The digest is written once and never changed again, so it is appended to the cache like
any new content; the manager schedules it for the first request after the answer, which
the previous request's cache breakpoint was placed in front of (the content about to be
digested was never written to the cache). The digest stays a tool result: untrusted
output restated, never promoted to instructions.
"""

from __future__ import annotations

import heapq
import json
import re
from dataclasses import dataclass, field
from typing import Literal

from ctxbudget.compaction.strategies._mechanical import (
    TEXT_OBSERVATION,
    Content,
    ResultRef,
    call_label,
    replace_item,
    result_refs,
    with_contents,
)
from ctxbudget.compaction.strategies.base import (
    SMALL_DERIVATIONS,
    CompactionInput,
    derived_kind,
    editable,
    original_id,
)
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import Item, TextPart, item_text
from ctxbudget.session.log import Edit
from ctxbudget.tokens.backends import Tokenizer

__all__ = ["DigestConfig", "digest_text", "has_names", "propose", "worth_digesting"]

_HEADER_TOKENS = 40
"""Allowance for the digest's header line (tokens)."""
_MAX_LINE_CHARS = 400
"""Longer lines (minified code, base64) are data, not something to keep verbatim."""

_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./:-]*[A-Za-z0-9_]")
_ERROR = re.compile(
    r"error|exception|traceback|fail|fatal|panic|warning|denied|not found|no such|"
    r"cannot|can't|invalid|assert|refused|timed? ?out|missing|undefined|unexpected",
    re.IGNORECASE,
)
_CAMEL = re.compile(r"[a-z][A-Z]")


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestConfig:
    """Replace each answered tool output by its most telling lines."""

    kind: Literal["digest"] = "digest"
    max_tokens: int = 300
    """Budget of the kept lines of one output (tokens; the header comes on top)."""
    names_tokens: int = 200
    """Budget of a last line listing names the kept lines miss (tokens; 0: no such line).

    The defaults are measured (``bench/bench_simulate.py``): the cheapest pair, recall
    calls included, that keeps reference retention over 97% and line retention over 95%
    on the long sessions of the shared traces."""
    tokenizer: Tokenizer | None = field(default=None, compare=False)
    """The model's tokenizer, filled in by the manager; required to run."""

    def __post_init__(self) -> None:
        if self.kind != "digest":
            raise ConfigError(f"DigestConfig.kind must be 'digest', got {self.kind!r}")
        tokens = self.max_tokens
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 20:
            raise ConfigError(f"max_tokens must be an int >= 20 (tokens), got {tokens!r}")
        names = self.names_tokens
        if not isinstance(names, int) or isinstance(names, bool) or names < 0:
            raise ConfigError(f"names_tokens must be an int >= 0 (tokens), got {names!r}")
        if self.tokenizer is not None and not isinstance(self.tokenizer, Tokenizer):
            raise ConfigError(f"tokenizer must be a ctxbudget Tokenizer, got {self.tokenizer!r}")


def worth_digesting(config: DigestConfig, tokens: int) -> bool:
    """Whether an output of ``tokens`` is large enough that its digest saves something."""
    return tokens > config.max_tokens + config.names_tokens // 2 + 2 * _HEADER_TOKENS


def _names(text: str) -> set[str]:
    """The name-like words of ``text``: paths, dotted or underscored names, numbers."""
    out: set[str] = set()
    for word in _WORD.findall(text):
        if len(word) < 4 and not word.isdigit():
            continue
        if word.isdigit():
            if len(word) >= 3:
                out.add(word)
        elif (
            any(c in word for c in "/._:")
            or _CAMEL.search(word)
            or (any(c.isdigit() for c in word) and any(c.isalpha() for c in word))
        ):
            out.add(word)
    return out


def has_names(line: str) -> bool:
    """Whether ``line`` names something (a path, identifier, number) or reports an error."""
    return bool(_names(line)) or _ERROR.search(line) is not None


def _choose(
    lines: list[tuple[int, str, set[str], bool]], reply: set[str], budget: int, tok: Tokenizer
) -> list[tuple[int, str]]:
    """Lines within ``budget`` tokens that cover the most names, greedily by value per token.

    A line is worth the names it adds that no chosen line has yet (a name the reply used
    counts 8, a path or dotted name 2, any other 1) plus 4 for the first error lines; lines
    adding nothing are never chosen. Lazy greedy: a line's value only falls as lines are
    chosen, so a stale value is an upper bound.
    """
    costs = {index: tok.count(line) + 1 for index, line, _, _ in lines}
    covered: set[str] = set()
    errors = 0

    def value(names: set[str], error: bool) -> int:
        fresh = names - covered
        worth = sum(8 if n in reply else (2 if "/" in n or "." in n else 1) for n in fresh)
        return worth + (4 if error and errors < 3 else 0)

    heap = [(-value(n, e) / costs[i], i, line, n, e) for i, line, n, e in lines]
    heapq.heapify(heap)
    chosen: list[tuple[int, str]] = []
    used = 0
    while heap:
        _, index, line, names, error = heapq.heappop(heap)
        cost = costs[index]
        if used + cost > budget:
            continue
        worth = value(names, error)
        if worth <= 0:
            continue
        ratio = -worth / cost
        if heap and ratio > heap[0][0]:
            heapq.heappush(heap, (ratio, index, line, names, error))
            continue  # stale: another line is worth more now
        chosen.append((index, line))
        covered |= names
        errors += error
        used += cost
    chosen.sort()
    return chosen


def _names_line(
    candidates: list[tuple[int, str, set[str], bool]],
    kept: list[tuple[int, str]],
    budget: int,
    tok: Tokenizer,
) -> str:
    """``names: a, b, ...``: names of the output the kept lines miss, longest (most
    specific) first, within ``budget`` tokens ('' when there is no room or nothing left)."""
    if budget <= 0:
        return ""
    chosen = {index for index, _ in kept}
    covered = {n for index, _, names, _ in candidates if index in chosen for n in names}
    missing: dict[str, None] = {}
    for index, _, names, _ in candidates:
        if index not in chosen:
            for name in sorted(names - covered, key=lambda n: (-len(n), n)):
                missing.setdefault(name)
    out: list[str] = []
    used = tok.count("also named: ")
    for name in sorted(missing, key=lambda n: (-(("/" in n) or ("." in n)), -len(n))):
        cost = tok.count(name) + 1
        if used + cost > budget:
            continue
        out.append(name)
        used += cost
    return "also named: " + ", ".join(out) if out else ""


def _lines_of(text: str) -> list[str]:
    """The lines to choose from: a JSON document one field per line (a one-line JSON
    answer is one unreadable line otherwise), long lines cut after commas and semicolons."""
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and len(stripped) > _MAX_LINE_CHARS:
        try:
            return json.dumps(json.loads(stripped), indent=1, ensure_ascii=False).splitlines()
        except ValueError:
            pass
    out: list[str] = []
    for line in text.splitlines():
        rest = line
        while len(rest) > _MAX_LINE_CHARS:
            cut = max(rest.rfind(", ", 0, _MAX_LINE_CHARS), rest.rfind("; ", 0, _MAX_LINE_CHARS))
            if cut <= 0:
                break
            out.append(rest[: cut + 1])
            rest = rest[cut + 2 :]
        out.append(rest)
    return out


def digest_text(
    text: str,
    *,
    reply: str,
    budget: int,
    tokenizer: Tokenizer,
    item_id: str,
    label: str,
    names_budget: int = 0,
) -> str:
    """The digest of ``text``: its most telling lines within ``budget`` tokens, verbatim and
    in their order, under a header naming ``item_id`` for recall."""
    all_lines = _lines_of(text)
    candidates: list[tuple[int, str, set[str], bool]] = []
    seen: set[str] = set()
    for index, line in enumerate(all_lines):
        stripped = line.strip()
        if not stripped or len(stripped) > _MAX_LINE_CHARS or stripped in seen:
            continue
        seen.add(stripped)
        names = _names(stripped)
        error = _ERROR.search(stripped) is not None
        if names or error:
            candidates.append((index, line.rstrip(), names, error))
    kept = _choose(candidates, _names(reply), budget, tokenizer)
    extra = _names_line(candidates, kept, names_budget, tokenizer)
    if extra:
        kept.append((len(all_lines), extra))
    about = f" of {label}" if label else ""
    header = (
        f"[digest{about}: {len(kept)} of {len(all_lines)} lines kept, verbatim; "
        f'full output: recall("{item_id}")]'
    )
    body = "\n".join(line for _, line in kept)
    return f"{header}\n{body}" if body else header


def _reply_after(items: tuple[Item, ...], index: int) -> Item | None:
    for item in items[index + 1 :]:
        if item.role == "assistant":
            return item
    return None


def _digest_ref(
    config: DigestConfig, tok: Tokenizer, ref: ResultRef, reply: Item, view: CompactionInput
) -> Content | None:
    content = ref.part.content
    if not isinstance(content, str):
        if not all(isinstance(p, TextPart) for p in content):
            return None  # images and documents are left to the clearing strategies
        content = "".join(p.text for p in content if isinstance(p, TextPart))
    if not worth_digesting(config, tok.count(content)):
        return None
    label = "" if ref.index == TEXT_OBSERVATION else call_label(ref.call, 60)
    digest = digest_text(
        content,
        reply=item_text(reply),
        budget=config.max_tokens,
        tokenizer=tok,
        item_id=original_id(ref.item.id),
        label=label,
        names_budget=config.names_tokens,
    )
    return digest


def propose(config: DigestConfig, view: CompactionInput) -> tuple[Edit, ...]:
    """Digest every editable tool output in the view that a later assistant item answered
    (whatever ``need`` says: the manager decides when to run this)."""
    tok = config.tokenizer
    if tok is None:
        raise ConfigError(
            "DigestConfig.tokenizer is not set; pass the model's tokenizer, e.g. "
            "DigestConfig(tokenizer=TiktokenTokenizer.load('o200k_base'))"
        )
    items = view.items
    position = {item.id: n for n, item in enumerate(items)}
    contents: dict[str, dict[int, Content]] = {}
    holders: dict[str, Item] = {}
    for ref in result_refs(items, text_observations=True):
        item = ref.item
        if derived_kind(item.id) in SMALL_DERIVATIONS or not editable(item, view):
            continue
        reply = _reply_after(items, position[item.id])
        if reply is None:
            continue  # not answered yet: the agent still needs it whole
        new = _digest_ref(config, tok, ref, reply, view)
        if new is not None:
            contents.setdefault(item.id, {})[ref.index] = new
            holders[item.id] = item
    return tuple(
        replace_item(
            holders[item_id],
            with_contents(holders[item_id], changed),
            "placeholder",
            "digest",
            "answered tool output frozen as a digest of its lines",
        )
        for item_id, changed in contents.items()
    )
