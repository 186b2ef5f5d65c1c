"""Benchmarks: scripts that print a table; run on demand (make bench). tests/test_soak.py runs a
short soak with benchmarks.soak; nothing here imports the tests."""
