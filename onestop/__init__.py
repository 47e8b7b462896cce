"""onestop: one-stop settlement of Chinese public medical insurance at the point of service."""

__version__ = "0.1.0"
