"""``python -m gateway``: serve HTTP with settings from ``ONESTOP_GATEWAY_*``."""

from __future__ import annotations

from gateway.app import create_app
from gateway.server import serve
from gateway.settings import GatewaySettings
from onestop.logs import configure


def main() -> None:
    """Run until SIGTERM or SIGINT (in-flight requests are finished first)."""
    settings = GatewaySettings()  # values come from the environment
    configure(settings.log_level)
    # Several workers share one listening socket; each builds its own app in its process.
    serve(
        settings,
        "gateway.app:app_from_environment" if settings.workers > 1 else create_app(settings),
    )


if __name__ == "__main__":
    main()
