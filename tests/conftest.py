"""Test-wide settings."""

from __future__ import annotations

import os

from hypothesis import settings

# In CI every run starts clean: no example database, so a failure there is reproduced from
# the printed blob rather than from state left on one machine.
settings.register_profile("ci", database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

pytest_plugins = ["tests.support.redis", "tests.support.adjudicator"]
pytest_plugins += ["tests.support.gateway"]
pytest_plugins += ["tests.support.serve", "tests.support.clock"]
