"""Pieces every wire format shares: records, errors, answers, tokens and ids.

Nothing here knows about a provider's JSON shapes; each wire module (``openai_chat``,
``openai_responses``, ``anthropic_messages``) subclasses :class:`Wire` and the server
(``_server``) runs the same pipeline over all three.
"""

from __future__ import annotations

import json
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import tiktoken

from ctxbudget.tokens.encodings import load_encoding

Api: TypeAlias = Literal["openai_chat", "openai_responses", "anthropic"]
FailureKind: TypeAlias = Literal["rate_limit", "server_error", "overloaded", "overflow"]
JSON: TypeAlias = dict[str, Any]

FAILURE_KINDS: tuple[FailureKind, ...] = ("rate_limit", "server_error", "overloaded", "overflow")
DEFAULT_CONTEXT_WINDOW = 200_000
DEFAULT_MAX_OUTPUT = 4096
"""Requested output when the body names no max_tokens / max_completion_tokens / ..."""


@dataclass
class Reply:
    """What the fake model answers; a test's ``script`` returns one per call."""

    text: str = ""
    tool_calls: Sequence[tuple[str, dict[str, Any]]] = ()
    """(tool name, arguments); the server generates unique call ids."""
    reasoning_tokens: int = 0
    """Hidden reasoning, reported in the usage details and included in output_tokens."""
    custom_calls: Sequence[tuple[str, str]] = ()
    """Responses only: (tool name, free-form input) ``custom_tool_call`` items, after the
    function calls (Codex's ``apply_patch`` is such a tool)."""
    output_items: Sequence[dict[str, Any]] = ()
    """Responses only: extra output items sent as given before the message (for instance
    a ``web_search_call``); they cost the tokens of their JSON."""


@dataclass
class Billed:
    """One successful call as the provider billed it, in one shape for all three APIs."""

    api: Api
    model: str
    input_tokens: int
    """All input tokens: uncached + cache read + cache write."""
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    reasoning_tokens: int
    stream: bool


@dataclass(frozen=True)
class CacheUse:
    """How much of a prompt the provider's cache served and stored."""

    read: int = 0
    write_5m: int = 0
    write_1h: int = 0


@dataclass(frozen=True)
class Usage:
    """A call's token usage; wire modules render it in their own field names."""

    input_tokens: int
    cache: CacheUse
    output_tokens: int
    reasoning_tokens: int

    @property
    def uncached(self) -> int:
        """Input neither read from nor written to the cache (Anthropic's ``input_tokens``)."""
        return self.input_tokens - self.cache.read - self.cache.write_5m - self.cache.write_1h


@dataclass
class Prompt:
    """A request's input as the provider sees it: its size and how to bill its caching.

    ``charge`` looks the prompt up in the provider's cache and stores it; the server
    calls it under its lock, once the call is known to succeed.
    """

    tokens: int
    charge: Callable[[float], CacheUse] = field(default=lambda _now: CacheUse())


@dataclass
class Answer:
    """An HTTP answer: a JSON body, or (status 200) a list of server-sent events."""

    status: int = 200
    body: JSON | None = None
    events: list[tuple[str | None, str]] | None = None
    """(``event:`` name or None, ``data:`` text) in order."""
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Raised by the pipeline to answer with a provider error instead of a completion."""

    def __init__(self, status: int, body: JSON, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.answer = Answer(status=status, body=body, headers=dict(headers or {}))


def new_id(prefix: str, length: int = 24) -> str:
    """A fresh id in the provider's style (``call_…``, ``toolu_…``); unique per process."""
    return prefix + uuid.uuid4().hex[:length]


def o200k() -> tiktoken.Encoding:
    """OpenAI's encoding for current models, loaded offline."""
    return load_encoding("o200k_base")


def cl100k() -> tiktoken.Encoding:
    """The encoding the fake Anthropic counts with (scaled, so estimates need calibrating)."""
    return load_encoding("cl100k_base")


def canonical(value: Any) -> str:
    """Key-sorted compact JSON: the provider's view of a structure, independent of key order."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def without_cache_control(value: Any) -> Any:
    """``value`` with every ``cache_control`` key removed: markers neither count nor hash."""
    if isinstance(value, dict):
        return {k: without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [without_cache_control(v) for v in value]
    return value


_WORDS = re.compile(r"\s*\S+|\s+")


def text_pieces(text: str) -> list[str]:
    """``text`` cut into word-sized deltas, as streamed text arrives."""
    return _WORDS.findall(text)


def json_pieces(text: str, size: int = 8) -> list[str]:
    """``text`` cut into fixed-size deltas, as streamed tool arguments arrive."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def sse(event: str | None, data: JSON | str) -> tuple[str | None, str]:
    """One server-sent event; dict data is JSON-encoded."""
    return event, data if isinstance(data, str) else json.dumps(data)


class Wire(ABC):
    """One provider API: how it validates, counts, caches, fails and answers."""

    api: Api

    @abstractmethod
    def error(
        self,
        status: int,
        kind: str,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiError:
        """An error in this API's body format (``kind`` is its error type)."""

    @abstractmethod
    def failure(self, kind: FailureKind, body: JSON) -> ApiError:
        """The injected rate_limit / server_error / overloaded error."""

    @abstractmethod
    def overflow(self, body: JSON, tokens: int, requested: int, window: int) -> ApiError:
        """The context-window error for a prompt of ``tokens`` plus ``requested`` output."""

    @abstractmethod
    def validate(self, body: JSON, *, for_count: bool = False) -> None:
        """Raise the provider's 400 for a malformed body (``for_count``: count endpoint)."""

    @abstractmethod
    def prompt(self, body: JSON) -> Prompt:
        """The prompt's token count and cache accounting."""

    @abstractmethod
    def requested_output(self, body: JSON) -> int:
        """The output budget the body asks for."""

    @abstractmethod
    def output_tokens(self, reply: Reply) -> int:
        """Tokens the reply costs, reasoning included."""

    @abstractmethod
    def respond(self, body: JSON, reply: Reply, usage: Usage) -> Answer:
        """The completion, as JSON or as a stream of events."""

    @abstractmethod
    def count_answer(self, tokens: int) -> Answer:
        """The answer of this API's token-counting endpoint."""
