"""Every figure the README and docs state, from one recorded run: run, record, render, check.

Each bench writes its figures with ``--json``: ``exact`` (deterministic: token counts,
dollars, retention, for a given source tree and ../shared/traces) and ``timed`` (timings).
``--write`` runs each bench in full and again with ``--quick``, and records both in
``bench/figures/<bench>.json`` with the commit, the date, the machine and the command;
the README's and docs' figures live between ``<!-- figures:NAME -->`` and
``<!-- /figures:NAME -->`` markers and are rendered from those records only
(``figures_render.py``), so a stated number can only come from one recorded run.

Checks: ``tests/test_figures.py`` fails when a block differs from what the records render,
or when the demo session's figures (recomputed, ~10 s) differ from the record. CI's
benchmark pass (``--quick-check``) runs every bench with ``--quick`` and fails when the
``exact`` figures differ from the recorded quick run: a change that moves a figure must
regenerate the records and the text (``python bench/figures.py --write``).

Usage::

    python bench/figures.py --write                   # every bench (not bench_store), then render
    python bench/figures.py --write --only demo     # after an edit of src/: the demo moves
    python bench/figures.py --render                  # rewrite the blocks from the records
    python bench/figures.py --check                   # the blocks equal the records' rendering
    python bench/figures.py --quick-check             # CI: quick runs equal the recorded ones
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RECORDS = BENCH / "figures"
BENCHES = (
    "demo",
    "bench_counting",
    "bench_prepare",
    "bench_telemetry",
    "bench_proxy",
    "bench_cache_economics",
    "bench_simulate",
    "bench_scoping",
)
"""The records the docs' figures come from, in the order ``--write`` runs them (timings
first, on a quiet machine). ``bench_store`` records its own figures (not here)."""
SCRIPTS = {"demo": ("bench_simulate", ["--demo-only"])}
"""Records made by another bench's script: the demo session's figures (~10 s, no traces
needed) move with any edit of the package's sources, so they are recorded apart and can be
regenerated alone (``--write --only demo``)."""
DOCS = ("README.md", "docs/savings.md")
"""Files with figure blocks."""


def record_path(bench: str) -> Path:
    return RECORDS / f"{bench}.json"


def load_records() -> dict[str, dict[str, Any]]:
    """Every recorded run, by bench name (absent ones missing)."""
    out = {}
    for bench in BENCHES:
        path = record_path(bench)
        if path.is_file():
            out[bench] = json.loads(path.read_text(encoding="utf-8"))
    return out


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def source_digest() -> str:
    """sha256 over the package's files (path and bytes): which tree a run measured, even
    with uncommitted changes."""
    digest = hashlib.sha256()
    package = ROOT / "src" / "ctxbudget"
    for path in sorted(
        p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def machine() -> dict[str, Any]:
    """Where a run happened (for the record and the docs' provenance line)."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_at_start": None if load is None else round(load, 2),
    }


def run_bench(bench: str, quick: bool) -> tuple[dict[str, Any], float, str]:
    """Run one bench in a fresh process (its output shown); its figures, seconds, command."""
    script, extra = SCRIPTS.get(bench, (bench, []))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        argv = [sys.executable, str(BENCH / f"{script}.py"), *extra]
        argv += ["--quick"] if quick else []
        command = " ".join(["python", f"bench/{script}.py", *argv[2:]])
        print(f"== {command}", flush=True)
        started = time.perf_counter()
        subprocess.run([*argv, "--json", str(out)], cwd=BENCH, check=True)
        seconds = time.perf_counter() - started
        if not out.is_file():
            raise SystemExit(f"{bench} wrote no figures (is ../shared/traces there?)")
        return json.loads(out.read_text(encoding="utf-8")), seconds, command


