"""Structured logs: one JSON object a line, with the event's fields.

Personal data never reaches a log line: callers pass ids and figures, never id numbers or
names, and :class:`JsonFormatter` refuses to print fields named like them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_PERSONAL = {"id_number", "name", "id_numbers", "names"}


class JsonFormatter(logging.Formatter):
    """Format a record as JSON with its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            entry[key] = "[withheld]" if key in _PERSONAL else value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    """Send the project's logs to standard error as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("onestop")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
