"""What a valid prepared request is, checked the same way by every test of the door."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

from ctxbudget import ContextManager
from ctxbudget.convert.request import read_request
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import Item


def pairs(items: Sequence[Item]) -> bool:
    """No result without its call, and no call without its results except the last turn's
    (its results may still be arriving)."""
    orphans = find_orphans(items, allow_pending_tail=False)
    speakers = [n for n, i in enumerate(items) if i.role != "tool" and not i.tool_results]
    pending = {c.id for c in items[speakers[-1]].tool_calls} if speakers else set()
    return not orphans.results_without_call and set(orphans.calls_without_result) <= pending


def check_both_providers(mgr: ContextManager) -> None:
    """The next request for OpenAI and for Anthropic: it fits, pairs, encodes as UTF-8, and
    the Anthropic one alternates roles."""
    for provider, fmt in (("openai", "openai_chat"), ("anthropic", "anthropic")):
        body = mgr.prepare(provider)
        report = mgr.last_report
        assert report is not None
        assert report.input_tokens.tokens <= report.limit
        json.dumps(body, ensure_ascii=False).encode("utf-8")
        assert pairs(read_request(body, format=fmt).items)
        if provider == "anthropic":
            roles = [m["role"] for m in body["messages"]]
            assert all(a != b for a, b in itertools.pairwise(roles)), roles
