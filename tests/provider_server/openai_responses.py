"""``POST /v1/responses`` (OpenAI Responses, plain and streamed) and its token counter.

Responses are not stored, so ``previous_response_id`` is answered as an unknown id: the
whole conversation must be sent as ``input``, as it is with ``store=False``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ._core import (
    JSON,
    Answer,
    ApiError,
    Prompt,
    Reply,
    Usage,
    json_pieces,
    new_id,
    sse,
    text_pieces,
)
from .openai_common import (
    MESSAGE_FRAME,
    REPLY_PRIMING,
    OpenAIWire,
    PrefixCache,
    arguments_json,
    call_tokens,
    content_tokens,
    tokens,
    tool_tokens,
)

ROLES = ("user", "assistant", "system", "developer")


def item_type(item: Any) -> str | None:
    """An input item's type; a bare ``{"role", "content"}`` is a message."""
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind is None and "role" in item:
        return "message"
    return kind if isinstance(kind, str) else None


def item_tokens(item: Any) -> list[int]:
    """One input item: messages and outputs framed like chat messages, calls like tool calls."""
    kind = item_type(item)
    if kind == "message":
        return [
            *MESSAGE_FRAME,
            *tokens(str(item.get("role"))),
            *content_tokens(item.get("content")),
        ]
    if kind == "function_call":
        return call_tokens(item.get("name"), item.get("arguments", ""))
    if kind == "function_call_output":
        return [*MESSAGE_FRAME, *content_tokens(item.get("output"))]
    if kind == "reasoning":
        return [*MESSAGE_FRAME, *content_tokens(item.get("summary") or [])]
    return [*MESSAGE_FRAME, *tokens(json.dumps(item, sort_keys=True))]


def prompt_sequence(body: JSON) -> list[int]:
    """Tools, instructions (as a developer message), input items, reply priming."""
    out = tool_tokens(body.get("tools"))
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        out += [*MESSAGE_FRAME, *tokens("developer"), *tokens(instructions)]
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items or []:
        out += item_tokens(item)
    return out + list(REPLY_PRIMING)


