"""Benchmarks: ``make bench``. Each part is bounded and prints one table."""
