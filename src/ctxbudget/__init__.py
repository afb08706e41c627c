"""ctxbudget: keep the context window of long-running LLM agents healthy and cheap."""

from ctxbudget.billing.cost import Cost, price
from ctxbudget.billing.usage import Usage
from ctxbudget.budget.accounting import Accountant
from ctxbudget.budget.ledger import ComponentUsage, Ledger, LedgerSnapshot
from ctxbudget.budget.models import ModelSpec, Prices, list_models, resolve_model
from ctxbudget.budget.policy import Allocation, Amount, ComponentBudget, Policy, preset
from ctxbudget.cache import CacheBust, CacheBustWarning
from ctxbudget.convert import Request, read_request, write_request
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
    TraceError,
    UnknownModelError,
    UsageError,
)
from ctxbudget.integrations import wrap
from ctxbudget.manager import ContextManager, PrepareReport
from ctxbudget.retrieval import BM25Index, BudgetedRetriever
from ctxbudget.routing import KeywordRouter
from ctxbudget.scoping import ToolRegistry, ToolScope
from ctxbudget.session.items import (
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
from ctxbudget.skills import SkillLibrary
from ctxbudget.spend import Limit, SpendGuard, Tags, open_ledger
from ctxbudget.store import LogConflict, SessionStore, open_store
from ctxbudget.telemetry import AlertRules, CallMetrics, SignalActions
from ctxbudget.tokens.calibration import Calibrator
from ctxbudget.tokens.count import TokenCount
from ctxbudget.tokens.counter import TokenCounter

__version__ = "0.1.0"

__all__ = [
    "Accountant",
    "AlertRules",
    "Allocation",
    "Amount",
    "BM25Index",
    "BudgetExceeded",
    "BudgetedRetriever",
    "CacheBust",
    "CacheBustWarning",
    "Calibrator",
    "CallMetrics",
    "Component",
    "ComponentBudget",
    "ComponentKind",
    "ComponentUsage",
    "ConfigError",
    "ContextManager",
    "ContextOverflow",
    "ConversionError",
    "Cost",
    "CtxBudgetError",
    "DocumentPart",
    "ImagePart",
    "Item",
    "KeywordRouter",
    "Ledger",
    "LedgerSnapshot",
    "Limit",
    "LogConflict",
    "ModelSpec",
    "Policy",
    "PolicyError",
    "PrepareReport",
    "Prices",
    "ProviderError",
    "ReasoningPart",
    "Request",
    "SessionStore",
    "SignalActions",
    "SkillLibrary",
    "SpendGuard",
    "StorageError",
    "Tags",
    "TextPart",
    "TokenCount",
    "TokenCounter",
    "TokenizerError",
    "ToolCallPart",
    "ToolRegistry",
    "ToolResultPart",
    "ToolScope",
    "ToolSpec",
    "TraceError",
    "UnknownModelError",
    "Usage",
    "UsageError",
    "__version__",
    "list_models",
    "open_ledger",
    "open_store",
    "preset",
    "price",
    "read_request",
    "resolve_model",
    "wrap",
    "write_request",
]
