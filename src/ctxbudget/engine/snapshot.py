"""Snapshots: the manager's derived state in the log, so a resume skips earlier prepares.

Before every ``SNAPSHOT_EVERY``-th prepare the manager logs a :class:`Snapshot` event (in
the same store write as the ``Prepared`` event after it) holding what prepares and
observes derived: the item id counter, the compactor's schedule (turns, what the cached
prefix held, fresh and answered outputs, pending door records, the clearing rent), the
constraint distance, calibration, billed usage and cost, the predicted provider cache
(live entries with their expiry clock times, bust count) and where the last request was
rendered. :func:`restore` loads the log up to the latest snapshot without re-driving it:
items and compactions rebuild the view and ledger, the last request is rendered once again
(its fingerprint is what the next one is compared with), and the state is set; the events
after it (at most ``SNAPSHOT_EVERY`` prepares) are replayed as before. So resuming costs
the log's length to read, not a re-render per prepare. A snapshot of another ``VERSION``,
or an event this module cannot load, means a full replay: never a wrong state.
Telemetry history (metrics records, alert state) restarts in the resumed process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any

from ctxbudget.billing.cost import Cost
from ctxbudget.billing.usage import Usage
from ctxbudget.cache.fingerprint import Block, Fingerprint, chain_digest
from ctxbudget.engine.compactor import RETRACT
from ctxbudget.engine.request import wire_format
from ctxbudget.session.items import ToolSpec
from ctxbudget.session.log import (
    Appended,
    Compacted,
    Event,
    Marked,
    Observed,
    Prepared,
    SessionLog,
    Snapshot,
    ToolsSet,
)
from ctxbudget.tokens.calibration import Calibrator

__all__ = ["SNAPSHOT_EVERY", "VERSION", "Snapshots", "capture", "restore"]

VERSION = 2
"""Format of the state a snapshot holds; bump it when the state's meaning changes (1: cache
entries as chained digests; 2: as block digests shared with the last request)."""
SNAPSHOT_EVERY = 8
"""Prepares between snapshots: a resume re-drives at most this many; a snapshot is a few
hundred bytes plus the live cache entries, so one per 8 prepares adds little to a log."""
_FROZEN = ("shorten", "digest")
"""Records a prepare makes of what the agent answered: cheap to make again (one item each)."""


class Snapshots:
    """When one manager writes snapshots, and where its last request was rendered."""

    def __init__(self, every: int = SNAPSHOT_EVERY) -> None:
        self.every = every
        """Prepares between snapshots (0: never write one)."""
        self.enabled = True
        """False while a replay re-drives stored events (they hold their own snapshots)."""
        self.since = 0
        """Prepares since the last snapshot in the log."""
        self.costly = False
        """The last prepare compacted (more than freezing answered outputs): re-driving it
        would run the strategies again, so the next prepare logs a snapshot first."""
        self._mark = 0
        """The log's length when the last prepare started."""
        self.render: dict[str, Any] | None = None
        """Where the last request was rendered: log length, counter factor, provider, options."""

    def before_prepare(self, manager: Any) -> None:
        """Log a snapshot if one is due; the caller logs the ``Prepared`` event next."""
        if self.enabled and self.every and (self.since >= self.every or self.costly):
            manager.log.snapshot(VERSION, capture(manager))
            self.written()
        self.since += 1
        self._mark = len(manager.log)

    def written(self) -> None:
        """A snapshot is the log's latest event."""
        self.since, self.costly = 0, False

    def prepared(self, manager: Any, provider: str, options: Mapping[str, Any]) -> None:
        """A request was rendered from the view as the log stands now."""
        self.render = {
            "at": len(manager.log),
            "factor": manager.accountant.counter.factor,
            "provider": provider,
            "options": dict(options),
        }
        self.costly = any(
            isinstance(e, Compacted) and e.record.strategy not in _FROZEN
            for e in islice(manager.log, self._mark, None)
        )


