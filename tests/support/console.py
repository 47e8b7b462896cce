"""The agency console in tests: a session opened the way a person opens one, and page reading."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from html import unescape

import httpx

from tests.support.gateway import Gateway

COOKIE = "onestop_console"


async def login_link(gateway: Gateway, page: str = "") -> str:
    """A one-time console link, asked for by the agency's signed call (``?next=page``)."""
    answer = await gateway.agency.request("POST", "/v1/admin/console/sessions")
    assert answer.status_code == 201, answer.text
    link = gateway.base_url + answer.json()["login_path"]
    return f"{link}?next={page}" if page else link


@contextlib.asynccontextmanager
async def console_client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client holding a live console session, opened from a one-time link."""
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        opened = await http.get(await login_link(gateway))
        assert opened.status_code == 200, opened.text
        assert landing_of(opened.text) == "/console"
        assert COOKIE in http.cookies
        yield http


def landing_of(html: str) -> str:
    """Where an opening page sends the browser on (its meta refresh)."""
    found = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]+)">', html)
    assert found, html[:2000]
    return unescape(found.group(1))


def csrf_of(html: str) -> str:
    """The session's CSRF token, as the page's forms carry it."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def attribute_values(html: str, pattern: str) -> list[str]:
    """Every match of ``pattern``'s one group in a page, unescaped."""
    return [unescape(value) for value in re.findall(pattern, html)]
