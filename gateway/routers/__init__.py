"""The HTTP API, one router per feature.

Settlements, members, reconciliation, the agency's administration, and the public face
(health, receipt keys).
"""

from gateway.routers import admin, members, public, reconciliation, settlements

FEATURES = (public, settlements, members, reconciliation, admin)
"""Every feature's module; each has a ``router``, all of them served by the app."""
