"""The HTTP API, one router per feature.

Settlements, members, reconciliation, the agency's administration and review queue, the
public face (health,
receipt keys), and the national interface (``gateway.national``).
"""

from gateway.national import router as national
from gateway.routers import admin, members, public, reconciliation, reviews, settlements

FEATURES = (public, settlements, members, reconciliation, admin, reviews, national)
"""Every feature's module; each has a ``router``, all of them served by the app."""
