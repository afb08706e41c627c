"""The data model: items and their parts, exchanges, the append-only log, the view over it.

Core, lowest layer: imports only ``errors`` and ``billing`` (a log records billed usage).
"""
