"""Freeze the repository the demo agent works in: ctxbudget's sources at one git revision.

The demo session scripts an agent reading and fixing ctxbudget's own code. Reading the
installed package made every edit of ``src/`` move the demo's figures; the frozen copy
(``src/ctxbudget/demo/data/sources.json.xz``, package-relative path → text, the demo's
own modules left out) changes only when this script is run again, so the demo's figures
move only when ctxbudget's behaviour does.

Usage: ``python scripts/freeze_demo_sources.py REVISION`` (then regenerate the figures:
``python bench/figures.py --write --only demo``).
"""

from __future__ import annotations

import json
import lzma
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/ctxbudget/demo/data/sources.json.xz"
PACKAGE = "src/ctxbudget/"


def sources(revision: str) -> dict[str, str]:
    """Every ``.py`` file of the package at ``revision`` but the demo's own modules."""
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", revision, PACKAGE],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    out: dict[str, str] = {}
    for name in sorted(names):
        path = name.removeprefix(PACKAGE)
        if not name.endswith(".py") or path.startswith("demo/"):
            continue
        out[path] = subprocess.run(
            ["git", "show", f"{revision}:{name}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return out


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/freeze_demo_sources.py REVISION")
    revision = subprocess.run(
        ["git", "rev-parse", sys.argv[1]], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    files = sources(revision)
    payload = {"revision": revision, "files": files}
    data = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(lzma.compress(data, preset=9))
    print(f"wrote {OUT.relative_to(ROOT)}: {len(files)} files at {revision[:12]}")


if __name__ == "__main__":
    main()
