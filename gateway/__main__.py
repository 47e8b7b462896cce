"""``python -m gateway``: serve HTTP with settings from ``ONESTOP_GATEWAY_*``."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from onestop.logs import configure


def main() -> None:
    """Run until SIGTERM or SIGINT (uvicorn finishes requests in flight first)."""
    settings = GatewaySettings()  # values come from the environment
    configure(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=30,
        proxy_headers=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
