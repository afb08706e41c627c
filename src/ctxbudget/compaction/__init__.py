"""What leaves the view: planner, cost planner, strategies (one per file), summarizers, briefs.

Core: may import ``session``, ``tokens``, ``budget``, ``billing`` and ``errors``.
"""
