"""Reports for people: the self-contained offline HTML page of ``analyze`` and ``simulate``.

Below the CLI: may import ``analyze``, ``simulate`` and everything under them.
"""

from ctxbudget.report.html import render_html, write_html

__all__ = ["render_html", "write_html"]
