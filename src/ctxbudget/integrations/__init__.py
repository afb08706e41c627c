"""Integrations: drop-in SDK wrappers (and, with the ``langchain`` extra, middleware)."""

from ctxbudget.integrations.wrap import RetryPolicy, wrap

__all__ = ["RetryPolicy", "wrap"]
