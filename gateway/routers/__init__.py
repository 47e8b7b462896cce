"""The HTTP API, one router per feature.

Settlements, members, reconciliation, the agency's administration, review queue and view of
the day, the public face (health, receipt keys), the national interface (``gateway.national``)
and the agency console (``gateway.console``).
"""

from gateway.console import api as console_api
from gateway.console import routes as console
from gateway.national import router as national
from gateway.routers import activity, admin, members, public, reconciliation, reviews, settlements

FEATURES = (
    public,
    settlements,
    members,
    reconciliation,
    admin,
    reviews,
    activity,
    national,
    console_api,
    console,
)
"""Every feature's module; each has a ``router``, all of them served by the app."""
