"""The README's and docs' figure blocks, rendered from the records in ``bench/figures``.

One function per block name; each reads only the records (never a constant figure), so a
number in a block is always the recorded run's. ``bench/figures.py`` writes the blocks and
``tests/test_figures.py`` checks them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

Records = dict[str, dict[str, Any]]

BLOCK = re.compile(
    r"<!-- figures:(?P<name>[\w-]+) -->(?P<body>.*?)<!-- /figures:(?P=name) -->", re.DOTALL
)
"""A generated block: ``<!-- figures:NAME -->...<!-- /figures:NAME -->`` (inline or not)."""


def met(ok: bool) -> str:
    return "met" if ok else "not met"


def pct(share: float | None, digits: int = 1) -> str:
    if share is None:
        return "n/a"
    return "100%" if share == 1 else f"{share * 100:.{digits}f}%"


def provenance(record: dict[str, Any]) -> str:
    """Which run: commit, date, machine, command."""
    m = record["machine"]
    dirty = " plus uncommitted changes" if record["dirty"] else ""
    load = m.get("load_at_start")
    busy = f", load average {load:.1f} at the start" if load is not None else ""
    return (
        f"`{record['command']}` on commit {record['commit'][:10]}{dirty}, {record['date']}, "
        f"{m['cpus']} cores ({m['cpu']}{busy})"
    )


def counting(records: Records) -> str:
    r = records["bench_counting"]
    e, t = r["full"]["exact"], r["full"]["timed"]
    per = 1e6 / e["messages"]
    raw = t["raw_s"]
    return f"""
{e["sessions"]} mini-swe-agent sessions, {e["messages"]:,} messages,
{e["raw_tokens"] / 1e6:.1f}M tokens, gpt-4o:

| measure | µs / message | vs raw tiktoken |
|---|---|---|
| raw `tiktoken` `encode_ordinary` | {raw * per:.1f} | 1.000x |
| ctxbudget append (count + framing + ledger) | {t["append_s"] * per:.1f} | {t["append_s"] / raw:.3f}x (goal ≤ 1.2x: {met(t["append_s"] / raw <= 1.2)}) |
| counting the same message again | {t["again_s"] * per:.2f} | {t["again_s"] / raw:.3f}x |
| counting an equal copy (content-key hit) | {t["copy_s"] * per:.2f} | {t["copy_s"] / raw:.3f}x |

Each figure is the best of {e["repeats"]} runs after a warm-up.

Recorded run: {provenance(r)}.
"""  # noqa: E501


def _times(ratio: float) -> str:
    return (
        f"{ratio:,.0f}x faster"
        if ratio >= 10
        else (f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower")
    )


def prepare(records: Records) -> str:
    r = records["bench_prepare"]
    e, t = r["full"]["exact"], r["full"]["timed"]
    small, middle, large = t["cpu_p50_ms"]
    growth = large / small
    exact, cached, ours = t["trim_exact_cpu_ms"], t["trim_cached_cpu_ms"], t["compaction_cpu_ms"]
    sizes = " / ".join(f"{n:,}" for n in e["sizes"])
    return f"""
`prepare()` on histories of {sizes} messages built from real mini-swe-agent sessions
(gpt-4o, exact counts), side by side with LangChain's `trim_messages` to the same target,
once with an exact tiktoken counter over the whole list on every call and once with the
counts cached per message object (repeated trims never recount a message; timed warm).
CPU-time medians of {e["steps"]} calls per size:

| measure | figure | goal |
|---|---|---|
| append + prepare, no compaction due, {sizes} messages | p50 {small:.2f} / {middle:.2f} / {large:.2f} ms | p50 < 1 ms at {e["sizes"][1]:,} ({met(middle < 1)}) |
| p50 at {e["sizes"][2]:,} over p50 at {e["sizes"][0]:,} | {growth:.2f}x | ≤ 1.5x ({met(growth <= 1.5)}): a call does not grow with the session |
| steady-state `prepare()` vs `trim_messages` with an exact counter ({exact:,.0f} ms) | {_times(exact / middle)} | ≥ 100x ({met(exact / middle >= 100)}) |
| steady-state `prepare()` vs `trim_messages` with counts cached per message ({cached:.2f} ms) | {_times(cached / middle)} | |
| one compaction pass at {e["compaction_messages"]:,} messages (crossing the high watermark, down to the low one; {", ".join(f"`{s}`" for s in e["strategies"])}) | {ours:.1f} ms ({e["before"]:,} → {e["after"]:,} tokens); vs `trim_messages`: {_times(exact / ours)} (exact counter), {_times(cached / ours)} (cached counts) | < 20 ms ({met(ours < 20)}) |

