"""Counting throughput on real agent messages, side by side with raw tiktoken, in one run.

What it measures, on every mini-swe-agent session in ../shared/traces (gpt-4o, o200k_base):

* raw tiktoken: ``len(enc.encode_ordinary(text))`` over each message's text;
* ctxbudget append: ``Accountant.add(item)`` for each message of a fresh session, which
  tokenizes, applies the chat framing rule and updates the per-component ledger;
* ctxbudget second count: counting the very same messages again (cache hit);
* ctxbudget equal copy: counting items rebuilt from their dict form (content-hash hit).

Goals (issue 2): append within 1.2x of raw tiktoken; a second count costs nothing
measurable next to tokenizing. Run: ``python bench/bench_counting.py [--quick] [--json PATH]``
(``--json`` writes the figures for ``bench/figures.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ctxbudget.budget.accounting import Accountant
from ctxbudget.budget.models import resolve_model
from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.session.items import Item, item_from_dict, item_text, item_to_dict
from ctxbudget.tokens.encodings import load_encoding

TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"
FOLDERS = ("mini-swe-agent-v1", "mini-swe-agent-v2-toolcalls")


def load_sessions(limit: int | None) -> list[list[Item]]:
    """Every session's messages as items (the non-API ``exit`` role dropped)."""
    sessions: list[list[Item]] = []
    for folder in FOLDERS:
        for path in sorted((TRACES / folder).glob("*.json"))[:limit]:
            messages = json.loads(path.read_text(encoding="utf-8"))["messages"]
            api = [m for m in messages if m.get("role") != "exit"]
            sessions.append(from_openai_chat(api))
    return sessions


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs after one untimed warm-up, in seconds."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 sessions per folder, 1 run")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not TRACES.is_dir():
        print(f"skipped: {TRACES} not found (real agent logs live beside the project root)")
        return 0
    sessions = load_sessions(3 if args.quick else None)
    repeats = 1 if args.quick else 5
    model = resolve_model("gpt-4o")
    encoding = load_encoding("o200k_base")
    texts = [item_text(item) for session in sessions for item in session]
    messages = len(texts)
    raw_tokens = sum(len(encoding.encode_ordinary(t)) for t in texts)

    def raw() -> None:
        for text in texts:
            len(encoding.encode_ordinary(text))

    accountants: list[Accountant] = []

    def append() -> None:
        accountants.clear()
        for session in sessions:
            accountant = Accountant(model, "agent")
            for item in session:
                accountant.add(item)
            accountants.append(accountant)

    t_raw = best_of(repeats, raw)
    t_append = best_of(repeats, append)
    counted = sum(a.input_tokens.tokens for a in accountants)

    def again() -> None:
        for accountant, session in zip(accountants, sessions, strict=True):
            for item in session:
                accountant.counter.count_item(item)

    # A fresh set of equal copies per run (warm-up included): a reused copy would be an
    # identity hit, not a content hit.
    copy_sets = [
        [[item_from_dict(item_to_dict(i)) for i in s] for s in sessions] for _ in range(repeats + 1)
    ]

    def equal_copies() -> None:
        for accountant, session in zip(accountants, copy_sets.pop(), strict=True):
            for item in session:
                accountant.counter.count_item(item)

    t_again = best_of(repeats, again)
    t_copy = best_of(repeats, equal_copies)
    per_msg = 1e6 / messages
    print(f"sessions: {len(sessions)}  messages: {messages}  text tokens (o200k): {raw_tokens}")
    print(f"ctxbudget ledger total over all sessions: {counted} tokens (framing included)")
    print(f"{'measure':<34}{'seconds':>10}{'tokens/s':>14}{'us/message':>12}{'vs raw':>9}")
    rows = [
        ("raw tiktoken encode_ordinary", t_raw),
        ("ctxbudget append (count + ledger)", t_append),
        ("ctxbudget second count (same item)", t_again),
        ("ctxbudget count of an equal copy", t_copy),
    ]
    for name, seconds in rows:
        print(
            f"{name:<34}{seconds:>10.4f}{raw_tokens / seconds:>14,.0f}"
            f"{seconds * per_msg:>12.2f}{seconds / t_raw:>8.3f}x"
        )
    ratio = t_append / t_raw
    print(
        f"goal: append within 1.2x of raw tiktoken -> {ratio:.3f}x "
        f"({'met' if ratio <= 1.2 else 'NOT met'})"
    )
    print(f"goal: second count negligible -> {t_again / t_raw:.4f}x of tokenizing")
    if args.json is not None:
        figures = {
            "exact": {
                "sessions": len(sessions),
                "messages": messages,
                "raw_tokens": raw_tokens,
                "ledger_tokens": counted,
                "repeats": repeats,
            },
            "timed": {
                "raw_s": t_raw,
                "append_s": t_append,
                "again_s": t_again,
                "copy_s": t_copy,
            },
        }
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
