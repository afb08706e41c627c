"""Anthropic Messages (``POST /v1/messages``) as the proxy serves it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ctxbudget.proxy.wire import ErrorKind, Wire

__all__ = ["MESSAGES"]

_TYPES: dict[ErrorKind, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "too_large": (413, "request_too_large"),
    "rate_limited": (429, "rate_limit_error"),
    # Anthropic refuses a call past the account's credit as a 400 the clients do not retry
    "budget": (400, "invalid_request_error"),
    "unauthorized": (401, "authentication_error"),
    "unreachable": (502, "api_error"),
}


def _error(kind: ErrorKind, message: str) -> tuple[int, dict[str, Any]]:
    status, kind_name = _TYPES[kind]
    return status, {"type": "error", "error": {"type": kind_name, "message": message}}


def _subscription(headers: Mapping[str, str]) -> bool:
    """Claude subscription (OAuth) tokens: ``Authorization: Bearer sk-ant-oat...``."""
    auth = headers.get("authorization", "")
    return auth.lower().startswith("bearer sk-ant-oat") or "oauth" in headers.get(
        "anthropic-beta", ""
    )


MESSAGES = Wire("anthropic", "messages", "anthropic", _error, _subscription)