Recorded run: {provenance(r)}.
"""  # noqa: E501


def telemetry(records: Records) -> str:
    r = records["bench_telemetry"]
    e, t = r["full"]["exact"], r["full"]["timed"]
    on, exporters = t["collection_overhead"], t["exporters_overhead"]
    return f"""
What telemetry costs `prepare()` on the {e["messages"]:,}-message real history of
`bench_prepare` (gpt-4o, exact counts), hooks off and on in turn on one manager
({e["steps"]:,} calls; median of the paired differences):

| telemetry | overhead on prepare() | goal |
|---|---|---|
| metrics record, alert rules, signal actions | {on:+.1%} | < 5% ({met(on < 0.05)}) |
| the same + JSON lines to a file, Prometheus, OpenTelemetry | {exporters:+.1%} | |

Recorded run: {provenance(r)}.
"""


def _folder(name: str) -> str:
    return {
        "mini-swe-agent-v1": "mini-swe-agent v1",
        "mini-swe-agent-v2-toolcalls": "mini-swe-agent v2",
        "openhands-output-jsonl": "OpenHands",
        "swe-agent-traj": "SWE-agent",
        "tau-bench-openai-chat": "tau-bench",
        "terminus2-chat-messages": "Terminus",
        "openhands": "OpenHands",
        "swe-agent": "SWE-agent",
        "terminus": "Terminus",
        "openai-chat": "tau-bench",
    }.get(name, name)


def _signed(share: float) -> str:
    return f"{share:+.2%}".replace("-", "−")


def _cheaper(cost: float, base: float) -> str:
    change = (cost - base) / base
    return f"{abs(change):.1%} {'cheaper' if change < 0 else 'dearer'}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def cache_economics(records: Records) -> str:
    r = records["bench_cache_economics"]
    e = r["full"]["exact"]
    claude, gpt = e["models"]["claude-sonnet-4-5"], e["models"]["gpt-4.1"]
    names = {
        "none-nocache": "`none-nocache`",
        "none": "`none` (best prefix caching)",
        "mask-last-10": "`mask-last-10` (every call)",
        "ctxbudget": "ctxbudget default (`digest`)",
    }
    rows = []
    for policy, label in names.items():
        a, b = claude["policies"][policy], gpt["policies"][policy]
        rows.append(
            f"| {label} | ${a['cost']:,.2f} | {a['vs_none']:.2f}x | {pct(a['retention'])} "
            f"| ${b['cost']:,.2f} | {b['vs_none']:.2f}x | {pct(b['retention'])} |"
        )
    folders = sorted(claude["folders"], key=lambda f: claude["folders"][f])
    by_folder = ", ".join(
        f"{_folder(f)} {claude['folders'][f]:.2f}x / {gpt['folders'][f]:.2f}x" for f in folders
    )
    simulate = records["bench_simulate"]["full"]["exact"]["sheets"][0]
    worse_all = simulate["all"]["ctxbudget"]["worse_than_none"]
    worse_short = worse_all - simulate["long"]["ctxbudget"]["worse_than_none"]
    table = "\n".join(rows)
    worse_claude = claude["policies"]["ctxbudget"]["worse_than_none"]
    worse_gpt = gpt["policies"]["ctxbudget"]["worse_than_none"]
    return f"""
Input cost (uncached input + cache reads + cache writes) of replaying all {e["sessions"]}
sessions in `../shared/traces` call by call, priced with each provider's cache rules
(`--quick` replays 3 sessions per folder):

| policy | Claude Sonnet 4.5 | vs `none` | retention | GPT-4.1 | vs `none` | retention |
|---|---|---|---|---|---|---|
{table}

Sessions costlier than `none`: {worse_claude} of {e["sessions"]} on Claude, {worse_gpt} on GPT-4.1
(in `bench_simulate`, {worse_short} of the {worse_all} sessions costlier than `none` on
Claude have fewer than 20 calls). By folder (Claude / GPT-4.1): {by_folder}.

