"""prepare() latency and one compaction pass, side by side with LangChain's trim_messages.

On histories built from real mini-swe-agent sessions in ../shared/traces (gpt-4o, exact
o200k_base counts; past the end of the traces the sessions repeat with fresh call ids):

* steady state at 250, 1,000 and 4,000 messages: append one message, prepare (no
  compaction needed) — p50 / p90 of wall time and of CPU time (the thread's own time,
  which a busy machine does not inflate; the goals are judged on it), and how much the
  p50 grows from 250 to 4,000 messages (flat cost: prepare works on what changed);
* one full compaction pass at 1,000 messages: a prepare() that crosses the high
  watermark and runs the cascade down to the low watermark (summarizer time excluded: the
  cascade here is dedup, truncate, clear_tool_results, importance; the default cascade is
  timed separately);
* LangChain ``trim_messages`` to the same target, two ways: with an exact tiktoken counter
  (the cookbook rule over the whole list on every call, as
  ``ChatOpenAI.get_num_tokens_from_messages`` does), and with the same count cached per
  message object (a fair agent loop: repeated trims never recount a message; timed warm,
  after one trim filled the cache).

Goals: prepare p50 < 1 ms at 1,000 messages; p50 at 4,000 within 1.5x of p50 at 250;
compaction pass < 20 ms; >= 100x faster than trim_messages with an exact counter (shown for
the compaction pass and for the steady-state prepare, on CPU time).
Run: ``python bench/bench_prepare.py [--quick] [--json PATH]`` (``--json`` writes the
figures for ``bench/figures.py``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxbudget.manager import ContextManager, PrepareReport
from ctxbudget.tokens.encodings import load_encoding

TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"
FOLDER = "mini-swe-agent-v2-toolcalls"
API_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")
"""What an agent loop sends; the logs' own bookkeeping fields (``extra``...) are dropped."""


def history(size: int) -> list[dict[str, Any]]:
    """The first ``size`` API messages of the sessions, whole exchanges, one system prompt;
    past the end of the traces they repeat with fresh call ids."""
    base = _sessions()
    out: list[dict[str, Any]] = []
    rounds = 0
    while len(out) <= size + 100:  # enough to end on a whole exchange
        for original in base[1:] if rounds else base:
            message = original
            if rounds:
                message = dict(original)
                if message.get("tool_calls"):
                    message["tool_calls"] = [
                        {**c, "id": f"{c['id']}_{rounds}"} for c in message["tool_calls"]
                    ]
                if message.get("tool_call_id"):
                    message["tool_call_id"] = f"{message['tool_call_id']}_{rounds}"
            out.append(message)
        rounds += 1
    # cut at a message that starts a new turn, so no call loses its results
    cut = size
    while cut < len(out) and out[cut]["role"] == "tool":
        cut += 1
    return out[:cut]


def _sessions() -> list[dict[str, Any]]:
    """Every API message of the traces, one system prompt, unanswered calls dropped."""
    out: list[dict[str, Any]] = []
    for path in sorted((TRACES / FOLDER).glob("*.json")):
        messages = json.loads(path.read_text(encoding="utf-8"))["messages"]
        for message in messages:
            if message["role"] == "exit" or (message["role"] == "system" and out):
                continue
            out.append({k: message[k] for k in API_KEYS if k in message})
    # drop calls the logs never answered (sessions that ended mid-call): a provider would
    # reject them, and they are not what is measured here
    answered = {m["tool_call_id"] for m in out if m["role"] == "tool"}
    return [
        m
        for m in out
        if not m.get("tool_calls") or all(c["id"] in answered for c in m["tool_calls"])
    ]


SIZES = (250, 1_000, 4_000)
"""History sizes (messages) of the steady-state measurement."""
MECHANICAL = ["dedup", "truncate", "clear_tool_results", "importance"]
"""The cascade timed for "one compaction pass" (no summarizer)."""


def manager(window: int, strategies: list[str] | None = None) -> ContextManager:
    return ContextManager(
        "gpt-4o", context_window=window, max_output_tokens=4_000, strategies=strategies
    )


@dataclass
class Steady:
    """Steady-state latencies of one history size (seconds)."""

    messages: int
    tokens: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def p50(self, cpu: bool = True) -> float:
        return statistics.median(self.cpu if cpu else self.wall) * 1e3

    def p90(self, cpu: bool = True) -> float:
        return statistics.quantiles(self.cpu if cpu else self.wall, n=10)[-1] * 1e3


