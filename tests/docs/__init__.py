"""The documentation's examples, run against a real ``onestop serve``."""
