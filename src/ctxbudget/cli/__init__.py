"""The ``ctxbudget`` command line: one module per command group, errors made friendly here.

The top layer: may import any folder; only ``__main__`` imports it.
"""

from __future__ import annotations

import importlib
import sys

import typer

from ctxbudget.cli._output import fail, os_error_message
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
    for module in (
        "analyze",
        "count",
        "demo",
        "models",
        "probe",
        "proxy",
        "sessions",
        "simulate",
        "spend",
        "watch",
    ):
        importlib.import_module(f"ctxbudget.cli.{module}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: our errors become one clear line on stderr and exit code 2.

    Usage mistakes are reported by the command-line parser itself (also exit code 2). The
    commands turn what they can into :class:`CtxBudgetError` where they know the file; what
    still escapes from reading input or writing output (a file system refusing, input
    nested past Python's recursion limit) is made one line here too, never a traceback.
    """
    _register()
    try:
        app(args=argv, prog_name="ctxbudget")
    except CtxBudgetError as exc:
        fail(str(exc))
    except RecursionError:
        fail(
            "the input is nested too deeply to read (JSON arrays or objects inside each "
            f"other past about {sys.getrecursionlimit()} levels); no request or agent log "
            "nests that deep: check the file is the one you meant"
        )
    except UnicodeError as exc:
        fail(f"the input is not UTF-8 text ({exc}); pass a UTF-8 JSON or JSONL file")
    except OSError as exc:
        fail(os_error_message(exc))
