"""Headless Chromium for the report tests and ``scripts/screenshot_report.py``.

Uses the system Chromium (the path in ``CTXBUDGET_CHROMIUM``, else the first of
``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable`` on ``PATH``,
else ``/usr/bin/chromium``) driven by Python Playwright, whose package bundles its driver:
no browser is ever downloaded (never run ``playwright install`` for these tests). When
either is missing, :func:`unavailable_reason` says which, and the tests skip with that
reason (fail under CI: ``_require.unavailable``).
"""

from __future__ import annotations

import base64
import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = [
    "CHROMIUM_ARGS",
    "chromium_path",
    "count_colours",
    "launch",
    "unavailable_reason",
]

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""Executable names looked up on ``PATH``, in this order."""

#: Quiet, offline, sandbox-free (containers) Chromium; launch() implies a fresh profile.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> Path:
    """Where Chromium is: ``$CTXBUDGET_CHROMIUM``, else the first of :data:`CHROMIUM_NAMES`
    on ``PATH``, else ``/usr/bin/chromium`` (which may not exist)."""
    configured = os.environ.get("CTXBUDGET_CHROMIUM")
    if configured:
        return Path(configured)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return Path(DEFAULT_CHROMIUM)


def unavailable_reason() -> str | None:
    """Why a browser cannot be launched here, or None when it can."""
    if importlib.util.find_spec("playwright") is None:
        return "Python Playwright is not installed (pip install playwright; no browser download)"
    path = chromium_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        if os.environ.get("CTXBUDGET_CHROMIUM"):
            return f"CTXBUDGET_CHROMIUM={path} is not an executable file"
        return (
            f"no Chromium: none of {', '.join(CHROMIUM_NAMES)} on PATH and nothing at {path} "
            "(apt-get install chromium, or set CTXBUDGET_CHROMIUM)"
        )
    return None


@contextmanager
def launch() -> Iterator[Browser]:
    """A headless Chromium for the duration of the ``with`` block."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path()), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


_COUNT_COLOURS_JS = """async (url) => {
  const img = new Image();
  img.src = url;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const seen = new Set();
  for (let i = 0; i < px.length; i += 4) seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
  return seen.size;
}"""


def count_colours(page: Page, png: bytes) -> int:
    """Distinct RGB colours in a PNG, decoded by the browser (no imaging library needed).

    ``page`` should be a blank page (``about:blank``): the report's own page forbids
    loading anything, data URLs included.
    """
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return int(page.evaluate(_COUNT_COLOURS_JS, url))
