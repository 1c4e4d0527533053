"""Benchmarks: run as modules (``python -m bench.handshake``); never collected by pytest."""
