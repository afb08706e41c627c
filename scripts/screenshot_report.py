"""PNG screenshots of a ctxbudget HTML report: the whole page and each chart.

    python scripts/screenshot_report.py report.html OUTDIR [--session NAME] [--width 1280]

Writes ``OUTDIR/page.png`` and ``OUTDIR/<figure id>.png`` (``chart-composition.png``...)
using the headless Chromium of ``tests/_browser.py`` (system Chromium + Python
Playwright; nothing is downloaded). Exits 1 when the page reports a drawing error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _browser import launch, unavailable_reason


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the report HTML file")
    parser.add_argument("outdir", type=Path, help="where the PNG files go (created)")
    parser.add_argument("--session", help="chart this session (by name) instead of the default")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels")
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio (2 = retina)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if not args.report.is_file():
        print(f"error: no report at {args.report}", file=sys.stderr)
        return 2
    reason = unavailable_reason()
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    args.outdir.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with launch() as browser:
        page = browser.new_page(
            viewport={"width": args.width, "height": 900}, device_scale_factor=args.scale
        )
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(args.report.resolve().as_uri())
        page.wait_for_selector('body[data-rendered="1"]', timeout=30_000)
        if args.session is not None:
            options = page.locator("#session-picker option")
            labels = {
                options.nth(i).get_attribute("value"): options.nth(i).text_content() or ""
                for i in range(options.count())
            }
            chosen = [v for v, label in labels.items() if label.startswith(f"{args.session} (")]
            if not chosen or chosen[0] is None:
                print(f"error: no session named {args.session!r} in the report", file=sys.stderr)
                return 2
            page.select_option("#session-picker", chosen[0])
        errors = page.text_content("#report-errors") or ""
        if errors.strip():
            problems.append(errors.strip())
        written = [args.outdir / "page.png"]
        page.screenshot(path=str(written[0]), full_page=True)
        for figure in page.locator("figure[data-chart]").all():
            name = figure.get_attribute("id") or f"chart-{figure.get_attribute('data-chart')}"
            target = args.outdir / f"{name}.png"
            figure.screenshot(path=str(target))
            written.append(target)
        page.close()
    for path in written:
        print(path)
    for problem in problems:
        print(f"error: the page reported: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
