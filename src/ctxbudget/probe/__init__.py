"""Probing: ask questions whose answers a session holds, under each policy's context.

Beside ``analyze``: may import ``simulate``, ``traces`` and everything below them.
"""

from ctxbudget.probe.facts import AGE_BUCKETS, KINDS, Probe, age_bucket, generate_probes
from ctxbudget.probe.readers import (
    OFFLINE_LABEL,
    Answer,
    ModelReader,
    OfflineReader,
    grade,
    normalize,
    with_question,
)
from ctxbudget.probe.results import Outcome, PolicyScore, ProbeRun, probe_session, score
from ctxbudget.probe.views import StepView, body_text, views_at

__all__ = [
    "AGE_BUCKETS",
    "KINDS",
    "OFFLINE_LABEL",
    "Answer",
    "ModelReader",
    "OfflineReader",
    "Outcome",
    "PolicyScore",
    "Probe",
    "ProbeRun",
    "StepView",
    "age_bucket",
    "body_text",
    "generate_probes",
    "grade",
    "normalize",
    "probe_session",
    "score",
    "views_at",
    "with_question",
]