def write(benches: list[str]) -> None:
    """Run each bench in full and quick, record both."""
    RECORDS.mkdir(exist_ok=True)
    for bench in benches:
        where, source = machine(), source_digest()
        full, seconds, command = run_bench(bench, quick=False)
        quick, _, _ = run_bench(bench, quick=True)
        if source_digest() != source:
            print(f"warning: src/ changed while {bench} ran; run --write again", flush=True)
        record = {
            "bench": bench,
            "command": command,
            "commit": _git("rev-parse", "HEAD"),
            "dirty": bool(_git("status", "--porcelain", "--", "src", "bench", ":!bench/figures")),
            "source_sha256": source,
            "source_changed_during_run": source_digest() != source,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": where,
            "seconds": round(seconds, 1),
            "full": full,
            "quick": {"command": f"{command} --quick", "exact": quick["exact"]},
        }
        text = json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        record_path(bench).write_text(text, encoding="utf-8")
        print(f"recorded {record_path(bench)}", flush=True)


def blocks(text: str) -> dict[str, str]:
    """The body of every ``<!-- figures:NAME -->`` block in ``text``, by name."""
    from figures_render import BLOCK

    out: dict[str, str] = {}
    for match in BLOCK.finditer(text):
        name = match.group("name")
        if name in out:
            raise SystemExit(f"figure block {name!r} appears twice")
        out[name] = match.group("body")
    return out


def render_docs(records: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each doc with its blocks rendered from ``records`` (unknown blocks are an error)."""
    from figures_render import BLOCK, RENDERERS

    def fill(match: Any) -> str:
        name = match.group("name")
        if name not in RENDERERS:
            raise SystemExit(f"no renderer for figure block {name!r}")
        start, end = match.span("body")
        whole = match.group(0)
        offset = match.start()
        return whole[: start - offset] + RENDERERS[name](records) + whole[end - offset :]

    return {doc: BLOCK.sub(fill, (ROOT / doc).read_text(encoding="utf-8")) for doc in DOCS}


def check_docs(records: dict[str, dict[str, Any]]) -> list[str]:
    """What differs between the docs and the records' rendering (empty: nothing)."""
    problems = []
    for doc, wanted in render_docs(records).items():
        have = blocks((ROOT / doc).read_text(encoding="utf-8"))
        for name, body in blocks(wanted).items():
            if have.get(name) != body:
                problems.append(
                    f"{doc}: figure block {name!r} differs from bench/figures records:\n"
                    f"--- in {doc}\n{have.get(name)}\n--- rendered\n{body}"
                )
    return problems


def _diff(path: str, want: Any, have: Any) -> list[str]:
    if isinstance(want, dict) and isinstance(have, dict):
        out = []
        for key in sorted(set(want) | set(have)):
            out += _diff(f"{path}.{key}", want.get(key), have.get(key))
        return out
    return [] if want == have else [f"{path}: recorded {want!r}, now {have!r}"]


def quick_check() -> int:
    """Every bench with --quick; the deterministic figures must equal the recorded ones."""
    records = load_records()
    failed = []
    for path in sorted(BENCH.glob("bench_*.py")):
        bench = path.stem
        if bench not in BENCHES:
            subprocess.run([sys.executable, str(path), "--quick"], cwd=BENCH, check=True)
            continue
        figures, _, _ = run_bench(bench, quick=True)
        if bench not in records:
            failed.append(f"{bench}: no record in bench/figures")
            continue
        diffs = _diff(bench, records[bench]["quick"]["exact"], figures["exact"])
        failed += diffs
        print(f"-- {bench}: exact figures {'differ' if diffs else 'equal the record'}")
    for line in failed:
        print(f"FIGURE CHANGED {line}", file=sys.stderr)
    if failed:
        print(
            "deterministic figures moved: regenerate them with `python bench/figures.py --write` "
            "(and commit bench/figures/*.json with the README and docs)",
            file=sys.stderr,
        )
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="run, record, render")
    action.add_argument("--render", action="store_true", help="render the docs from records")
    action.add_argument("--check", action="store_true", help="docs equal the records' rendering")
    action.add_argument("--quick-check", action="store_true", help="quick runs equal records")
    parser.add_argument("--only", action="append", choices=BENCHES, help="with --write")
    args = parser.parse_args()
    if args.quick_check:
        return quick_check()
    if args.write:
        write(args.only or list(BENCHES))
    records = load_records()
    if args.check:
        problems = check_docs(records)
        print("\n\n".join(problems) if problems else "docs equal the recorded figures")
        return 1 if problems else 0
    for doc, text in render_docs(records).items():
        (ROOT / doc).write_text(text, encoding="utf-8")
        print(f"rendered {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
