"""Benchmarks behind ``onestop bench``: figures for docs/performance.md, never test asserts."""
