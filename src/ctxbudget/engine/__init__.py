"""The manager's machinery: intake, request preparation, compaction session, health, resume.

May import every core folder, ``telemetry`` and ``store``; never the manager or a feature.
"""
