"""The seam for exact counts from a provider's count-tokens endpoint.

ctxbudget does no network I/O here. A caller who wants exact numbers for a model whose
tokenizer is not public supplies a :class:`RemoteCounter`, e.g.::

    class AnthropicRemote:
        def __init__(self, client: anthropic.Anthropic) -> None:
            self.client = client

        def count_request(self, body: dict[str, Any]) -> int:
            return self.client.messages.count_tokens(**body).input_tokens

and :func:`count_remote` turns its answer into an exact :class:`TokenCount`. The body
is the rendered request (model, system, messages, tools), as the renderer produces it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ctxbudget.errors import CtxBudgetError, ProviderError, UsageError
from ctxbudget.tokens.count import TokenCount

__all__ = ["RemoteCounter", "count_remote"]


@runtime_checkable
class RemoteCounter(Protocol):
    """Anything that asks a provider how many input tokens a request body is."""

    def count_request(self, body: dict[str, Any]) -> int:
        """The provider's input-token count for ``body``."""
        ...


def count_remote(remote: RemoteCounter, body: dict[str, Any]) -> TokenCount:
    """The exact count of ``body`` from ``remote``.

    Errors raised by the remote become ProviderError (the local estimate is the fallback);
    an answer that is not a non-negative int is a UsageError in the adapter.
    """
    try:
        tokens = remote.count_request(body)
    except CtxBudgetError:
        raise
    except Exception as exc:
        raise ProviderError(
            f"the count-tokens call failed ({type(exc).__name__}: {exc}); "
            "fall back to the local estimate (TokenCounter.count_request)"
        ) from exc
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise UsageError(
            f"{type(remote).__name__}.count_request must return a non-negative int, got {tokens!r}"
        )
    return TokenCount(tokens, True)
