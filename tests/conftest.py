"""Shared test setup.

Its presence also puts ``tests/`` on ``sys.path`` (pytest's default import mode), so test modules
in subfolders can ``from live import serve`` like those at the top level.
"""
