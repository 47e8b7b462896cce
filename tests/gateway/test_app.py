"""The application's shape: every agency route is the agency's, refusals are problem+json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from gateway.app import create_app
from gateway.console import PREFIX as CONSOLE_PREFIX
from gateway.console import routes as console
from gateway.dependencies import AGENCY_DEPENDENCIES, CallerDep
from gateway.middleware import UNSIGNED_PATHS, is_signed
from gateway.routers import FEATURES
from gateway.settings import GatewaySettings


def _routes() -> list[APIRoute]:
    return [
        route
        for feature in FEATURES
        for route in feature.router.routes
        if isinstance(route, APIRoute)
    ]


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for child in dependant.dependencies:
        found |= _calls(child)
    return found


def test_every_admin_route_depends_on_the_agency() -> None:
    admin_routes = [route for route in _routes() if route.path.startswith("/v1/admin")]
    assert len(admin_routes) >= 9
    for route in admin_routes:
        assert _calls(route.dependant) & set(AGENCY_DEPENDENCIES), (route.path, route.methods)


CONSOLE_OPEN_PAGES = {"/console/login", "/console/login/{code}", "/console/static/console.css"}
"""The console's pages anyone may open: how to log in, the one-time link, the stylesheet."""


def test_every_console_page_but_the_login_needs_a_session() -> None:
    pages = [route for route in _routes() if route.path.startswith(CONSOLE_PREFIX)]
    assert len(pages) >= 9
    for route in pages:
        needs_session = console.console_staff in _calls(route.dependant)
        assert needs_session is (route.path not in CONSOLE_OPEN_PAGES), route.path
        assert not route.include_in_schema, route.path


def test_every_console_form_checks_its_token_and_origin() -> None:
    posted = [
        route
        for route in _routes()
        if route.path.startswith(CONSOLE_PREFIX) and set(route.methods or ()) - {"GET", "HEAD"}
    ]
    assert len(posted) >= 2
    for route in posted:
        assert console.console_form in _calls(route.dependant), route.path


def test_every_route_but_health_metrics_and_the_receipt_keys_is_signed() -> None:
    caller = CallerDep.__metadata__[0].dependency  # type: ignore[attr-defined]
    for route in _routes():
        if route.path.startswith(CONSOLE_PREFIX):
            continue  # a session's cookie instead (the test above)
        # /metrics answers only the networks allowed (tests/gateway/test_metrics.py).
        if route.path in ("/health", "/metrics") or route.path in UNSIGNED_PATHS:
            assert caller not in _calls(route.dependant), route.path
            continue
        calls = _calls(route.dependant)
        assert caller in calls or AGENCY_DEPENDENCIES[1] in calls, route.path


def test_refusals_are_documented_as_problem_json_only(tmp_path: Path) -> None:
    app = create_app(
        GatewaySettings(
            adjudicator="127.0.0.1:1", redis_url="redis://127.0.0.1:1", key_dir=tmp_path
        )
    )
    schema = app.openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert set(response["content"]) == {"application/problem+json"}, (
                        path,
                        method,
                        status,
                    )
                    assert response["x-onestop-codes"], (path, method, status)
            if is_signed(path):
                assert {"401", "500", "503"} <= statuses, (path, method)
            else:
                assert "401" not in statuses, (path, method)
