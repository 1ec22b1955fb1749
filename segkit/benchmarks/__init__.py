"""Benchmarks behind ``tools/benchmark.py NAME``: each module measures segkit against a baseline in one run."""
