"""What OpenAI's two APIs share: error bodies, framing tokens and the automatic prefix cache.

Counting follows the OpenAI cookbook's recipe with ``o200k_base``: every message costs
``MESSAGE_FRAME`` tokens plus the tokens of its string values (a ``name`` one more), every
tool call ``CALL_FRAME`` plus its name and arguments, tools the tokens of
``json.dumps(tools, sort_keys=True)``, and the reply is primed with ``REPLY_PRIMING``.
The prompt is built as an actual token sequence (framing tokens get negative ids), so
its length is the count and its prefixes are what the cache stores.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from dataclasses import dataclass, field
from typing import Any

from ._core import (
    DEFAULT_MAX_OUTPUT,
    JSON,
    ApiError,
    CacheUse,
    FailureKind,
    Prompt,
    Reply,
    Wire,
    new_id,
    o200k,
)

MESSAGE_FRAME = (-1, -1, -1)
NAME_EXTRA = (-2,)
CALL_FRAME = (-3, -3, -3)
REPLY_PRIMING = (-4, -4, -4)

CACHE_MIN_TOKENS = 1024
CACHE_BLOCK = 128
CACHE_TTL_SECONDS = 600.0
"""Real entries live 5-10 minutes of inactivity (up to an hour off-peak); we use 10."""


def tokens(text: str) -> list[int]:
    """``text`` in o200k_base, special-token text treated as plain text."""
    return o200k().encode_ordinary(text)


def tool_tokens(tools: Any) -> list[int]:
    """The tool definitions' cost: the tokens of their key-sorted JSON."""
    return tokens(json.dumps(tools, sort_keys=True)) if tools else []


def part_tokens(part: Any) -> list[int]:
    """A content part: its text when it has one, otherwise its key-sorted JSON."""
    if isinstance(part, str):
        return tokens(part)
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return tokens(part["text"])
    return tokens(json.dumps(part, sort_keys=True))


def content_tokens(content: Any) -> list[int]:
    """A string, or a list of parts, or (for odd values) their JSON."""
    if content is None:
        return []
    if isinstance(content, list):
        return [t for part in content for t in part_tokens(part)]
    return part_tokens(content)


def call_tokens(name: Any, arguments: Any) -> list[int]:
    """One tool call: its frame, its name and its arguments string."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return [*CALL_FRAME, *tokens(str(name or "")), *tokens(args)]


def reply_output_tokens(reply: Reply) -> int:
    """What a reply costs: text, each call's name and arguments JSON, and reasoning."""
    total = len(tokens(reply.text)) + reply.reasoning_tokens
    for name, args in reply.tool_calls:
        total += len(tokens(name)) + len(tokens(arguments_json(args)))
    for name, text in reply.custom_calls:
        total += len(tokens(name)) + len(tokens(text))
    for item in reply.output_items:
        total += len(tokens(json.dumps(item, sort_keys=True)))
    return total


def arguments_json(args: dict[str, Any]) -> str:
    """Tool arguments as OpenAI sends them: compact JSON."""
    return json.dumps(args, separators=(",", ":"))


@dataclass
class PrefixCache:
    """OpenAI's automatic cache: prompt prefixes at 128-token boundaries from 1024 on.

    Entries are hashes of (model, prompt_cache_key, token prefix); a hit is the longest
    stored prefix of the new prompt, and every boundary is (re)stored with a fresh TTL.
    """

    entries: dict[bytes, float] = field(default_factory=dict)

    def charge(self, model: str, key: Any, sequence: list[int], now: float) -> CacheUse:
        """Bill ``sequence``: the cached prefix length, then store all its boundaries."""
        digest = hashlib.sha256(canonical_key(model, key)).digest()
        boundaries: list[bytes] = []
        for end in range(CACHE_BLOCK, len(sequence) + 1, CACHE_BLOCK):
            block = array("q", sequence[end - CACHE_BLOCK : end]).tobytes()
            digest = hashlib.sha256(digest + block).digest()
            boundaries.append(digest)
        cached = 0
        for index, digest in enumerate(boundaries):
            end = (index + 1) * CACHE_BLOCK
            if end < CACHE_MIN_TOKENS:
                continue
            if self.entries.get(digest, -1.0) > now:
                cached = end
            self.entries[digest] = now + CACHE_TTL_SECONDS
        return CacheUse(read=cached)


def canonical_key(model: str, key: Any) -> bytes:
    """Cache partition: the model and the request's ``prompt_cache_key``."""
    return json.dumps([model, key]).encode()


def overflow_message(tokens_in: int, requested: int, window: int) -> str:
    """OpenAI's context_length_exceeded wording: prompt alone, or prompt plus completion."""
    if tokens_in > window or requested <= 0:
        return (
            f"This model's maximum context length is {window} tokens. However, your messages "
            f"resulted in {tokens_in} tokens. Please reduce the length of the messages."
        )
    return (
        f"This model's maximum context length is {window} tokens. However, you requested "
        f"{tokens_in + requested} tokens ({tokens_in} in the messages, {requested} in the "
        "completion). Please reduce the length of the messages or completion."
    )


class OpenAIWire(Wire):
    """Errors and failures in OpenAI's ``{"error": {...}}`` format."""

    output_fields: tuple[str, ...] = ()
    """Body fields naming the output budget, first present wins."""

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
        """``{"error": {message, type, param, code}}`` with an ``x-request-id``."""
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return ApiError(status, body, {"x-request-id": new_id("req_"), **(headers or {})})

    def failure(self, kind: FailureKind, body: JSON) -> ApiError:
        """429 rate_limit_exceeded, 500 server_error or 503 overloaded."""
        if kind == "rate_limit":
            return self.error(
                429,
                "requests",
                f"Rate limit reached for {body.get('model')} on requests per min (RPM): "
                "Limit 1, Used 1, Requested 1. Please try again in 10ms.",
                code="rate_limit_exceeded",
                headers={"retry-after-ms": "10", "retry-after": "0"},
            )
        if kind == "overloaded":
            return self.error(503, "server_error", "The server is overloaded or not ready yet.")
        return self.error(
            500,
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        )

    def require_model(self, body: JSON) -> None:
        """400 when the body names no model."""
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise self.error(
                400,
                "invalid_request_error",
                "Missing required parameter: 'model'.",
                param="model",
                code="missing_required_parameter",
            )

    def requested_output(self, body: JSON) -> int:
        """The first output-budget field present, else the default."""
        for name in self.output_fields:
            value = body.get(name)
            if isinstance(value, int):
                return value
        return DEFAULT_MAX_OUTPUT

    def output_tokens(self, reply: Reply) -> int:
        """o200k tokens of the reply plus its reasoning."""
        return reply_output_tokens(reply)

    def cached_prompt(self, cache: PrefixCache, body: JSON, sequence: list[int]) -> Prompt:
        """A Prompt of ``sequence`` billed through the shared prefix cache."""
        model = str(body.get("model"))
        key = body.get("prompt_cache_key")
        return Prompt(len(sequence), lambda now: cache.charge(model, key, sequence, now))
