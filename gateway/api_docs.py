"""The API's own documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, served offline.

FastAPI's default pages load Swagger UI and ReDoc from a public CDN, with a favicon and
Google Fonts from the internet: on a hospital's closed network they stay blank. Here the
JavaScript, CSS and favicon come from the ``fastapi-standalone-docs`` package installed with
the gateway (Swagger UI, ReDoc and FastAPI's favicon, each beside its licence), and the
pages name no other host.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
"""Where the package's ``static/`` folder is served: ``swagger/``, ``redoc/`` and
``fastapi/`` (the favicon), each with its licence."""

SWAGGER_JS = "swagger/swagger-ui-bundle.js"
SWAGGER_CSS = "swagger/swagger-ui.css"
REDOC_JS = "redoc/redoc.standalone.js"
FAVICON = "fastapi/favicon.png"
REDOC_LOGO = "redoc/logo-mini.svg"

SWAGGER_UI_PARAMETERS: dict[str, Any] = {
    # Swagger UI's default validator badge is an image from validator.swagger.io; FastAPI's
    # BaseLayout does not show it today, and a layout change must not bring the request back.
    "validatorUrl": None,
}


def assets_directory() -> Path:
    """The installed folder the asset URLs are served from.

    Raises:
        RuntimeError: The package is installed without its ``static/`` folder (the pages
            would be blank: better to refuse to start).
    """
    # A wheel installs into a real folder, which StaticFiles needs (it serves paths, not
    # importlib resources).
    directory = Path(str(resources.files("fastapi_standalone_docs"))) / "static"
    for asset in (SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON, REDOC_LOGO):
        if not (directory / asset).is_file():
            raise RuntimeError(f"fastapi-standalone-docs has no {asset} under {directory}")
    return directory


def install_api_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` from the installed assets, at ``/docs/assets``.

    ``app`` must be created with ``docs_url=None, redoc_url=None`` (FastAPI's own pages use
    the CDN). Neither page is signed: the authentication middleware signs ``/v1/`` only.

    Args:
        app: The gateway application; its ``openapi_url`` is what both pages show.
    """
    directory = assets_directory()
    app.mount(ASSETS_URL, StaticFiles(directory=directory), name="api-docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def prefix(request: Request) -> str:
        # Behind a proxy that serves the gateway under a path, the browser must ask for the
        # assets and the document under that path too (as FastAPI's own pages do).
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{ASSETS_URL}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
            # The gateway signs requests with Ed25519 headers; there is no OAuth2 to redirect.
            oauth2_redirect_url=None,
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **SWAGGER_UI_PARAMETERS},
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/{REDOC_JS}",
            redoc_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
            # The default links Google Fonts; ReDoc falls back to the browser's own fonts.
            with_google_fonts=False,
        )

    @app.get(f"{REDOC_URL}/logo-mini.svg", include_in_schema=False)
    async def redoc_logo() -> FileResponse:
        # The package's ReDoc asks for its "API docs by Redocly" logo at the page's own path
        # plus /logo-mini.svg (upstream asks cdn.redoc.ly); answered here rather than a 404.
        return FileResponse(directory / REDOC_LOGO, media_type="image/svg+xml")
