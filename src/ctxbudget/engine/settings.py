"""The manager's constructor settings, checked, and the model spec they resolve to."""

from __future__ import annotations

import dataclasses

from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.errors import ConfigError

__all__ = ["check_settings", "model_spec"]


def check_settings(*, presummarize_at: float | None, cache_ttl: str, horizon: int | None) -> None:
    """ConfigError naming the bad setting and its allowed values."""
    if cache_ttl not in ("5m", "1h"):
        raise ConfigError(f"cache_ttl must be '5m' or '1h', got {cache_ttl!r}")
    if horizon is not None and (isinstance(horizon, bool) or horizon < 1):
        raise ConfigError(f"horizon must be a positive number of turns or None, got {horizon!r}")
    if presummarize_at is not None and not 0.0 < presummarize_at <= 1.0:
        raise ConfigError(f"presummarize_at must be in (0, 1] or None, got {presummarize_at}")


def model_spec(
    model: str | ModelSpec, context_window: int | None, max_output_tokens: int | None
) -> ModelSpec:
    """The model spec (a name is resolved), with the window and output limit overridden."""
    if isinstance(model, ModelSpec):
        return dataclasses.replace(
            model,
            context_window=context_window or model.context_window,
            max_output_tokens=max_output_tokens or model.max_output_tokens,
        )
    return resolve_model(model, context_window=context_window, max_output_tokens=max_output_tokens)