Recorded run: {provenance(r)}.
"""


POLICY_ROWS = {
    "none-nocache": "`none-nocache`",
    "none": "`none`",
    "mask-last-10": "`mask-last-10`",
    "clear-tool-uses": "`clear-tool-uses`",
    "ctxbudget:agent": "`ctxbudget:agent` (the default before)",
    "ctxbudget": "**ctxbudget default** (`digest`)",
    "ctxbudget:digest-lean": "`ctxbudget:digest-lean`",
}


def _goals(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The issue-15 goals for the default on both sheets, met or not, with the figures."""
    checks = [
        (
            "retention ≥ 97%",
            a["retention"] >= 0.97 and b["retention"] >= 0.97,
            f"{pct(a['retention'])} / {pct(b['retention'])}",
        ),
        (
            "line retention ≥ 95%",
            a["line_retention"] >= 0.95 and b["line_retention"] >= 0.95,
            f"{pct(a['line_retention'])} / {pct(b['line_retention'])}",
        ),
        (
            "≤ 0.60x `none`",
            a["vs_none"] <= 0.6 and b["vs_none"] <= 0.6,
            f"{a['vs_none']:.2f}x / {b['vs_none']:.2f}x",
        ),
        (
            "≤ 0.09x `none-nocache`",
            a["vs_nocache"] <= 0.09 and b["vs_nocache"] <= 0.09,
            f"{a['vs_nocache']:.3f}x / {b['vs_nocache']:.3f}x",
        ),
        (
            "no session costlier than `none`",
            a["worse_than_none"] == 0 and b["worse_than_none"] == 0,
            f"{a['worse_than_none']} / {b['worse_than_none']}",
        ),
        (
            "sum of peaks ≤ 0.5x `none`",
            a["peak_vs_none"] <= 0.5 and b["peak_vs_none"] <= 0.5,
            f"{a['peak_vs_none']:.2f}x / {b['peak_vs_none']:.2f}x",
        ),
    ]
    return "; ".join(f"{goal}: {met(ok)} ({shown})" for goal, ok, shown in checks)


def simulate(records: Records) -> str:
    r = records["bench_simulate"]
    e = r["full"]["exact"]
    sonnet, gpt = e["sheets"]
    a_all, a, b = sonnet["all"], sonnet["long"], gpt["long"]
    rows = []
    for policy, label in POLICY_ROWS.items():
        x, y = a[policy], b[policy]
        bold = "**" if policy == "ctxbudget" else ""
        cells = [
            f"{x['cost']:,.2f}",
            f"{x['vs_none']:.2f}x",
            f"{x['vs_nocache']:.3f}x",
            f"{y['cost']:,.2f}",
            f"{y['vs_none']:.2f}x",
            pct(x["retention"]),
            pct(x["line_retention"]),
            f"{x['peak_vs_none']:.2f}x",
            f"{x['worse_than_none']} / {y['worse_than_none']}",
        ]
        rows.append(f"| {label} | " + " | ".join(f"{bold}{c}{bold}" for c in cells) + " |")
    own, agent, lean = a["ctxbudget"], a["ctxbudget:agent"], a["ctxbudget:digest-lean"]
    demo = records["demo"]["full"]["exact"]
    by_ratio = sorted(sonnet["formats"].items(), key=lambda item: item[1])
    formats = ", ".join(f"{_folder(f)} {ratio:.2f}x" for f, ratio in by_ratio)
    table = "\n".join(rows)
    return f"""
`ctxbudget simulate` over every session in `../shared/traces` (imported by
`ctxbudget.traces`: {a_all["sessions"]} sessions, {a_all["calls"]:,} model calls), on two price
sheets: Claude Sonnet 4.5 with Anthropic's cache rules (explicit breakpoints, writes 1.25x,
reads 0.1x; token counts are estimates, the same for every policy) and GPT-5 with OpenAI's
(automatic prefix caching, reads 0.1x; exact counts). Input cost = uncached input + cache
reads + cache writes + **recall calls**: after every call whose view had lost a reference
the agent then used, one more call (the request again, plus the lost items read back), so
no policy looks cheap by dropping what the agent needs. Long sessions (20+ calls:
{a["sessions"]} sessions, {a["calls"]:,} calls):

| policy | Sonnet input $ | vs `none` | vs `none-nocache` | GPT-5 input $ | vs `none` | retention | line retention | peak (sum, vs `none`) | costlier than `none` (Sonnet / GPT-5) |
|---|---|---|---|---|---|---|---|---|---|
{table}

(Retention figures are Sonnet's; on GPT-5 the default keeps
{pct(b["ctxbudget"]["retention"])} / {pct(b["ctxbudget"]["line_retention"])}.) Recall calls
are part of every figure: the default needs {own["recalls"]} on Sonnet
(${own["recall_cost"]:.2f}), the old `agent` preset {agent["recalls"]}
(${agent["recall_cost"]:.2f}). `digest-lean` is {_cheaper(lean["cost"], own["cost"])} than
the default at {pct(lean["retention"])} retention, and costlier than `none` on
{plural(lean["worse_than_none"], "session")}. On the demo session ({demo["calls"]} calls,
Sonnet) the default costs {demo["ctxbudget"]["vs_none"]:.2f}x `none` at
{pct(demo["ctxbudget"]["retention"])} retention ({pct(demo["ctxbudget"]["line_retention"])}
line retention); `agent` {demo["ctxbudget:agent"]["vs_none"]:.2f}x at
{pct(demo["ctxbudget:agent"]["retention"])}.

Against the issue-15 goals for the default (long sessions, Sonnet / GPT-5):
{_goals(own, b["ctxbudget"])}. By format (Sonnet): {formats}.

Recorded run: {provenance(r)}.
"""  # noqa: E501


