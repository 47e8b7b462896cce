"""``python -m adjudicator``: serve with settings from ``ONESTOP_ADJUDICATOR_*``."""

from __future__ import annotations

import asyncio

from adjudicator.server import serve
from adjudicator.settings import AdjudicatorSettings
from onestop.logs import configure


def main() -> None:
    """Run until SIGTERM or SIGINT."""
    settings = AdjudicatorSettings()  # values come from the environment
    configure(settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
