"""``POST /v1/messages`` (Anthropic Messages, plain and streamed) and ``/count_tokens``.

Counting is deliberately unlike OpenAI's: each text or JSON piece costs its
``cl100k_base`` tokens × 1.1 rounded up, each message 3 more, each tool its key-sorted
JSON. Clients that estimate with another tokenizer must calibrate against usage.

The prompt is a sequence of blocks — tools, system blocks, message content blocks (a
string content is one block) — and caching is explicit: ``cache_control`` on a block is
a breakpoint (at most 4). A cache entry is the hash of the prefix ending at a
breakpoint. Reading checks each breakpoint and up to 20 blocks before it for a live
entry and takes the longest; writing bills everything from the hit to the last
breakpoint, each stretch at the TTL of the breakpoint that ends it. Prefixes shorter
than the model's minimum are neither read nor written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ._core import (
    DEFAULT_MAX_OUTPUT,
    JSON,
    Answer,
    ApiError,
    CacheUse,
    FailureKind,
    Prompt,
    Reply,
    Usage,
    Wire,
    canonical,
    cl100k,
    json_pieces,
    new_id,
    sse,
    text_pieces,
    without_cache_control,
)

MESSAGE_EXTRA = 3
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def scaled(text: str) -> int:
    """One piece's cost: cl100k tokens × 1.1, rounded up (in integers, no float drift)."""
    return (11 * len(cl100k().encode_ordinary(text)) + 9) // 10


def minimum_cacheable(model: str) -> int:
    """The shortest prefix the model caches (Haiku 3 / 3.5 spelled either way)."""
    if any(name in model for name in ("opus-4-5", "opus-4-6", "haiku-4-5")):
        return 4096
    if any(name in model for name in ("haiku-3", "3-haiku", "3-5-haiku")):
        return 2048
    return 1024


def block_tokens(block: Any) -> int:
    """A content block: its text, tool call, tool result or (else) key-sorted JSON."""
    if isinstance(block, str):
        return scaled(block)
    if not isinstance(block, dict):
        return scaled(json.dumps(block, sort_keys=True))
    kind = block.get("type")
    if kind == "text":
        return scaled(str(block.get("text", "")))
    if kind == "tool_use":
        return scaled(str(block.get("name", ""))) + scaled(
            json.dumps(block.get("input"), sort_keys=True)
        )
    if kind == "tool_result":
        content = block.get("content", "")
        parts = content if isinstance(content, list) else [content]
        return sum(block_tokens(part) for part in parts)
    if kind == "thinking":
        return scaled(str(block.get("thinking", "")))
    return scaled(json.dumps(without_cache_control(block), sort_keys=True))


def as_blocks(content: Any) -> list[Any]:
    """String content is one text block."""
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content if isinstance(content, str) else str(content)}]


@dataclass(frozen=True)
class Block:
    """One cacheable unit of the prompt: where it sits, what it costs, its breakpoint TTL."""

    key: str
    tokens: int
    ttl: str | None


def walk(body: JSON) -> Iterator[tuple[list[Any], Any]]:
    """(position, block) for tools, then system, then every message's content blocks."""
    for tool in body.get("tools") or []:
        yield ["tool"], tool
    system = body.get("system")
    if system is not None:
        for block in as_blocks(system):
            yield ["system"], block
    for index, message in enumerate(body.get("messages") or []):
        if isinstance(message, dict):
            for position, block in enumerate(as_blocks(message.get("content", ""))):
                yield ["message", index, message.get("role"), position], block


def breakpoint_ttl(block: Any) -> str | None:
    """The TTL a block's ``cache_control`` asks for (5m by default), None without one."""
    control = block.get("cache_control") if isinstance(block, dict) else None
    return str(control.get("ttl", "5m")) if isinstance(control, dict) else None


def prompt_blocks(body: JSON) -> list[Block]:
    """The prompt as cacheable blocks, each keyed by its position and marker-free content."""
    blocks: list[Block] = []
    for where, block in walk(body):
        if where[0] == "tool":
            tokens = scaled(json.dumps(without_cache_control(block), sort_keys=True))
        else:
            tokens = block_tokens(block) + (
                MESSAGE_EXTRA if where[-1] == 0 and where[0] == "message" else 0
            )
        key = canonical([*where, without_cache_control(block)])
        blocks.append(Block(key, tokens, breakpoint_ttl(block)))
    return blocks


@dataclass
class Entry:
    """A cached prefix: when it expires and the TTL a read renews it for."""

    expires_at: float
    ttl: float


