"""``/docs`` and ``/redoc`` load nothing from another host, and show the API in a real browser.

A hospital's network reaches no CDN: the pages, every asset they load and everything the
browser fetches while rendering them come from the gateway itself. The browser half runs
Debian's headless Chromium on a network where no other host resolves, and records what the
page asked for in a net log.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import CHROMIUM_NAMES, browse, chromium, requested_by_pages
from tests.support.gateway import Gateway

PAGES = ("/docs", "/redoc")
REDOC_LOGO = "/redoc/logo-mini.svg"
"""Asked for by ReDoc's script itself (the page's path plus ``/logo-mini.svg``)."""

CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".svg": ("image/svg+xml",),
}

ABSOLUTE_URL = re.compile(r"https?://", re.IGNORECASE)
LOADED_FROM_ANOTHER_HOST = re.compile(
    # What makes a browser fetch: an element's source set from a literal, a CSS url() or
    # @import. Links (<a href>), the licences' URLs and JavaScript's URL() parsing are text,
    # not loads (hence case-sensitive, and no "url(" that is a method or part of a name).
    r"""(?:\bsrc\s*[:=]\s*|(?<![\w.$])url\(\s*|@import\s+(?:url\(\s*)?)["'`]?\s*(?:https?:)?//"""
)


class _References(HTMLParser):
    """The URLs a page loads by itself: ``<script src>``, ``<link href>``, ``<img src>``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "img": "src", "link": "href", "iframe": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    parser.close()
    return parser.urls


def _operations(schema: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {
        (path, method)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in methods
    }


async def test_the_pages_and_their_assets_name_no_other_host(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        assets: set[str] = {REDOC_LOGO}
        for page in PAGES:
            answer = await http.get(page)
            assert answer.status_code == 200, (page, answer.text)
            assert answer.headers["content-type"].startswith("text/html"), page
            # The pages are the gateway's own template: any absolute URL in them is a load
            # (a script, a stylesheet, Google Fonts, a favicon) or a mistake.
            assert not ABSOLUTE_URL.findall(answer.text), (page, answer.text)
            referenced = _references(answer.text)
            assert referenced, page
            for url in referenced:
                # A path on the gateway: no scheme, no host (not even "//host/...").
                assert url.startswith("/"), (page, url)
                assert not url.startswith("//"), (page, url)
            assets |= set(referenced)
        assert any(url.endswith("/swagger-ui-bundle.js") for url in assets), assets
        assert any(url.endswith("/swagger-ui.css") for url in assets), assets
        assert any(url.endswith("/redoc.standalone.js") for url in assets), assets

        for url in sorted(assets):
            answer = await http.get(url)
            assert answer.status_code == 200, url
            expected = CONTENT_TYPES[Path(url).suffix]
            assert answer.headers["content-type"].split(";")[0] in expected, (url, answer.headers)
            if Path(url).suffix in {".js", ".css", ".svg"}:
                loads = [
                    answer.text[max(0, hit.start() - 60) : hit.end() + 60]
                    for hit in LOADED_FROM_ANOTHER_HOST.finditer(answer.text)
                ]
                assert not loads, (url, loads)

        # What both pages then fetch; unsigned, like the pages.
        document = await http.get("/openapi.json")
        assert document.status_code == 200
        assert document.headers["content-type"] == "application/json"


async def test_a_headless_browser_shows_the_operations(gateway: Gateway, tmp_path: Path) -> None:
    binary = chromium()
    if binary is None:
        pytest.skip(f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)})")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        operations = _operations((await http.get("/openapi.json")).json())
    assert ("/v1/settlements", "post") in operations

    docs = await browse(binary, f"{gateway.base_url}/docs", tmp_path / "docs", "--dump-dom")
    # Swagger UI renders one block per operation ("opblock opblock-post", or
    # "opblock-deprecated"), its path in data-path; the tags are expanded by default.
    assert 'data-path="/v1/settlements"' in docs, docs[:2000]
    blocks = re.findall(r'class="opblock opblock-[a-z]+[ "]', docs)
    assert len(blocks) == len(operations), docs[:2000]

    redoc = await browse(binary, f"{gateway.base_url}/redoc", tmp_path / "redoc", "--dump-dom")
    # ReDoc gives every operation a section "operation/<operationId>", with its verb and path.
    sections = set(re.findall(r'data-section-id="operation/([^"]+)"', redoc))
    assert len(sections) == len(operations), (sections, redoc[:2000])
    assert ">/v1/settlements<" in redoc, redoc[:2000]

    for page in ("docs", "redoc"):
        requested = requested_by_pages(tmp_path / page / "netlog.json")
        elsewhere = [url for url in requested if not url.startswith(f"{gateway.base_url}/")]
        assert not elsewhere, (page, elsewhere)
        # The log is read right: the page's script and the document are in it.
        assert f"{gateway.base_url}/openapi.json" in requested, (page, requested)
        assert any(url.endswith(".js") for url in requested), (page, requested)

    # What a person would see, kept with the test's files (tmp_path) for a look when it fails.
    for page in ("docs", "redoc"):
        screenshot = tmp_path / f"{page}.png"
        await browse(
            binary,
            f"{gateway.base_url}/{page}",
            tmp_path / f"{page}-screenshot",
            f"--screenshot={screenshot}",
            "--window-size=1280,2000",
        )
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert screenshot.stat().st_size > 10_000, page
