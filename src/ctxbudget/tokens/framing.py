"""Chat framing: what a request costs beyond the tokens of its texts, per provider family.

A request's prompt tokens are additive: ``sum(count_item(i) for i in items) +
count_tools(tools) + request_overhead()``, so a ledger can update per item.

**openai** (gpt-3.5-turbo, gpt-4 and gpt-4o families; the same rule is applied, marked
estimate, to gpt-4.1, gpt-4.5, gpt-5 and o-series). Source: OpenAI cookbook "How to
count tokens with tiktoken" (examples/How_to_count_tokens_with_tiktoken.ipynb), whose
counts it checks against ``usage.prompt_tokens`` of the API:

* every message costs 3 tokens (``<|start|>{role}\\n{content}<|end|>\\n``) plus the
  tokens of its role, its content and, if given, its ``name`` plus 1;
* every reply is primed with ``<|start|>assistant<|message|>``: 3 tokens per request.

This rule is exact for plain-text ``system`` / ``user`` / ``assistant`` messages on the
models the notebook verifies. Tool schemas follow the notebook's second rule (per-function,
per-property and per-enum constants, ``func_init`` 7 on o200k models and 10 on cl100k
models, plus 12 at the end); the notebook fits those constants to one example, and
OpenAI renders schemas in an undocumented format, so tool counts are estimates. Tool
calls in history, tool results, ``developer`` messages, multi-part content, images and
documents have no published rule: estimated.

**anthropic** and **gemini**: the tokenizers are not public. Text is counted with a
proxy encoding times a factor (see ``backends.ESTIMATE_FACTORS``, refined by
``calibration``); each message adds a guessed 3 framing tokens. Anthropic documents the
tool-use system prompt it adds whenever tools are offered: 346 tokens for Claude 4 models
with ``tool_choice`` auto/none (313 for any/tool; we take the larger). Every count is an
estimate. For exact numbers use the provider's count-tokens endpoint (``remote``).

**generic**: any other chat model: ChatML-like framing (4 per message, 3 per reply),
tools as their JSON text; estimates.

Counts are split into a :class:`Tally`: ``raw`` tokens from the tokenizer (scaled by an
estimating tokenizer's factor) and ``fixed`` tokens set by the rule (never scaled).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, get_args

from ctxbudget.errors import ConfigError
from ctxbudget.session.items import (
    ImagePart,
    Item,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from ctxbudget.tokens.backends import EstimatingTokenizer, Tokenizer, scale
from ctxbudget.tokens.count import TokenCount

__all__ = [
    "FRAMINGS",
    "Family",
    "Framing",
    "Tally",
    "ToolRule",
    "count_item",
    "count_tools",
    "get_framing",
    "raw_counter",
    "request_overhead",
    "tally_item",
    "tally_tools",
]

Family: TypeAlias = Literal["openai", "anthropic", "gemini", "generic"]
"""A provider family: decides how messages and tools are framed."""

_EXACT_ROLES: Final = frozenset({"system", "user", "assistant"})
"""Roles the OpenAI message rule is verified for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolRule:
    """The OpenAI cookbook's constants for counting function definitions."""

    func_init: int
    """Per function (7 on o200k models, 10 on cl100k models)."""
    prop_init: int = 3
    """Once per function that has properties."""
    prop_key: int = 3
    """Per property."""
    enum_init: int = -3
    """Per property with an ``enum``."""
    enum_item: int = 3
    """Per enum value, plus the value's tokens."""
    func_end: int = 12
    """Once per request with any function."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Framing:
    """How one provider family frames messages and tools; all numbers are model tokens."""

    family: Family
    """The provider family."""
    per_message: int
    """Framing tokens of every message."""
    per_name: int
    """Extra tokens when a message has a ``name`` (besides the name's own tokens)."""
    count_role: bool
    """Whether the role label's tokens are counted (OpenAI) or folded into ``per_message``."""
    reply_priming: int
    """Tokens added once per request (OpenAI's ``<|start|>assistant<|message|>``)."""
    messages_exact: bool
    """True when the message rule is published and verified for this model."""
    tool_rule: ToolRule | None
    """OpenAI's function-definition rule; ``None`` counts a tool as its JSON text."""
    tools_overhead: int = 0
    """Tokens added once when any tool is offered (Anthropic's tool-use system prompt)."""
    per_tool_call: int = 8
    """Guessed framing tokens of one tool call, besides its name and arguments."""
    per_tool_result: int = 0
    """Guessed framing tokens of one tool result block, besides its content."""
    image_tokens: int = 765
    """Guess for an image of unknown size (OpenAI: 1024x1024 at high detail on gpt-4o)."""
    low_detail_image_tokens: int = 85
    """An image sent with ``detail="low"``."""
    document_tokens: int = 1500
    """Guess for a document given only by URL."""


FRAMINGS: Final[dict[str, Framing]] = {
    "openai": Framing(
        family="openai",
        per_message=3,
        per_name=1,
        count_role=True,
        reply_priming=3,
        messages_exact=True,
        tool_rule=ToolRule(func_init=7),
    ),
    "anthropic": Framing(
        family="anthropic",
        per_message=3,
        per_name=0,
        count_role=False,
        reply_priming=3,
        messages_exact=False,
        tool_rule=None,
        tools_overhead=346,
        per_tool_call=12,
        per_tool_result=8,
        image_tokens=1600,
        low_detail_image_tokens=1600,
    ),
    "gemini": Framing(
        family="gemini",
        per_message=3,
        per_name=0,
        count_role=False,
        reply_priming=3,
        messages_exact=False,
        tool_rule=None,
        per_tool_call=8,
        per_tool_result=8,
        image_tokens=1120,
        low_detail_image_tokens=280,
    ),
    "generic": Framing(
        family="generic",
        per_message=4,
        per_name=1,
        count_role=True,
        reply_priming=3,
        messages_exact=False,
        tool_rule=None,
    ),
}
"""The default framing of each family; OpenAI's is the gpt-4o rule (see ``resolve``)."""


def get_framing(framing: Framing | str) -> Framing:
    """A :class:`Framing` from itself or a family name."""
    if isinstance(framing, Framing):
        return framing
    found = FRAMINGS.get(framing)
    if found is None:
        raise ConfigError(
            f"unknown provider family {framing!r}; use one of {', '.join(get_args(Family))}, "
            "or framing_for_model(model)"
        )
    return found


@dataclass(frozen=True, slots=True)
class Tally:
    """A count split into tokenizer tokens and rule tokens, before any estimate factor."""

    raw: int
    """Tokens counted by the tokenizer (the proxy's, for an estimating tokenizer)."""
    fixed: int
    """Tokens set by the framing rule, in model tokens; never scaled."""
    exact: bool
    """True only when the tokenizer and every rule used are exact."""

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.raw + other.raw, self.fixed + other.fixed, self.exact and other.exact)

    def total(self, factor: float = 1.0) -> TokenCount:
        """The count as model tokens: ``raw`` scaled by ``factor``, plus ``fixed``."""
        return TokenCount(scale(self.raw, factor) + self.fixed, self.exact)


