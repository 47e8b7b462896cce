"""The agency console: a few server-rendered pages under ``/console`` for the agency's staff.

Today's settlements and what each fund paid, refusals by code, reconciliation per client and
day, the review queue, the mapping audit trail, and a settlement search. No build step, no
script and nothing from another host: HTML and one stylesheet from the gateway, charts drawn
as SVG on the server.

Nobody logs in with a password. The agency's own signed call (``onestop console-login``, or
``POST /v1/admin/console/sessions``) issues a one-time link; opening it starts a session kept
in Redis, whose cookie is HttpOnly and SameSite=Strict, and every form carries the session's
CSRF token. :mod:`gateway.console.sessions` keeps the codes and sessions,
:mod:`gateway.console.routes` answers the pages, :mod:`gateway.console.charts` draws.
"""

PREFIX = "/console"
"""Where the console's pages are served."""
