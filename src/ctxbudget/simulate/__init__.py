"""What-if simulation: replay real sessions through context policies and price them.

Below ``analyze``: may import ``traces``, the manager and everything below them.
"""

from ctxbudget.simulate.policies import (
    BASELINE_POLICIES,
    DEFAULT_POLICIES,
    OWN_POLICY,
    check_policies,
)
from ctxbudget.simulate.replay import STEP_SECONDS, simulate_session
from ctxbudget.simulate.results import (
    Compaction,
    PolicyRun,
    PolicyTotals,
    SessionResult,
    Simulation,
)

__all__ = [
    "BASELINE_POLICIES",
    "DEFAULT_POLICIES",
    "OWN_POLICY",
    "STEP_SECONDS",
    "Compaction",
    "PolicyRun",
    "PolicyTotals",
    "SessionResult",
    "Simulation",
    "check_policies",
    "simulate_session",
]