@dataclass
class BlockCache:
    """Anthropic's explicit prompt cache, keyed by hashes of block prefixes."""

    entries: dict[bytes, Entry] = field(default_factory=dict)

    def charge(self, model: str, blocks: list[Block], now: float) -> CacheUse:
        """Read the longest live prefix a breakpoint reaches, write the rest, renew entries."""
        minimum = minimum_cacheable(model)
        digest = hashlib.sha256(model.encode()).digest()
        hashes: list[bytes] = []
        ends: list[int] = []
        total = 0
        for block in blocks:
            digest = hashlib.sha256(digest + block.key.encode()).digest()
            total += block.tokens
            hashes.append(digest)
            ends.append(total)
        breakpoints = [i for i, block in enumerate(blocks) if block.ttl is not None]

        def live(index: int) -> Entry | None:
            entry = self.entries.get(hashes[index])
            return entry if entry and entry.expires_at > now and ends[index] >= minimum else None

        hit = -1
        for point in breakpoints:
            for index in range(point, max(-1, point - LOOKBACK_BLOCKS - 1), -1):
                if live(index):
                    hit = max(hit, index)
                    break
        read = ends[hit] if hit >= 0 else 0
        if hit >= 0:
            entry = self.entries[hashes[hit]]
            entry.expires_at = now + entry.ttl
        writes = {"5m": 0, "1h": 0}
        covered = hit
        for point in breakpoints:
            ttl = str(blocks[point].ttl)
            if ends[point] < minimum:
                continue
            if point > covered:
                writes[ttl] += ends[point] - (ends[covered] if covered >= 0 else 0)
                covered = point
            seconds = TTL_SECONDS[ttl]
            old = self.entries.get(hashes[point])
            if old is None or old.expires_at <= now:
                self.entries[hashes[point]] = Entry(now + seconds, seconds)
            else:
                old.ttl = max(old.ttl, seconds)
                old.expires_at = max(old.expires_at, now + seconds)
        return CacheUse(read=read, write_5m=writes["5m"], write_1h=writes["1h"])


