"""OpenAI Chat Completions and Responses (``/v1/chat/completions``, ``/v1/responses``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ctxbudget.proxy.wire import ErrorKind, Wire

__all__ = ["CHAT", "RESPONSES"]

_TYPES: dict[ErrorKind, tuple[int, str, str | None]] = {
    "invalid_request": (400, "invalid_request_error", None),
    "too_large": (413, "invalid_request_error", "request_too_large"),
    "rate_limited": (429, "rate_limit_exceeded", "rate_limit_exceeded"),
    # OpenAI's own "out of quota" error; the clients show it instead of retrying
    "budget": (429, "insufficient_quota", "insufficient_quota"),
    "unauthorized": (401, "invalid_request_error", "invalid_api_key"),
    "unreachable": (502, "server_error", None),
}


def _error(kind: ErrorKind, message: str) -> tuple[int, dict[str, Any]]:
    status, kind_name, code = _TYPES[kind]
    return status, {"error": {"message": message, "type": kind_name, "param": None, "code": code}}


def _subscription(headers: Mapping[str, str]) -> bool:
    """ChatGPT sign-in tokens are JWTs sent with a ``chatgpt-account-id`` header."""
    return "chatgpt-account-id" in headers


CHAT = Wire("openai_chat", "chat", "openai", _error, _subscription)
RESPONSES = Wire("openai_responses", "responses", "openai", _error, _subscription)
