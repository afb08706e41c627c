"""One exception tree for everything ctxbudget raises.

::

    CtxBudgetError                    base; catch this to catch everything of ours
    ├── ConfigError                   the caller's setup is wrong (policy, model, tokenizer)
    │   ├── UnknownModelError         a model name we have no settings for
    │   └── PolicyError               a budget policy that cannot work
    ├── UsageError                    the caller used the API wrongly (bad message shape...)
    │   ├── ConversionError           a message or request that cannot be read
    │   └── TraceError                an agent log file that cannot be read
    ├── TokenizerError                tokenizer data missing or corrupt
    ├── ContextOverflow               content cannot fit the window (run time)
    ├── BudgetExceeded                a spend limit would be crossed (run time)
    ├── ProviderError                 the provider answered with an error (run time)
    └── StorageError                  a store failed (run time)

Every error says what is wrong and what to do, and carries structured attributes so
callers never parse messages. Caller mistakes (``ConfigError``, ``UsageError``) are kept
apart from run-time conditions.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "ContextOverflow",
    "ConversionError",
    "CtxBudgetError",
    "PolicyError",
    "ProviderError",
    "StorageError",
    "TokenizerError",
    "TraceError",
    "UnknownModelError",
    "UsageError",
]


class CtxBudgetError(Exception):
    """Base of every error ctxbudget raises."""


class ConfigError(CtxBudgetError):
    """The caller's configuration is wrong; the message says which setting to change."""


class UnknownModelError(ConfigError):
    """A model name with no registry entry and no explicit settings."""

    def __init__(self, model: str, *, suggestions: tuple[str, ...] = ()) -> None:
        self.model = model
        self.suggestions = suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(
            f"unknown model {model!r}.{hint} Pass its settings explicitly, e.g. "
            f"ModelSpec(name={model!r}, context_window=..., max_output_tokens=..., "
            f"tokenizer='o200k_base'), or on the CLI --context-window N --max-output N."
        )


class PolicyError(ConfigError):
    """A budget policy that cannot work (bad shares, fixed content over its budget...)."""

    def __init__(
        self,
        message: str,
        *,
        component: str | None = None,
        size: int | None = None,
        budget: int | None = None,
    ) -> None:
        self.component = component
        self.size = size
        self.budget = budget
        super().__init__(message)


class UsageError(CtxBudgetError):
    """The API was called wrongly (a malformed message, an unknown option...)."""


class ConversionError(UsageError):
    """A message or request could not be read; names where and what was expected."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class TraceError(UsageError):
    """An agent log that cannot be imported: names the file, the line and what was expected."""

    def __init__(self, message: str, *, file: str, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


class TokenizerError(CtxBudgetError):
    """Tokenizer data is missing or does not match its published checksum."""


class ContextOverflow(CtxBudgetError):
    """Content that must be sent cannot fit the context window."""

    def __init__(
        self, message: str, *, component: str | None = None, size: int = 0, limit: int = 0
    ) -> None:
        self.component = component
        self.size = size
        self.limit = limit
        super().__init__(message)


class BudgetExceeded(CtxBudgetError):
    """A spend limit would be crossed by the next call; nothing was reserved or sent.

    ``scope``/``key``/``period`` name the limit, ``unit`` is ``"usd"`` or ``"tokens"``;
    ``limit``, ``spent`` (settled), ``reserved`` (calls in flight) and ``requested`` (this
    call's projection) are in that unit (Decimal dollars, or int tokens).
    """

    def __init__(
        self,
        message: str,
        *,
        scope: str | None = None,
        key: str | None = None,
        period: str | None = None,
        unit: str = "usd",
        limit: Decimal | int | None = None,
        spent: Decimal | int | None = None,
        reserved: Decimal | int | None = None,
        requested: Decimal | int | None = None,
    ) -> None:
        self.scope = scope
        self.key = key
        self.period = period
        self.unit = unit
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        super().__init__(message)


class ProviderError(CtxBudgetError):
    """The provider answered with an error."""


class StorageError(CtxBudgetError):
    """A session or spend store failed; ``backend`` names which kind when known."""

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        self.backend = backend
        super().__init__(message)