class MessagesWire(Wire):
    """The Messages API with its explicit block cache."""

    api = "anthropic"

    def __init__(self) -> None:
        self.cache = BlockCache()

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
        """``{"type": "error", "error": {type, message}, "request_id"}``."""
        request_id = new_id("req_011")
        body = {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }
        return ApiError(status, body, {"request-id": request_id, **(headers or {})})

    def failure(self, kind: FailureKind, body: JSON) -> ApiError:
        """429 rate_limit_error, 500 api_error or 529 overloaded_error."""
        if kind == "rate_limit":
            return self.error(
                429,
                "rate_limit_error",
                "This request would exceed the rate limit for your organization of 1 requests "
                "per minute. Please try again later.",
                headers={"retry-after-ms": "10", "retry-after": "0"},
            )
        if kind == "overloaded":
            return self.error(529, "overloaded_error", "Overloaded")
        return self.error(500, "api_error", "Internal server error")

    def overflow(self, body: JSON, tokens: int, requested: int, window: int) -> ApiError:
        """ "prompt is too long" when the prompt alone overflows, else the max_tokens wording."""
        if tokens > window or tokens + requested <= window:
            message = f"prompt is too long: {tokens} tokens > {window} maximum"
        else:
            message = (
                f"input length and `max_tokens` exceed context limit: {tokens} + {requested} > "
                f"{window}, decrease input length or `max_tokens` and try again"
            )
        return self.error(400, "invalid_request_error", message)

    def invalid(self, message: str) -> ApiError:
        """A 400 invalid_request_error."""
        return self.error(400, "invalid_request_error", message)

    def validate(self, body: JSON, *, for_count: bool = False) -> None:
        """Required fields, roles, non-empty content, tool pairing, breakpoints."""
        required = ("model", "messages") if for_count else ("model", "max_tokens", "messages")
        for name in required:
            if name not in body:
                raise self.invalid(f"{name}: Field required")
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            raise self.invalid("messages: at least one message is required")
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role == "system":
                raise self.invalid(
                    'messages: Unexpected role "system". The Messages API accepts a top-level '
                    '`system` parameter, not "system" as an input message role.'
                )
            if role not in ("user", "assistant"):
                raise self.invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
            content = message.get("content")
            if not content and not (role == "assistant" and index == len(messages) - 1):
                raise self.invalid(
                    f"messages.{index}: all messages must have non-empty content except for "
                    "the optional final assistant message"
                )
        if messages[0]["role"] != "user":
            raise self.invalid('messages: first message must use the "user" role')
        self.check_tool_pairs(messages)
        self.check_breakpoints(body)

    def check_tool_pairs(self, messages: list[JSON]) -> None:
        """Results answer the previous assistant turn; every tool_use is answered next."""
        for index, message in enumerate(messages):
            blocks = as_blocks(message.get("content") or [])
            results = [(j, b) for j, b in enumerate(blocks) if block_type(b) == "tool_result"]
            before = messages[index - 1] if index else None
            offered = uses(before) if before and before["role"] == "assistant" else []
            for position, result in results:
                if message["role"] != "user" or result.get("tool_use_id") not in offered:
                    raise self.invalid(
                        f"messages.{index}.content.{position}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {result.get('tool_use_id')}. Each `tool_result` "
                        "block must have a corresponding `tool_use` block in the previous message."
                    )
            if message["role"] != "assistant":
                continue
            after = messages[index + 1] if index + 1 < len(messages) else None
            answered = set()
            if after is not None and after["role"] == "user":
                answered = {
                    b.get("tool_use_id")
                    for b in as_blocks(after.get("content") or [])
                    if block_type(b) == "tool_result"
                }
            missing = [i for i in uses(message) if i not in answered]
            if missing:
                raise self.invalid(
                    f"messages.{index + 1}: `tool_use` ids were found without `tool_result` "
                    f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                    "must have a corresponding `tool_result` block in the next message."
                )

    def check_breakpoints(self, body: JSON) -> None:
        """At most 4 breakpoints, TTLs 5m/1h, and no 1h breakpoint after a 5m one."""
        ttls = [ttl for _, block in walk(body) if (ttl := breakpoint_ttl(block)) is not None]
        if len(ttls) > MAX_BREAKPOINTS:
            raise self.invalid(
                f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                f"Found {len(ttls)}."
            )
        seen_5m = False
        for ttl in ttls:
            if ttl not in TTL_SECONDS:
                raise self.invalid(f"cache_control.ttl: Input should be '5m' or '1h' (got {ttl!r})")
            if ttl == "1h" and seen_5m:
                raise self.invalid(
                    "a cache_control block with ttl='1h' cannot come after a cache_control "
                    "block with ttl='5m'"
                )
            seen_5m = seen_5m or ttl == "5m"

    def prompt(self, body: JSON) -> Prompt:
        """The block count, billed through the block cache."""
        blocks = prompt_blocks(body)
        model = str(body.get("model"))
        return Prompt(
            sum(block.tokens for block in blocks),
            lambda now: self.cache.charge(model, blocks, now),
        )

    def requested_output(self, body: JSON) -> int:
        """``max_tokens`` (required, so the default only serves odd bodies)."""
        value = body.get("max_tokens")
        return value if isinstance(value, int) else DEFAULT_MAX_OUTPUT

    def output_tokens(self, reply: Reply) -> int:
        """Scaled tokens of the text and of each call's name and input, plus reasoning."""
        total = (scaled(reply.text) if reply.text else 0) + reply.reasoning_tokens
        for name, args in reply.tool_calls:
            total += scaled(name) + scaled(json.dumps(args, sort_keys=True))
        return total

    def respond(self, body: JSON, reply: Reply, usage: Usage) -> Answer:
        """A ``message``, or its stream of events when ``stream`` is set."""
        content: list[JSON] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for name, args in reply.tool_calls:
            content.append(
                {"type": "tool_use", "id": new_id("toolu_01"), "name": name, "input": args}
            )
        message = {
            "id": new_id("msg_01"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": usage_json(usage, usage.output_tokens),
        }
        if not body.get("stream"):
            return Answer(body=message)
        return Answer(events=stream_events(message, usage))

    def count_answer(self, tokens: int) -> Answer:
        """``POST /v1/messages/count_tokens``: the whole prompt, caching ignored."""
        return Answer(body={"input_tokens": tokens})


def block_type(block: Any) -> Any:
    """A content block's type, None for non-objects."""
    return block.get("type") if isinstance(block, dict) else None


def uses(message: JSON) -> list[str]:
    """The tool_use ids of an assistant message."""
    return [
        str(b.get("id"))
        for b in as_blocks(message.get("content") or [])
        if block_type(b) == "tool_use"
    ]


def usage_json(usage: Usage, output_tokens: int) -> JSON:
    """Anthropic's usage: uncached input apart from cache reads and writes (per TTL)."""
    out: JSON = {
        "input_tokens": usage.uncached,
        "cache_creation_input_tokens": usage.cache.write_5m + usage.cache.write_1h,
        "cache_read_input_tokens": usage.cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache.write_5m,
            "ephemeral_1h_input_tokens": usage.cache.write_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def stream_events(message: JSON, usage: Usage) -> list[tuple[str | None, str]]:
    """message_start, ping, per block start/deltas/stop, message_delta, message_stop."""
    events: list[tuple[str | None, str]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(sse(kind, {"type": kind, **fields}))

    start = {**message, "content": [], "stop_reason": None, "usage": usage_json(usage, 1)}
    emit("message_start", message=start)
    emit("ping")
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            emit("content_block_start", index=index, content_block={"type": "text", "text": ""})
            for piece in text_pieces(block["text"]):
                emit(
                    "content_block_delta", index=index, delta={"type": "text_delta", "text": piece}
                )
        else:
            emit("content_block_start", index=index, content_block={**block, "input": {}})
            for piece in ["", *json_pieces(json.dumps(block["input"]))]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                emit("content_block_delta", index=index, delta=delta)
        emit("content_block_stop", index=index)
    final = usage_json(usage, usage.output_tokens)
    final.pop("cache_creation")
    final.pop("service_tier")
    emit(
        "message_delta",
        delta={"stop_reason": message["stop_reason"], "stop_sequence": None},
        usage=final,
    )
    emit("message_stop")
    return events