def demo(records: Records) -> str:
    d = records["demo"]["full"]["exact"]
    none, own = d["none"], d["ctxbudget"]
    window = d["window"]
    over = (
        f", past the model's {window // 1000}K window near the end"
        if none["peak"] > window
        else f" (the model's window is {window // 1000}K)"
    )
    return f"""
The demo session above ({d["calls"]} calls, priced as Claude Sonnet 4.5; counts are
estimates): without management the prompt reaches {none["peak"] / 1000:.0f}K
tokens{over}; the default policy keeps it under {math.ceil(own["peak"] / 1000)}K and costs
{own["vs_none"]:.2f}x of `none` (recall calls included) at {pct(own["retention"])} retention
(the demo agent deliberately goes back to files it read many calls earlier, which every
policy that forgets pays for). Recorded run: {provenance(records["demo"])};
`tests/test_figures.py` recomputes these figures.
"""


def scoping(records: Records) -> str:
    r = records["bench_scoping"]
    e = r["full"]["exact"]
    gpt, claude = e["models"]["gpt-4o"], e["models"]["claude-sonnet-4-5"]
    labels = {
        ("gpt-4o", "full"): "full list",
        ("gpt-4o", "remove"): "remove",
        ("gpt-4o", "cache_stable"): "cache-stable (`allowed_tools`)",
        ("claude-sonnet-4-5", "full"): "full list",
        ("claude-sonnet-4-5", "remove"): "remove",
        ("claude-sonnet-4-5", "cache_stable"): "cache-stable (deferred loading)",
    }
    rows = []
    for (model, mode), label in labels.items():
        t, base = e["models"][model][mode], e["models"][model]["full"]
        delta = (t["cost"] - base["cost"]) / base["cost"]
        deferred = model.startswith("claude") and mode == "cache_stable"
        tokens = (
            f"{t['tool_tokens']:,} sent, {t['loaded_tool_tokens']:,} loaded"
            if deferred
            else f"{t['tool_tokens']:,}"
        )
        cost = f"{t['cost']:.4f}" + (" (upper bound)" if deferred else "")
        rewrites = (
            f"{t['rewrites']} ({t['held']}), ${t['rewrite_cost']:.4f}" if t["rewrites"] else "0"
        )
        vs = "" if mode == "full" else _signed(delta)
        coverage = pct(t["covered"] / t["tool_calls"] if t["tool_calls"] else 1.0)
        rows.append(f"| {model} | {label} | {tokens} | {cost} | {vs} | {rewrites} | {coverage} |")
    remove = (claude["remove"]["cost"] - claude["full"]["cost"]) / claude["full"]["cost"]
    remove_gpt = (gpt["remove"]["cost"] - gpt["full"]["cost"]) / gpt["full"]["cost"]
    table = "\n".join(rows)
    return f"""
Tool scoping on all {e["sessions"]} tau-bench airline sessions ({gpt["full"]["calls"]:,} calls,
{e["tools"]} tools). The trace has no tool schemas, so they are inferred from its calls (names,
argument names and JSON types, no descriptions): real schemas are larger, and the schema
savings are a lower bound. A keyword router picks the phase each turn; "coverage" is the
share of the agent's real tool calls its phase offered. Token counts are estimates.

| model | mode | tool-schema tokens | input $ | vs full | prefix rewrites (held) | coverage |
|---|---|---|---|---|---|---|
{table}

Removing tools shrinks every request but each change of the set rewrites the cached prefix:
the input bill changes by {_signed(remove_gpt)} on gpt-4o and {_signed(remove)} on Anthropic's
prices (writes 1.25x, reads 0.1x); the cache-stable mode keeps the prefix byte-identical. The
Anthropic cache-stable figure counts deferred schemas as if loaded, so it is an upper bound.

Recorded run: {provenance(r)}.
"""


