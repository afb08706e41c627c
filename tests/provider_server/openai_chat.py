"""``POST /v1/chat/completions``: OpenAI Chat Completions, plain and streamed."""

from __future__ import annotations

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
    NAME_EXTRA,
    REPLY_PRIMING,
    OpenAIWire,
    PrefixCache,
    arguments_json,
    call_tokens,
    content_tokens,
    overflow_message,
    tokens,
    tool_tokens,
)

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def message_tokens(message: Any) -> list[int]:
    """One message: frame, then its string values in key order (tool calls by their parts)."""
    out = list(MESSAGE_FRAME)
    if not isinstance(message, dict):
        return out + content_tokens(message)
    for key in sorted(message):
        value = message[key]
        if key == "tool_calls" and isinstance(value, list):
            for call in value:
                function = call.get("function", {}) if isinstance(call, dict) else {}
                out += call_tokens(function.get("name"), function.get("arguments", ""))
        elif key == "content":
            out += content_tokens(value)
        elif isinstance(value, str):
            out += tokens(value)
            if key == "name":
                out += NAME_EXTRA
    return out


def prompt_sequence(body: JSON) -> list[int]:
    """The whole prompt in order: tools, messages, reply priming."""
    out = tool_tokens(body.get("tools"))
    for message in body.get("messages") or []:
        out += message_tokens(message)
    return out + list(REPLY_PRIMING)


class ChatWire(OpenAIWire):
    """Chat Completions over the shared OpenAI prefix cache."""

    api = "openai_chat"
    output_fields = ("max_completion_tokens", "max_tokens")

    def __init__(self, cache: PrefixCache) -> None:
        self.cache = cache

    def overflow(self, body: JSON, tokens: int, requested: int, window: int) -> ApiError:
        """400 context_length_exceeded on ``messages``."""
        message = overflow_message(tokens, requested, window)
        return self.error(
            400, "invalid_request_error", message, param="messages", code="context_length_exceeded"
        )

    def validate(self, body: JSON, *, for_count: bool = False) -> None:
        """Model and messages present, roles known, tool messages answering tool calls."""
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise self.error(400, "invalid_request_error", "you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise self.error(
                400,
                "invalid_request_error",
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not messages:
            raise self.error(
                400,
                "invalid_request_error",
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ROLES:
                raise self.error(
                    400,
                    "invalid_request_error",
                    f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                    "'user', 'function', 'tool', and 'developer'.",
                    param=f"messages.[{index}].role",
                    code="invalid_value",
                )
        self.check_tool_pairs(messages)

    def check_tool_pairs(self, messages: list[JSON]) -> None:
        """Each tool message answers a call of the nearest assistant; no call goes unanswered."""
        offered: set[str] | None = None  # ids of the open assistant turn, None when none
        pending: list[str] = []
        for index, message in enumerate(messages):
            if message["role"] == "tool":
                call_id = message.get("tool_call_id")
                if offered is None:
                    raise self.error(
                        400,
                        "invalid_request_error",
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'.",
                        param=f"messages.[{index}].role",
                    )
                if not isinstance(call_id, str):
                    raise self.error(
                        400,
                        "invalid_request_error",
                        f"Missing required parameter: 'messages.[{index}].tool_call_id'.",
                        param=f"messages.[{index}].tool_call_id",
                        code="missing_required_parameter",
                    )
                if call_id not in offered:
                    raise self.error(
                        400,
                        "invalid_request_error",
                        f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in "
                        "'tool_calls' of previous message.",
                        param=f"messages.[{index}].tool_call_id",
                    )
                if call_id in pending:
                    pending.remove(call_id)
                continue
            self.check_answered(pending, index)
            calls = message.get("tool_calls") if message["role"] == "assistant" else None
            if calls:
                ids = [str(c.get("id")) for c in calls if isinstance(c, dict)]
                offered, pending = set(ids), ids
            else:
                offered = None
        self.check_answered(pending, len(messages))

    def check_answered(self, pending: list[str], index: int) -> None:
        """400 when tool calls of the open assistant turn got no tool message."""
        if pending:
            raise self.error(
                400,
                "invalid_request_error",
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(map(str, pending))}",
                param=f"messages.[{index}].role",
            )

    def prompt(self, body: JSON) -> Prompt:
        """The cookbook count, billed through the prefix cache."""
        return self.cached_prompt(self.cache, body, prompt_sequence(body))

    def respond(self, body: JSON, reply: Reply, usage: Usage) -> Answer:
        """A ``chat.completion``, or its chunks when ``stream`` is set."""
        calls = [
            {
                "id": new_id("call_"),
                "type": "function",
                "function": {"name": name, "arguments": arguments_json(args)},
            }
            for name, args in reply.tool_calls
        ]
        head = {
            "id": new_id("chatcmpl-"),
            "created": int(time.time()),
            "model": body["model"],
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message: JSON = {
                "role": "assistant",
                "content": reply.text if reply.text or not calls else None,
                "refusal": None,
                "annotations": [],
            }
            if calls:
                message["tool_calls"] = calls
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            completion = {**head, "object": "chat.completion", "choices": [choice]}
            return Answer(body={**completion, "usage": usage_json(usage)})
        return Answer(
            events=stream_events(
                body, head, text=reply.text, calls=calls, finish=finish, usage=usage
            )
        )

    def count_answer(self, tokens: int) -> Answer:
        """Chat Completions has no counting endpoint (the server never routes here)."""
        raise NotImplementedError


def stream_events(
    body: JSON, head: JSON, *, text: str, calls: list[JSON], finish: str, usage: Usage
) -> list[tuple[str | None, str]]:
    """``chat.completion.chunk`` events: role, content, tool-call pieces, finish, usage, DONE."""
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: JSON, finish_reason: str | None = None) -> tuple[str | None, str]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        data: JSON = {**head, "object": "chat.completion.chunk", "choices": [choice]}
        if with_usage:
            data["usage"] = None
        return sse(None, data)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in text_pieces(text)]
    for index, call in enumerate(calls):
        first = {**call, "index": index, "function": {"name": call["function"]["name"]}}
        first["function"]["arguments"] = ""
        events.append(chunk({"tool_calls": [first]}))
        for piece in json_pieces(call["function"]["arguments"]):
            events.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    events.append(chunk({}, finish))
    if with_usage:
        events.append(
            sse(
                None,
                {
                    **head,
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": usage_json(usage),
                },
            )
        )
    events.append(sse(None, "[DONE]"))
    return events


def usage_json(usage: Usage) -> JSON:
    """Chat's usage object: prompt/completion totals with cached and reasoning details."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache.read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
