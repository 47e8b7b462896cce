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
    # Several workers share one listening socket; each builds its own app in its process.
    application: object = (
        "gateway.app:app_from_environment" if settings.workers > 1 else create_app(settings)
    )
    uvicorn.run(
        application,  # type: ignore[arg-type]
        factory=settings.workers > 1,
        workers=settings.workers,
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