def savings_agent(records: Records) -> str:
    sonnet, gpt = records["bench_simulate"]["full"]["exact"]["sheets"]
    a, b = sonnet["long"]["ctxbudget:agent"], gpt["long"]["ctxbudget:agent"]
    return (
        f"{a['vs_none']:.2f}x (Claude Sonnet 4.5) and {b['vs_none']:.2f}x (GPT-5) of no "
        "management on the long sessions of `bench_simulate`"
    )


def _added(latency: dict[str, Any], name: str) -> str:
    """``+x.x ms`` added at the p50 of one row (``-`` when the run has no such row)."""
    row = latency.get(name)
    return "-" if row is None else f"+{row['added_p50_ms']:.1f} ms"


def _cell(latency: dict[str, Any], name: str) -> str:
    """A JSON row and its streamed twin in one cell."""
    return f"{_added(latency, f'{name}/json')} (stream {_added(latency, f'{name}/stream')})"


def proxy(records: Records) -> str:
    r = records["bench_proxy"]
    e, t = r["full"]["exact"], r["full"]["timed"]
    lat, memory = t["latency"], t["memory_per_idle_session_bytes"]
    rows = [
        ("the HTTP relay alone (a pass-through path, nothing read)", "relay/pass"),
        ("Anthropic, observe", "anthropic/observe"),
        ("Anthropic, manage", "anthropic/manage"),
        ("OpenAI chat, observe", "chat/observe"),
        ("OpenAI chat, manage", "chat/manage"),
    ]
    table = "\n".join(
        f"| {label} | {_cell(lat, f'{key}/10')} | {_cell(lat, f'{key}/1000')} | "
        + (
            "- |"
            if key.startswith("relay")
            else f"{_added(lat, f'{key}/1000/json+50ms')} "
            f"(stream {_added(lat, f'{key}/1000/stream+50ms')}) |"
        )
        for label, key in rows
    )
    at_1000 = [
        row["added_p50_ms"]
        for name, row in lat.items()
        if "/1000/" in name and not name.startswith("relay")
    ]
    firsts = [
        row["first_call_added_p50_ms"]
        for name, row in lat.items()
        if "/1000/" in name and not name.startswith("relay")
    ]
    reached = max(at_1000) < 3.0
    return f"""
What `ctxbudget proxy` adds to a call, against calling the same local upstream directly:
p50 of {e["calls"]["1000"]} calls per row at 1,000 messages, {e["calls"]["10"]} at 10
(uvicorn with uvloop and httptools, a SQLite store; the upstream answers at once, or after
a model's time of 50 ms in the last column):

| what | 10 messages | 1,000 messages | 1,000 messages, +50 ms model time |
|---|---|---|---|
{table}

Goal: under 3 ms added at 1,000 messages: {met(reached)} (from {min(at_1000):+.1f} to
{max(at_1000):+.1f} ms). The relay alone takes most of the goal on this machine; the
bookkeeping of a call (the new messages appended and written to the store, the request
prepared and accounted, the reply recorded before the response ends) adds the rest. A
session's first call through the proxy reads its whole history:
{min(firsts):+.0f} to {max(firsts):+.0f} ms at 1,000 messages. Each idle session kept in
memory holds {memory["observe/10"] / 1e6:.2f} MB at 10 messages and
{memory["observe/1000"] / 1e6:.1f} MB at 1,000 (Python heap, `tracemalloc`; manage mode
{memory["manage/1000"] / 1e6:.1f} MB).

Recorded run: {provenance(r)}.
"""


RENDERERS: dict[str, Callable[[Records], str]] = {
    "bench_counting": counting,
    "bench_prepare": prepare,
    "bench_telemetry": telemetry,
    "bench_cache_economics": cache_economics,
    "bench_simulate": simulate,
    "bench_scoping": scoping,
    "bench_proxy": proxy,
    "demo": demo,
    "savings-agent": savings_agent,
}
