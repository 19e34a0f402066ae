"""Benchmarks: ``python -m bench`` (or ``make bench``) prints one table of ratios."""
