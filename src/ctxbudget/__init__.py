"""ctxbudget: keep the context window of long-running LLM agents healthy and cheap."""

from ctxbudget.errors import (
    BudgetExceeded,
    ConfigError,
    ContextOverflow,
    ConversionError,
    CtxBudgetError,
    PolicyError,
    ProviderError,
    StorageError,
    TokenizerError,
    UnknownModelError,
    UsageError,
)
from ctxbudget.items import (
    Component,
    ComponentKind,
    DocumentPart,
    ImagePart,
    Item,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from ctxbudget.tokens.count import TokenCount

__version__ = "0.1.0"

__all__ = [
    "BudgetExceeded",
    "Component",
    "ComponentKind",
    "ConfigError",
    "ContextOverflow",
    "ConversionError",
    "CtxBudgetError",
    "DocumentPart",
    "ImagePart",
    "Item",
    "PolicyError",
    "ProviderError",
    "ReasoningPart",
    "StorageError",
    "TextPart",
    "TokenCount",
    "TokenizerError",
    "ToolCallPart",
    "ToolResultPart",
    "ToolSpec",
    "UnknownModelError",
    "UsageError",
    "__version__",
]
