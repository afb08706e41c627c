"""Helpers shared by the tests that drive the SDK wrappers against tests/provider_server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ctxbudget import Usage
from provider_server import Billed, Reply


def replies(*answers: Reply) -> Callable[[str, dict[str, Any]], Reply]:
    """A script answering the calls in order (failed calls never reach it)."""
    queue = list(answers)
    return lambda api, body: queue.pop(0)


def listing(name: str, lines: int) -> str:
    """A deterministic tool output full of paths and identifiers."""
    return "\n".join(
        f"src/app/{name}/module_{i}.py:{i * 7}: def handler_{name}_{i}(request_id: int) -> None"
        for i in range(lines)
    )


def billed_usage(billed: Billed) -> Usage:
    """What the server billed for one call, as ctxbudget's usage."""
    return Usage(
        input_tokens=billed.input_tokens,
        cache_read_tokens=billed.cache_read_tokens,
        cache_write_5m_tokens=billed.cache_write_5m_tokens,
        cache_write_1h_tokens=billed.cache_write_1h_tokens,
        output_tokens=billed.output_tokens,
        reasoning_tokens=billed.reasoning_tokens,
    )


def markers(value: Any) -> int:
    """How many ``cache_control`` marks a body (or any part of it) carries."""
    if isinstance(value, dict):
        return ("cache_control" in value) + sum(markers(v) for v in value.values())
    if isinstance(value, list):
        return sum(markers(v) for v in value)
    return 0


def without_markers(value: Any) -> Any:
    """``value`` with every ``cache_control`` mark taken out."""
    if isinstance(value, dict):
        return {k: without_markers(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [without_markers(v) for v in value]
    return value
