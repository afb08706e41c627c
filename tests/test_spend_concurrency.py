"""Eight processes spend against one team budget on each backend at once: the team never
ends over its limit, nothing is left reserved, and the settled spend is the sum of bills."""

from __future__ import annotations

import multiprocessing
import time
from decimal import Decimal

from _stores import spend_worker, store_url
from ctxbudget.spend import Bucket, Limit, from_nanos, open_ledger, to_nanos

__all__ = ["store_url"]

WORKERS = 8
LIMIT = Decimal("2.50")
NOW = 1_750_000_000.0  # 2025-06-15 UTC


def test_eight_processes_never_cross_the_team_limit(store_url: str) -> None:
    ledger = open_ledger(store_url)
    ledger.set_limit(Limit(scope="team", key="fleet", period="day", usd=LIMIT))
    team = Bucket(scope="team", key="fleet", period="day", bucket="2025-06-15")
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(WORKERS) as pool:
        start = manager.Barrier(WORKERS)  # all workers imported and connected first
        pending = pool.starmap_async(
            spend_worker, [(store_url, n, start, NOW) for n in range(WORKERS)]
        )
        highest = 0
        while not pending.ready():  # watch spent + reserved while they race
            tally = ledger.totals().get(team)
            if tally is not None:
                highest = max(highest, tally.spent_nanos + tally.reserved_nanos)
            time.sleep(0.005)
        bills = pending.get(timeout=300)
    final = ledger.totals()[team]
    settled = sum(sum(b) for b in bills)
    spenders = sum(1 for b in bills if b)
    assert spenders >= WORKERS // 2, f"only {spenders} workers got to spend: they did not race"
    assert final.reserved_nanos == 0
    assert final.spent_nanos == settled  # the settled spend is exactly the sum of the bills
    assert final.calls == sum(len(b) for b in bills)
    assert highest <= to_nanos(LIMIT), f"spent + reserved reached ${from_nanos(highest)}"
    assert final.spent_nanos <= to_nanos(LIMIT)
    # the global bucket saw the same calls
    world = ledger.totals()[Bucket(scope="global", key="*", period="day", bucket="2025-06-15")]
    assert world.spent_nanos == settled
