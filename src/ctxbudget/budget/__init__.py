"""How a window is shared: model registry, budget policies and presets, ledger, accountant.

Core: may import ``session``, ``tokens``, ``billing`` and ``errors``.
"""
