"""Benchmarks: scripts that print a table; run on demand (make bench), never in tests."""