def capture(manager: Any) -> dict[str, Any]:
    """The manager's derived state as plain JSON (see the module docstring)."""
    compactor, cache, health = manager._compactor, manager.cache, manager._health
    accountant, state = manager.accountant, manager.cache.state
    pending = {id(r) for r in compactor.pending}
    seqs = [
        e.seq for e in manager.log.events if isinstance(e, Compacted) and id(e.record) in pending
    ]
    last: Fingerprint | None = cache._last
    alive = state._committed  # an entry expired then is gone for good: the clock goes on
    sent = _sent_rows([(fp, t) for fp, t in state._sent if t > alive], last)
    calibrator = accountant._calibrator
    snapshots: Snapshots = manager._snapshots
    return {
        "next": compactor.intake.next,
        "door": {
            "open": dict(compactor.intake.door.open),
            "renamed": dict(compactor.intake.door.renamed),
        },
        "tools_planned": manager._tools_planned,
        "usage": dataclasses.asdict(manager.usage),
        "cost": _cost_dict(manager.cost),
        "turns": compactor.turns,
        "sent": compactor.sent,
        "edits": compactor.edits,
        "fresh": list(compactor.fresh),
        "answered": list(compactor.answered),
        "reply": compactor.reply,
        "exempt": sorted(compactor.exempt),
        "pending": seqs,
        "rent": [str(compactor.rent.rent), str(compactor.rent.needed)],
        "distance": health._distance,
        "boundary": manager._writer._boundary,
        "calibrator": dataclasses.asdict(calibrator) if calibrator is not None else None,
        "observations": accountant._observations,
        "factor": accountant.counter.factor,
        "compacted_tokens": health.observer.compacted_tokens,
        "spent": str(health.observer.spent),
        "cache": {
            "busts": cache.busts,
            "committed": state._committed if state._committed != float("-inf") else None,
            "expires": _expiring({k: t for k, t in state._expires.items() if t > alive}, last),
            "sent": sent,
            "format": cache._last_format,
            "render": snapshots.render if last is not None else None,
        },
    }


def restore(manager: Any, events: Sequence[Event]) -> int:
    """Load ``events`` up to their latest usable snapshot into the new ``manager``; how
    many events that took (0: none, replay them all)."""
    at = next(
        (
            n
            for n in range(len(events) - 1, -1, -1)
            if isinstance(events[n], Snapshot) and events[n].version == VERSION  # type: ignore[union-attr]
        ),
        None,
    )
    known = (Appended, Compacted, ToolsSet, Prepared, Observed, Snapshot, Marked)
    if at is None or len(manager.log) or not all(isinstance(e, known) for e in events[:at]):
        return 0
    snap = events[at]
    assert isinstance(snap, Snapshot)
    state = snap.state
    compactor, writer, cache = manager._compactor, manager._writer, manager.cache
    render = state["cache"]["render"]
    tools: tuple[ToolSpec, ...] | None = None
    compactor.log = SessionLog.from_events(events[: at + 1])
    view, door = compactor.view, compactor.intake.door
    door.calls = set()  # every call id appended, retracted ones aside
    for n, event in enumerate(events[:at]):
        if render is not None and n == render["at"]:
            _rendered_again(manager, render, tools or ())
        if isinstance(event, Appended):
            view.append(event.item)
            door.calls.update(c.id for c in event.item.tool_calls)
        elif isinstance(event, Compacted):
            view.apply(event.record.edits)
            if event.record.strategy == RETRACT:  # the retracted calls are free again
                removed = [compactor.log.recall(i) for e in event.record.edits for i in e.remove]
                door.forget(removed, view.items)
        elif isinstance(event, ToolsSet):
            tools = event.tools
    if render is not None and render["at"] == at:
        _rendered_again(manager, render, tools or ())
    _set_state(manager, state)  # the door's open calls and renamed ids too
    accountant = manager.accountant
    if tools is not None:
        accountant.set_tools(tools)
    for item in view:
        accountant.add(item)
    cache.state._sent = _sent(state["cache"]["sent"], cache._last)
    compactor.pending = [compactor.log.events[s].record for s in state["pending"]]
    writer._boundary = state["boundary"]
    manager._snapshots.written()
    return at + 1


