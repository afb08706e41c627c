"""The public surface stays small, sorted and importable."""

import importlib
import pkgutil

import ctxbudget


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in ctxbudget.__all__ if n != "__version__"]
    assert names == sorted(names)
    assert len(set(ctxbudget.__all__)) == len(ctxbudget.__all__)


def test_every_public_name_resolves() -> None:
    for name in ctxbudget.__all__:
        assert getattr(ctxbudget, name) is not None, name


def test_every_module_imports() -> None:
    for module in pkgutil.walk_packages(ctxbudget.__path__, "ctxbudget."):
        importlib.import_module(module.name)


def test_errors_share_one_root() -> None:
    from ctxbudget import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.CtxBudgetError), name
