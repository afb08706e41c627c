"""The public surface of ctxbudget.tokens stays sorted, importable and typed."""

from __future__ import annotations

from ctxbudget import tokens


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_resolves() -> None:
    assert tokens.__all__ == sorted(tokens.__all__, key=_isort_key)
    assert len(set(tokens.__all__)) == len(tokens.__all__)
    for name in tokens.__all__:
        assert getattr(tokens, name) is not None, name


def test_token_count_is_still_exported() -> None:
    from ctxbudget.tokens.count import TokenCount

    assert tokens.TokenCount is TokenCount