def _rendered_again(manager: Any, render: Mapping[str, Any], tools: Sequence[ToolSpec]) -> None:
    """The last request rendered and fingerprinted again, as the cache layer saw it."""
    counter, writer, cache = manager.accountant.counter, manager._writer, manager.cache
    counter.set_factor(render["factor"])
    provider = render["provider"]
    fmt = wire_format(provider)
    body = writer.render(provider, manager.view, tools, render["options"])
    if fmt == "anthropic" and cache.enabled:
        body = cache._strip(body, 0)
    cache._last = cache._fingerprinter.fingerprint(body, fmt, 0)
    cache._last_format = fmt
    writer.handed(fmt)
    manager._snapshots.render = dict(render)


def _set_state(manager: Any, state: Mapping[str, Any]) -> None:
    compactor, health, accountant = manager._compactor, manager._health, manager.accountant
    intake = compactor.intake
    intake.next = state["next"]
    intake.door.open = dict(state["door"]["open"])  # calls without a result yet
    intake.door.renamed = dict(state["door"]["renamed"])
    manager._tools_planned = state["tools_planned"]
    manager.usage = Usage(**state["usage"])
    manager.cost = _cost(state["cost"])
    compactor.turns = state["turns"]
    compactor.sent = state["sent"]
    compactor.edits = state["edits"]
    compactor.fresh = list(state["fresh"])
    compactor.answered = list(state["answered"])
    compactor.reply = state["reply"]
    compactor.exempt = set(state["exempt"])
    compactor.rent.rent, compactor.rent.needed = (Decimal(v) for v in state["rent"])
    health._distance, health._edits = state["distance"], compactor.edits
    if state["calibrator"] is not None:
        accountant._calibrator = Calibrator(**state["calibrator"])
    accountant._observations = state["observations"]
    accountant.counter.set_factor(state["factor"])
    health.observer.compacted_tokens = state["compacted_tokens"]
    health.observer.spent = Decimal(state["spent"])
    cached, cache = state["cache"], manager.cache
    cache.busts = cached["busts"]
    committed = cached["committed"]
    cache.state._committed = float("-inf") if committed is None else committed
    cache.state._expires = _expired(cached["expires"], cache._last)
    cache.state._pruned = len(cache.state._expires)


def _key(block: Block) -> tuple[str, int]:
    return block.digest, block.tokens


def _sent_rows(
    entries: Sequence[tuple[Fingerprint, float]], last: Fingerprint | None
) -> list[list[Any]]:
    """Automatic-mode cache entries, newest first, each as ``[expires, segments]``: a
    segment ``[ref, start, n]`` is ``n`` blocks of an earlier row (``ref`` its index; -1:
    the last request) from ``start``, ``[digest, tokens]`` one block of its own. An entry
    shares a prefix with the last request or a newer entry, and past it mostly blocks one
    of them holds too (a compaction changed a few blocks and kept the others): each entry
    costs the blocks no other one holds, not its length (chained digests after a change
    all differ, the block digests do not)."""
    refs: list[Fingerprint] = [] if last is None else [last]
    index: dict[tuple[str, int], tuple[int, int]] = {}
    if last is not None:
        for pos, block in enumerate(last.blocks):
            index.setdefault(_key(block), (-1, pos))
    rows: list[list[Any]] = []
    for fp, expires in reversed(entries):
        ref, shared = -1, 0
        for n, other in enumerate(refs):
            common = other.common_prefix(fp)
            if common > shared:
                ref, shared = n - (last is not None), common
        if shared:  # the same blocks, counted the same (a counter's factor may differ)
            sums, held = fp.cumulative[:shared], refs[ref + (last is not None)].cumulative
            shared = next((k for k in range(shared) if sums[k] != held[k]), shared)
        segments: list[list[Any]] = [[ref, 0, shared]] if shared else []
        blocks, pos = fp.blocks, shared
        while pos < len(blocks):
            key = _key(blocks[pos])
            if segments and isinstance(segments[-1][0], int):
                at, begin, n = segments[-1]
                held = refs[at + (last is not None)].blocks
                if begin + n < len(held) and _key(held[begin + n]) == key:
                    segments[-1][2] += 1
                    pos += 1
                    continue
            found = index.get(key)
            segments.append([found[0], found[1], 1] if found else [key[0], key[1]])
            pos += 1
        number = len(rows)
        for pos in range(shared, len(blocks)):
            index.setdefault(_key(blocks[pos]), (number, pos))
        rows.append([expires, segments])
        refs.append(fp)
    return rows


