"""The RemoteCounter seam: exact counts from a provider endpoint the caller supplies."""

from __future__ import annotations

from typing import Any

import pytest

from ctxbudget.errors import ProviderError, UsageError
from ctxbudget.tokens import RemoteCounter, TokenCount, count_remote


class FakeEndpoint:
    def __init__(self, answer: Any = 42, error: Exception | None = None) -> None:
        self.answer = answer
        self.error = error
        self.bodies: list[dict[str, Any]] = []

    def count_request(self, body: dict[str, Any]) -> int:
        self.bodies.append(body)
        if self.error is not None:
            raise self.error
        return self.answer  # type: ignore[no-any-return]


BODY = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}


def test_remote_counts_are_exact() -> None:
    endpoint = FakeEndpoint(17)
    assert isinstance(endpoint, RemoteCounter)
    assert count_remote(endpoint, BODY) == TokenCount(17, True)
    assert endpoint.bodies == [BODY]


def test_remote_failure_becomes_provider_error() -> None:
    endpoint = FakeEndpoint(error=TimeoutError("slow"))
    with pytest.raises(ProviderError, match="fall back to the local estimate") as info:
        count_remote(endpoint, BODY)
    assert isinstance(info.value.__cause__, TimeoutError)


@pytest.mark.parametrize("answer", [-1, "12", 3.5, True, None])
def test_bad_answer_is_a_usage_error(answer: Any) -> None:
    with pytest.raises(UsageError, match="non-negative int"):
        count_remote(FakeEndpoint(answer), BODY)