def steady_state(sizes: tuple[int, ...], steps: int, rounds: int = 10) -> list[Steady]:
    """p50 / p90 (ms) of append + prepare with no compaction, per history size.

    The sizes take turns, ``steps / rounds`` calls at a time, so a change in the machine's
    load falls on all of them alike.
    """
    runs = []
    for size in sizes:
        messages = history(size)
        mgr = manager(2_000_000)
        mgr.extend(messages)
        mgr.prepare()
        runs.append((mgr, Steady(len(messages), mgr.total())))
    for block in range(rounds):
        for mgr, steady in runs:
            for step in range(block * steps // rounds, (block + 1) * steps // rounds):
                role = "user" if step % 2 == 0 else "assistant"
                message = {"role": role, "content": f"step {step}: continue with the next file"}
                wall, cpu = time.perf_counter(), time.thread_time()
                mgr.append(message)
                mgr.prepare()
                steady.cpu.append(time.thread_time() - cpu)
                steady.wall.append(time.perf_counter() - wall)
    return [steady for _, steady in runs]


def crossing_window(messages: list[dict[str, Any]]) -> int:
    """A window whose high watermark the last ten messages cross (after door truncation)."""
    managed = manager(2_000_000, MECHANICAL)
    managed.extend(messages[:-10])
    before_last = managed.total()
    window = 10_000
    while manager(window).accountant.ledger.allocation.high_watermark < before_last:
        window += 1_000
    return window


def compaction_pass(
    messages: list[dict[str, Any]], window: int, strategies: list[str] | None, repeats: int
) -> tuple[float, float, PrepareReport]:
    """Best wall and CPU time (ms) of the prepare() that crosses the high watermark, and
    its report.

    As an agent loop meets it: the manager has prepared every turn before (so earlier
    messages are rendered and counted already), then one message crosses the watermark.
    """
    times, cpus, report = [], [], None
    for _ in range(repeats):
        mgr = manager(window, strategies)
        mgr.extend(messages[:-10])
        mgr.prepare()
        for message in messages[-10:]:
            mgr.append(message)
            start, cpu = time.perf_counter(), time.thread_time()
            mgr.prepare()
            elapsed, used = time.perf_counter() - start, time.thread_time() - cpu
            if mgr.last_report is not None and mgr.last_report.reason:
                times.append(elapsed)
                cpus.append(used)
                report = mgr.last_report
                break
    if report is None:
        raise SystemExit("error: no prepare crossed the high watermark; window miscomputed")
    return min(times) * 1e3, min(cpus) * 1e3, report


def _message_tokens(encoding: Any, message: Any) -> int:
    """One message under the cookbook rule (framing included), as an exact counter sees it."""
    text = message.content if isinstance(message.content, str) else str(message.content)
    tokens = 3 + len(encoding.encode_ordinary(text)) + 1
    for call in getattr(message, "tool_calls", []) or []:
        tokens += len(encoding.encode_ordinary(json.dumps(call["args"])))
    return tokens


def langchain_trim(
    messages: list[dict[str, Any]], target: int, repeats: int, *, cached: bool = False
) -> tuple[float, float, int]:
    """Best wall and CPU time (ms) of trim_messages to ``target``; messages kept.

    ``cached=False``: an exact counter that tokenizes every message of every list it is
    given. ``cached=True``: the same count cached per message object (so only a message
    never seen is tokenized), timed warm: one untimed trim fills the cache first.
    """
    from langchain_core.messages import convert_to_messages, trim_messages

    lc_messages = convert_to_messages(messages)
    encoding = load_encoding("o200k_base")
    seen: dict[int, tuple[Any, int]] = {}  # id(message) -> (message kept alive, tokens)

    def exact_counter(batch: list[Any]) -> int:
        return 3 + sum(_message_tokens(encoding, message) for message in batch)

    def cached_counter(batch: list[Any]) -> int:
        tokens = 3
        for message in batch:
            hit = seen.get(id(message))
            if hit is None:
                hit = seen[id(message)] = (message, _message_tokens(encoding, message))
            tokens += hit[1]
        return tokens

    def trim() -> list[Any]:
        return trim_messages(
            lc_messages,
            max_tokens=target,
            token_counter=cached_counter if cached else exact_counter,
            strategy="last",
            start_on="human",
            include_system=True,
        )

    if cached:
        trim()  # warm: every message counted once
    times, cpus, kept = [], [], 0
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.thread_time()
        trimmed = trim()
        times.append(time.perf_counter() - start)
        cpus.append(time.thread_time() - cpu)
        kept = len(trimmed)
    return min(times) * 1e3, min(cpus) * 1e3, kept


def versus(ratio: float) -> str:
    """A time ratio (theirs / ours) as words."""
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def header(quick: bool) -> list[str]:
    """What is compared, with what, on what: printed first."""
    from langchain_core import __version__ as lc_version

    import ctxbudget

    return [
        "bench_prepare: ctxbudget ContextManager.prepare() vs LangChain trim_messages "
        f"(ctxbudget {ctxbudget.__version__}, langchain-core {lc_version}, "
        f"Python {platform.python_version()}{', --quick' if quick else ''})",
        f"  histories: the first {' / '.join(f'{n:,}' for n in SIZES)} API messages of "
        f"{FOLDER} in ../shared/traces (one system prompt, whole exchanges; past the end the "
        "sessions repeat with fresh call ids), gpt-4o, exact o200k_base counts",
        "  ctxbudget steady state: append one message, then prepare() with no compaction due "
        "(render, count the rendered body, fingerprint, cache prediction)",
        "  ctxbudget compaction pass: the prepare() that crosses the high watermark at 1,000 "
        f"messages, cascade {' > '.join(MECHANICAL)} down to the low watermark",
        "  LangChain: trim_messages(strategy='last', start_on='human', include_system=True) to "
        "the token count the compaction pass reached, with (a) an exact tiktoken counter over "
        "every message of every call, (b) the same count cached per message object (warm)",
        "  times: CPU time of this thread (time.thread_time; goals judged on it) and wall time",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not TRACES.is_dir():
        print(f"skipped: {TRACES} not found (real agent logs live beside the project root)")
        return 0
    for line in header(args.quick):
        print(line)
    steps, repeats = (60, 3) if args.quick else (500, 10)
    small, middle, large = steady_state(SIZES, steps)
    messages = history(1_000)
    window = crossing_window(messages)
    ours_wall, ours, report = compaction_pass(messages, window, MECHANICAL, repeats)
    default_wall, default, _ = compaction_pass(messages, window, None, repeats)
    target = report.input_tokens.tokens
    lc_wall, lc, kept = langchain_trim(messages, target, 1 if args.quick else 3)
    lcc_wall, lcc, kept_cached = langchain_trim(messages, target, repeats, cached=True)
    print(f"prepare steady state ({steps} x append+prepare per size; gpt-4o, exact counts):")
    for steady in (small, middle, large):
        print(
            f"  {steady.messages:>5,} messages, {steady.tokens:>9,} tokens: "
            f"CPU p50 {steady.p50():.3f} ms, p90 {steady.p90():.3f} ms; "
            f"wall p50 {steady.p50(cpu=False):.3f} ms, p90 {steady.p90(cpu=False):.3f} ms"
        )
    print(f"  goal CPU p50 < 1 ms at {middle.messages:,} messages: {met(middle.p50() < 1)}")
    ratio, wall_ratio = large.p50() / small.p50(), large.p50(False) / small.p50(False)
    print(
        f"  p50({large.messages:,}) / p50({small.messages:,}): CPU {ratio:.2f}x, wall "
        f"{wall_ratio:.2f}x  -> goal <= 1.5x (CPU): {met(ratio <= 1.5)}"
    )
    print(
        f"compaction pass ({len(messages):,} messages, window {window:,}; "
        f"{report.before.total.tokens:,} -> {target:,} tokens; "
        f"{', '.join(r.strategy for r in report.records)}): CPU {ours:.2f} ms "
        f"(wall {ours_wall:.2f})  -> goal < 20 ms: {met(ours < 20)}"
    )
    print(
        f"default cascade (same pass, the default policy's strategies): CPU {default:.2f} ms "
        f"(wall {default_wall:.2f})"
    )
    print(
        f"LangChain trim_messages, exact counter, same target: CPU {lc:.1f} ms "
        f"(wall {lc_wall:.1f}; {kept} kept)"
    )
    print(
        f"LangChain trim_messages, counts cached per message (warm), same target: CPU "
        f"{lcc:.2f} ms (wall {lcc_wall:.2f}; {kept_cached} kept)"
    )
    print(
        f"speed-up vs trim_messages, compaction pass: {lc / ours:.0f}x (CPU)"
        f"  -> goal >= 100x: {met(lc / ours >= 100)}; vs the cached counter: {versus(lcc / ours)}"
    )
    steady = lc / middle.p50()
    print(
        f"speed-up vs trim_messages, steady-state prepare at {middle.messages:,} messages: "
        f"{steady:.0f}x (CPU)  -> goal >= 100x: {met(steady >= 100)}; vs the cached counter: "
        f"{versus(lcc / middle.p50())}"
    )
    if args.json is not None:
        figures = {
            "exact": {
                "sizes": [s.messages for s in (small, middle, large)],
                "tokens": [s.tokens for s in (small, middle, large)],
                "steps": steps,
                "compaction_messages": len(messages),
                "window": window,
                "before": report.before.total.tokens,
                "after": target,
                "strategies": [r.strategy for r in report.records],
                "kept": kept,
                "kept_cached": kept_cached,
            },
            "timed": {
                "cpu_p50_ms": [s.p50() for s in (small, middle, large)],
                "cpu_p90_ms": [s.p90() for s in (small, middle, large)],
                "wall_p50_ms": [s.p50(False) for s in (small, middle, large)],
                "compaction_cpu_ms": ours,
                "compaction_wall_ms": ours_wall,
                "default_cascade_cpu_ms": default,
                "trim_exact_cpu_ms": lc,
                "trim_cached_cpu_ms": lcc,
            },
            "header": header(args.quick),
        }
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