_EMPTY: Final = Tally(0, 0, True)


def raw_counter(tokenizer: Tokenizer) -> tuple[Callable[[str], int], float]:
    """The unscaled counting function of ``tokenizer`` and the factor to apply after."""
    if isinstance(tokenizer, EstimatingTokenizer):
        return tokenizer.proxy.count, tokenizer.factor
    return tokenizer.count, 1.0


def _opaque(text: str | None) -> int:
    """Guess for binary data given inline (base64): one token per 4 characters."""
    return math.ceil(len(text) / 4) if text else 0


def _tally_part(part: Part, count: Callable[[str], int], framing: Framing) -> Tally:
    """One part: text is counted; everything without a published rule is inexact."""
    if isinstance(part, TextPart):
        return Tally(count(part.text), 0, True)
    if isinstance(part, ToolCallPart):
        return Tally(count(part.name) + count(part.arguments), framing.per_tool_call, False)
    if isinstance(part, ToolResultPart):
        if isinstance(part.content, str):
            inner = Tally(count(part.content), 0, False)
        else:
            inner = sum((_tally_part(p, count, framing) for p in part.content), _EMPTY)
        return inner + Tally(0, framing.per_tool_result, False)
    if isinstance(part, ReasoningPart):
        # Opaque signatures / encrypted reasoning are not model-visible text: not counted.
        return Tally(count(part.text), 0, False)
    if isinstance(part, ImagePart):
        low = part.detail == "low"
        return Tally(0, framing.low_detail_image_tokens if low else framing.image_tokens, False)
    if part.media_type == "text/plain" and part.data is not None:
        return Tally(count(part.data), 0, False)
    title = count(part.title) if part.title else 0
    body = _opaque(part.data) if part.data else framing.document_tokens
    return Tally(title, body, False)


