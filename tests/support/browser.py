"""Debian's headless Chromium, run once per page, on a network where no other host resolves.

Each run gets a fresh profile and writes a net log (``workdir/netlog.json``) of what the page
asked for; :func:`requested_by_pages` reads it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "chromium-headless-shell")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # as root, and in containers without user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The hospital's network: no other host resolves, and no proxy from the environment. The
    # browser's own calls (update checks, Google accounts) then never leave the machine either.
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=10000",
)
BROWSER_TIMEOUT_SECONDS = 90.0


def chromium() -> str | None:
    """Debian's Chromium on PATH, or ``None``."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


async def browse(binary: str, url: str, workdir: Path, *extra: str) -> str:
    """Run headless Chromium once on ``url``, with a fresh profile; its standard output.

    The event loop keeps serving the gateway meanwhile (the browser's requests are answered
    by this very loop), so the browser runs as an asyncio subprocess.
    """
    workdir.mkdir(parents=True)
    process = await asyncio.create_subprocess_exec(
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={workdir / 'profile'}",
        f"--log-net-log={workdir / 'netlog.json'}",
        *extra,
        url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), BROWSER_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{binary} did not finish {url} in {BROWSER_TIMEOUT_SECONDS:g} s")
    assert process.returncode == 0, (url, stderr.decode(errors="replace")[-2000:])
    return stdout.decode()


def requested_by_pages(netlog: Path) -> list[str]:
    """Every URL a page asked for, from Chromium's net log.

    The browser's own requests (the navigation itself, update checks) have no initiating
    origin; the page's scripts, stylesheets, images, frames and fetches have the page's.
    """
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and event.get("params", {}).get("url")
        and event["params"].get("initiator") not in (None, "not an origin")
    ]


def artifacts(name: str) -> Path:
    """Where a test keeps what a person may want to look at (screenshots): kept, not committed.

    ``$ONESTOP_TEST_ARTIFACTS/<name>``, or ``.artifacts/<name>`` in the repository.
    """
    root = os.environ.get("ONESTOP_TEST_ARTIFACTS") or Path(__file__).parents[2] / ".artifacts"
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
