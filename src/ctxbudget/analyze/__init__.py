"""Where an agent's tokens and dollars went, per component, from its own logs.

Above ``simulate``: may import it, ``traces`` and the core; never the CLI or ``report``.
"""

from ctxbudget.analyze.analysis import (
    Analysis,
    SessionAnalysis,
    analyze_session,
    call_models,
    log_model,
    log_model_spec,
    pricing_model,
)
from ctxbudget.analyze.composition import composition_per_call

__all__ = [
    "Analysis",
    "SessionAnalysis",
    "analyze_session",
    "call_models",
    "composition_per_call",
    "log_model",
    "log_model_spec",
    "pricing_model",
]
