"""Reports for people: the self-contained offline HTML page of ``analyze`` and ``simulate``."""

from ctxbudget.report.html import render_html, write_html

__all__ = ["render_html", "write_html"]
