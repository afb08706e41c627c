"""Integrations: drop-in SDK wrappers (and, with the ``langchain`` extra, middleware).

Above the features: may import ``spend``, the manager, ``engine`` and the core.
"""

from ctxbudget.integrations.wrap import RetryPolicy, wrap

__all__ = ["RetryPolicy", "wrap"]