def tally_item(
    item: Item,
    tokenizer: Tokenizer,
    framing: Framing | str,
    *,
    count_label: Callable[[str], int] | None = None,
) -> Tally:
    """The tokens one item costs in a request (``count_label`` may memoize role/name counts)."""
    rule = get_framing(framing)
    count, _ = raw_counter(tokenizer)
    label = count_label or count
    raw = label(item.role) if rule.count_role else 0
    fixed = rule.per_message
    exact = tokenizer.exact and rule.messages_exact and item.role in _EXACT_ROLES
    if item.name is not None:
        raw += label(item.name)
        fixed += rule.per_name
    parts = item.parts
    if len(parts) == 1 and isinstance(parts[0], TextPart):  # the common case, kept fast
        return Tally(raw + count(parts[0].text), fixed, exact)
    total = Tally(raw, fixed, exact and len(parts) <= 1)
    for part in parts:
        total += _tally_part(part, count, rule)
    return total


def _strip_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _tally_openai_tools(
    tools: Sequence[ToolSpec], count: Callable[[str], int], rule: ToolRule
) -> Tally:
    """The cookbook's function-definition rule; nested schemas (not covered) as JSON text."""
    raw = 0
    fixed = rule.func_end
    for spec in tools:
        fixed += rule.func_init
        raw += count(f"{spec.name}:{_strip_period(spec.description or '')}")
        properties = spec.parameters.get("properties") or {}
        if not isinstance(properties, dict):
            raw += count(_json(properties))
            continue
        if properties:
            fixed += rule.prop_init
        for key, schema in properties.items():
            fixed += rule.prop_key
            prop = schema if isinstance(schema, dict) else {}
            if "enum" in prop:
                fixed += rule.enum_init
                for value in prop["enum"] or ():
                    fixed += rule.enum_item
                    raw += count(value if isinstance(value, str) else _json(value))
            kind = prop.get("type", "")
            kind_text = kind if isinstance(kind, str) else _json(kind)
            desc = _strip_period(str(prop.get("description", "")))
            raw += count(f"{key}:{kind_text}:{desc}")
            extra = {k: v for k, v in prop.items() if k not in ("type", "description", "enum")}
            if extra:  # e.g. items / properties of nested objects: beyond the cookbook rule
                raw += count(_json(extra))
    return Tally(raw, fixed, False)


def tally_tools(tools: Sequence[ToolSpec], tokenizer: Tokenizer, framing: Framing | str) -> Tally:
    """The tokens a list of tool schemas costs; zero when there are none. Always an estimate."""
    if not tools:
        return _EMPTY
    rule = get_framing(framing)
    count, _ = raw_counter(tokenizer)
    if rule.tool_rule is not None:
        return _tally_openai_tools(tools, count, rule.tool_rule)
    raw = sum(
        count(_json({"name": t.name, "description": t.description, "parameters": t.parameters}))
        for t in tools
    )
    return Tally(raw, rule.tools_overhead, False)


def count_item(item: Item, tokenizer: Tokenizer, framing: Framing | str) -> TokenCount:
    """Tokens one item costs in a request of this family (uncached; see ``TokenCounter``)."""
    return tally_item(item, tokenizer, framing).total(raw_counter(tokenizer)[1])


def count_tools(
    tools: Sequence[ToolSpec], tokenizer: Tokenizer, framing: Framing | str
) -> TokenCount:
    """Tokens the tool schemas cost in a request of this family."""
    return tally_tools(tools, tokenizer, framing).total(raw_counter(tokenizer)[1])


def request_overhead(framing: Framing | str) -> TokenCount:
    """Tokens a request costs once, whatever it holds (OpenAI: 3 to prime the reply)."""
    rule = get_framing(framing)
    return TokenCount(rule.reply_priming, rule.messages_exact)