class ResponsesWire(OpenAIWire):
    """The Responses API over the shared OpenAI prefix cache."""

    api = "openai_responses"
    output_fields = ("max_output_tokens",)

    def __init__(self, cache: PrefixCache) -> None:
        self.cache = cache

    def overflow(self, body: JSON, tokens: int, requested: int, window: int) -> ApiError:
        """Responses' own wording (it names no numbers), code context_length_exceeded."""
        return self.error(
            400,
            "invalid_request_error",
            "Your input exceeds the context window of this model. Please adjust your input "
            "and try again.",
            param="input",
            code="context_length_exceeded",
        )

    def validate(self, body: JSON, *, for_count: bool = False) -> None:
        """Model present, input well-formed, function calls and outputs paired."""
        self.require_model(body)
        previous = body.get("previous_response_id")
        if previous is not None:
            raise self.error(
                400,
                "invalid_request_error",
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        items = body.get("input")
        if items is None or isinstance(items, str):
            return
        if not isinstance(items, list):
            raise self.error(
                400,
                "invalid_request_error",
                "Invalid type for 'input': expected one of a string or array of input items.",
                param="input",
                code="invalid_type",
            )
        calls: set[str] = set()
        answered: set[str] = set()
        for index, item in enumerate(items):
            kind = item_type(item)
            if kind is None:
                raise self.error(
                    400,
                    "invalid_request_error",
                    f"Invalid value for 'input[{index}]': expected an input item object.",
                    param=f"input[{index}]",
                    code="invalid_value",
                )
            if kind == "message" and item.get("role") not in ROLES:
                raise self.error(
                    400,
                    "invalid_request_error",
                    f"Invalid value: '{item.get('role')}'. Supported values are: 'user', "
                    "'assistant', 'system', and 'developer'.",
                    param=f"input[{index}].role",
                    code="invalid_value",
                )
            if kind in ("function_call", "custom_tool_call"):
                calls.add(str(item.get("call_id")))
            elif kind in ("function_call_output", "custom_tool_call_output"):
                call_id = str(item.get("call_id"))
                if call_id not in calls:
                    raise self.error(
                        400,
                        "invalid_request_error",
                        f"No tool call found for function call output with call_id {call_id}.",
                        param="input",
                    )
                answered.add(call_id)
        for call_id in sorted(calls - answered):
            raise self.error(
                400,
                "invalid_request_error",
                f"No tool output found for function call {call_id}.",
                param="input",
            )

    def prompt(self, body: JSON) -> Prompt:
        """The count over instructions and items, billed through the prefix cache."""
        return self.cached_prompt(self.cache, body, prompt_sequence(body))

    def respond(self, body: JSON, reply: Reply, usage: Usage) -> Answer:
        """A ``response`` object, or its lifecycle and delta events when ``stream`` is set."""
        items = output_items(reply)
        final = response_json(body, items, "completed", usage)
        if not body.get("stream"):
            return Answer(body=final)
        return Answer(events=stream_events(body, final, items))

    def count_answer(self, tokens: int) -> Answer:
        """``POST /v1/responses/input_tokens``."""
        return Answer(body={"object": "response.input_tokens", "input_tokens": tokens})


def output_items(reply: Reply) -> list[JSON]:
    """Reasoning (when the reply reasons), the message, then one function_call per call."""
    items: list[JSON] = []
    if reply.reasoning_tokens:
        items.append({"id": new_id("rs_"), "type": "reasoning", "summary": []})
    items.extend(dict(item) for item in reply.output_items)
    if reply.text or not (reply.tool_calls or reply.custom_calls):
        text = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
        items.append(
            {
                "id": new_id("msg_"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [text],
            }
        )
    for name, args in reply.tool_calls:
        items.append(
            {
                "id": new_id("fc_"),
                "type": "function_call",
                "status": "completed",
                "call_id": new_id("call_"),
                "name": name,
                "arguments": arguments_json(args),
            }
        )
    for name, text in reply.custom_calls:
        items.append(
            {
                "id": new_id("ctc_"),
                "type": "custom_tool_call",
                "status": "completed",
                "call_id": new_id("call_"),
                "name": name,
                "input": text,
            }
        )
    return items


def response_json(body: JSON, output: list[JSON], status: str, usage: Usage | None) -> JSON:
    """The ``response`` object, echoing the request's settings as the real API does."""
    now = int(time.time())
    return {
        "id": new_id("resp_"),
        "object": "response",
        "created_at": now,
        "completed_at": now if status == "completed" else None,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None if usage is None else usage_json(usage),
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def usage_json(usage: Usage) -> JSON:
    """Responses' usage object with cached and reasoning details."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache.read, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def stream_events(body: JSON, final: JSON, items: list[JSON]) -> list[tuple[str | None, str]]:
    """created, in_progress, per item added/deltas/done, completed; numbered in order."""
    events: list[tuple[str | None, str]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(sse(kind, {"type": kind, "sequence_number": len(events), **fields}))

    started = {**final, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    emit("response.created", response=started)
    emit("response.in_progress", response=started)
    for index, item in enumerate(items):
        where: JSON = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            part = item["content"][0]
            empty = {**part, "text": ""}
            emit("response.content_part.added", **where, content_index=0, part=empty)
            for piece in text_pieces(part["text"]):
                emit(
                    "response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[]
                )
            emit(
                "response.output_text.done",
                **where,
                content_index=0,
                text=part["text"],
                logprobs=[],
            )
            emit("response.content_part.done", **where, content_index=0, part=part)
        elif item["type"] == "function_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for piece in json_pieces(item["arguments"]):
                emit("response.function_call_arguments.delta", **where, delta=piece)
            emit(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            )
        elif item["type"] == "custom_tool_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "input": ""},
            )
            for piece in json_pieces(item["input"]):
                emit("response.custom_tool_call_input.delta", **where, delta=piece)
            emit("response.custom_tool_call_input.done", **where, input=item["input"])
        else:
            emit("response.output_item.added", output_index=index, item=item)
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.completed", response=final)
    return events
