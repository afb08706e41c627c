"""The ``ctxbudget`` command line: one module per command group, errors made friendly here.

The top layer: may import any folder; only ``__main__`` imports it.
"""

from __future__ import annotations

import importlib

import typer

from ctxbudget.cli._output import fail
from ctxbudget.errors import CtxBudgetError

__all__ = ["app", "main"]

app = typer.Typer(
    name="ctxbudget",
    help="Keep LLM agent context windows within budget: count, account, simulate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    """Import the command modules so they attach their commands to ``app``."""
    for module in ("analyze", "count", "demo", "sessions", "simulate", "spend", "watch"):
        importlib.import_module(f"ctxbudget.cli.{module}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: our errors become one clear line on stderr and exit code 2.

    Usage mistakes are reported by the command-line parser itself (also exit code 2).
    """
    _register()
    try:
        app(args=argv, prog_name="ctxbudget")
    except CtxBudgetError as exc:
        fail(str(exc))
