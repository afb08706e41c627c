"""Calibrate an estimate factor against billed usage, so estimates converge during a session.

For models without a public tokenizer we count with a proxy and multiply by a factor.
After each real call the provider bills the true prompt size (for Anthropic: input +
cache read + cache write tokens; for OpenAI: ``prompt_tokens``, which already includes
cached tokens). The :class:`Calibrator` compares it with what we counted and refines the
factor:

    factor = sum(billed - fixed) / sum(raw)      over decayed running sums

a ratio of sums (large prompts weigh more, which is where accuracy matters), with an
exponential decay so a drift (another model, a new kind of content) is followed, and a
prior worth ``prior_tokens`` proxy tokens at the initial factor so one odd call cannot
swing it. Observations that cannot be right (nothing billed, a ratio outside the bounds,
as when cached tokens were left out of the usage) are ignored, and the reason is kept.

Pure and deterministic: :meth:`Calibrator.observe` returns a new calibrator.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ctxbudget.errors import ConfigError
from ctxbudget.tokens.backends import scale

__all__ = ["Calibrator"]


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class Calibrator:
    """A factor (model tokens per proxy token) refined from billed usage."""

    initial_factor: float
    """Where the factor starts (e.g. ``ESTIMATE_FACTORS['anthropic']``)."""
    min_factor: float = dataclasses.field(default=0.25, kw_only=True)
    """Lowest believable factor; observations below it are ignored."""
    max_factor: float = dataclasses.field(default=4.0, kw_only=True)
    """Highest believable factor; observations above it are ignored."""
    decay: float = dataclasses.field(default=0.9, kw_only=True)
    """Weight kept by the past at each observation (1.0: never forget)."""
    prior_tokens: float = dataclasses.field(default=2000.0, kw_only=True)
    """How many proxy tokens the initial factor is worth as evidence."""
    raw_sum: float = dataclasses.field(default=-1.0, kw_only=True)
    """Decayed sum of proxy tokens observed, prior included (set on creation)."""
    billed_sum: float = dataclasses.field(default=-1.0, kw_only=True)
    """Decayed sum of billed tokens beyond the fixed ones, prior included."""
    observations: int = dataclasses.field(default=0, kw_only=True)
    """Observations used."""
    rejected: int = dataclasses.field(default=0, kw_only=True)
    """Observations ignored."""
    last_rejection: str | None = dataclasses.field(default=None, kw_only=True)
    """Why the latest observation was ignored; None when it was used."""

    def __post_init__(self) -> None:
        _positive("initial_factor", self.initial_factor)
        _positive("min_factor", self.min_factor)
        _positive("prior_tokens", self.prior_tokens)
        if not self.min_factor <= self.initial_factor <= self.max_factor:
            raise ConfigError(
                f"initial_factor {self.initial_factor} is outside [min_factor, max_factor] = "
                f"[{self.min_factor}, {self.max_factor}]; widen the bounds or fix the factor"
            )
        if not 0.0 < self.decay <= 1.0:
            raise ConfigError(f"decay must be in (0, 1], got {self.decay!r}; 0.9 is typical")
        if self.raw_sum < 0:  # a fresh calibrator: seed with the prior
            object.__setattr__(self, "raw_sum", self.prior_tokens)
            object.__setattr__(self, "billed_sum", self.prior_tokens * self.initial_factor)

    @property
    def factor(self) -> float:
        """The current factor, within ``[min_factor, max_factor]``."""
        return min(self.max_factor, max(self.min_factor, self.billed_sum / self.raw_sum))

    def estimate(self, raw_tokens: int, fixed_tokens: int = 0) -> int:
        """A prompt's estimated size with the current factor."""
        return scale(raw_tokens, self.factor) + fixed_tokens

    def _reject(self, reason: str) -> Calibrator:
        return dataclasses.replace(self, rejected=self.rejected + 1, last_rejection=reason)

    def observe(
        self, estimated_raw_tokens: int, billed_prompt_tokens: int, fixed_tokens: int = 0
    ) -> Calibrator:
        """A calibrator that also knows this call.

        ``estimated_raw_tokens``: what the proxy counted for the prompt, before the factor
        (``TokenCounter.tally_request(...).raw``); ``fixed_tokens``: the rule tokens of the
        same prompt (``.fixed``); ``billed_prompt_tokens``: the full billed prompt (input +
        cache read + cache write tokens).
        """
        if estimated_raw_tokens <= 0:
            return self._reject(f"nothing was counted (raw tokens {estimated_raw_tokens})")
        if billed_prompt_tokens <= 0:
            return self._reject(
                f"nothing was billed ({billed_prompt_tokens}); usage missing or call failed"
            )
        if fixed_tokens < 0:
            return self._reject(f"fixed tokens cannot be negative ({fixed_tokens})")
        variable = billed_prompt_tokens - fixed_tokens
        if variable <= 0:
            return self._reject(
                f"billed {billed_prompt_tokens} does not exceed the fixed framing tokens "
                f"{fixed_tokens}; is the usage from another request?"
            )
        ratio = variable / estimated_raw_tokens
        if not self.min_factor <= ratio <= self.max_factor:
            return self._reject(
                f"billed/estimated ratio {ratio:.3f} is outside [{self.min_factor}, "
                f"{self.max_factor}]; were cache read/write tokens left out of the billed count?"
            )
        return dataclasses.replace(
            self,
            raw_sum=self.decay * self.raw_sum + estimated_raw_tokens,
            billed_sum=self.decay * self.billed_sum + variable,
            observations=self.observations + 1,
            last_rejection=None,
        )