def _sent(
    rows: Sequence[Sequence[Any]], last: Fingerprint | None
) -> list[tuple[Fingerprint, float]]:
    """The entries :func:`_sent_rows` wrote (oldest first), given the last request's
    fingerprint again: blocks it shares are its own objects, chains past the shared
    prefix are hashed again."""
    out: list[tuple[Fingerprint, float]] = []
    held: list[list[Block]] = []  # each row's blocks (the last request's: at -1)
    if last is not None:
        held.append(list(last.blocks))
    for expires, segments in rows:
        blocks: list[Block] = []
        for segment in segments:
            if isinstance(segment[0], str):
                blocks.append(Block("", segment[0], segment[1], 0, ""))
                continue
            ref, start, n = segment
            blocks.extend(held[ref + (last is not None)][start : start + n])
        out.append((_rebuilt(blocks, segments, last, out), expires))
        held.append(blocks)
    out.reverse()
    return out


def _rebuilt(
    blocks: list[Block],
    segments: Sequence[Sequence[Any]],
    last: Fingerprint | None,
    done: Sequence[tuple[Fingerprint, float]],
) -> Fingerprint:
    """The fingerprint of ``blocks``; the leading segment's chain and sums are its
    reference's (the same prefix), the rest are computed as the fingerprinter does."""
    head: Fingerprint | None = None
    shared = 0
    if segments and isinstance(segments[0][0], int) and segments[0][1] == 0:
        head = last if segments[0][0] < 0 else done[segments[0][0]][0]
        shared = segments[0][2]
    if head is not None and shared == len(head.chain) == len(blocks):
        return head
    chain = list(head.chain[:shared]) if head is not None else []
    cumulative = list(head.cumulative[:shared]) if head is not None else []
    digest = chain[-1] if chain else ""
    total = cumulative[-1] if cumulative else 0
    for block in blocks[shared:]:
        digest = chain_digest(digest, block)
        total += block.tokens
        chain.append(digest)
        cumulative.append(total)
    return Fingerprint(tuple(blocks), tuple(chain), tuple(cumulative))


def _expiring(expires: Mapping[str, float], last: Fingerprint | None) -> list[list[Any]]:
    """Explicit-mode entries as ``[block index in the last request, expires]`` when the
    last request holds the prefix (most do), else ``[digest, expires]``."""
    at = {d: n for n, d in enumerate(last.chain)} if last is not None else {}
    return [[at.get(d, d), t] for d, t in expires.items()]


def _expired(rows: Sequence[Sequence[Any]], last: Fingerprint | None) -> dict[str, float]:
    chain = last.chain if last is not None else ()
    return {(chain[k] if isinstance(k, int) else k): t for k, t in rows}


def _cost_dict(cost: Cost | None) -> dict[str, str] | None:
    if cost is None:
        return None
    return {f.name: str(getattr(cost, f.name)) for f in dataclasses.fields(cost)}


def _cost(data: Mapping[str, str] | None) -> Cost | None:
    if data is None:
        return None
    return Cost(**{k: Decimal(v) for k, v in data.items()})
