"""One Redis user per service: who may run what on which keys.

Redis is never open to an unauthenticated connection: the ``default`` user is switched off,
and each service logs in as its own user with its own password:

- ``adjudicator``: every key, every command but the dangerous ones (no ``CONFIG``,
  ``FLUSHALL``, ``DEBUG``, ``KEYS``...), plus what a cluster client needs to find the slots.
- ``gateway``: only the keys the gateway keeps (nonces, unknown-member counters, the
  reference-data versions) and the channel announcing new versions. Members, settlements and
  the journal are out of its reach: a compromised gateway can ask the adjudicator, signed
  and audited, and nothing more.
- ``admin``: everything, for the operator (migration, inspection, backups, forming a cluster).
- ``node``: what Redis servers need of each other and their probes: a replica logs in to its
  primary with it (``masteruser``/``masterauth``) to replicate; it reads no key.

``onestop keys redis --dir DIR`` writes a password file per user (mode 0600) and the ACL file
Redis loads (``aclfile``), which holds only SHA-256 hashes of the passwords. The ACL file is
written again from the password files whenever it is asked for, so the rules follow the code.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from pathlib import Path

from onestop.redis_client import RedisLogin
from onestop.signing import write_secret_file
from onestop.storage.layout import GATEWAY_KEY_PATTERNS, VERSIONS_CHANNEL
from onestop.storage.migrate import OLD_PREFIX

ADMIN = "admin"
ADJUDICATOR = "adjudicator"
GATEWAY = "gateway"
NODE = "node"
USERS = (ADMIN, ADJUDICATOR, GATEWAY, NODE)
ACL_FILE = "users.acl"

_CLUSTER_DISCOVERY = "+info +cluster|slots +cluster|nodes +cluster|info +cluster|myid"
"""What a client needs beyond ordinary commands: ``INFO cluster`` tells a server from a
cluster node, and the cluster client reads the slot map (all @admin/@dangerous in Redis 6)."""

RULES: Mapping[str, str] = {
    ADMIN: "~* &* +@all",
    ADJUDICATOR: f"~* resetchannels &{VERSIONS_CHANNEL} +@all -@dangerous {_CLUSTER_DISCOVERY}",
    GATEWAY: " ".join(
        (
            *(f"~{pattern}" for pattern in GATEWAY_KEY_PATTERNS),
            # Read at start, to refuse data of the older layout (``require_current_layout``).
            f"~{OLD_PREFIX}:versions",
            f"resetchannels &{VERSIONS_CHANNEL} +@all -@dangerous",
            _CLUSTER_DISCOVERY,
        )
    ),
    NODE: "resetkeys resetchannels -@all +ping +psync +sync +replconf +info +cluster|info",
}
"""Each user's ACL rules (keys, channels, commands); the password is added per deployment."""


def acl_text(passwords: Mapping[str, str]) -> str:
    """The ACL file for these passwords: the default user off, each user its rules.

    Raises:
        KeyError: a user of :data:`USERS` has no password.
    """
    lines = ["user default off nopass resetkeys -@all"]
    for user in USERS:
        digest = hashlib.sha256(passwords[user].encode("utf-8")).hexdigest()
        lines.append(f"user {user} on #{digest} {RULES[user]}")
    return "\n".join(lines) + "\n"


def password_file(directory: Path, user: str) -> Path:
    """Where ``user``'s password lives in a directory :func:`make_redis_users` wrote."""
    return directory / f"{user}.password"


def make_redis_users(directory: Path) -> Path:
    """Make the users' passwords (once) and write the ACL file; the ACL file's path.

    Args:
        directory: made mode 0700 if missing. Existing password files are kept; missing
            ones are made (32 random bytes, URL-safe), mode 0600.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    passwords: dict[str, str] = {}
    for user in USERS:
        path = password_file(directory, user)
        if not path.exists():
            write_secret_file(path, (secrets.token_urlsafe(32) + "\n").encode())
        passwords[user] = RedisLogin.from_file(user, path).password
    acl = directory / ACL_FILE
    write_secret_file(acl, acl_text(passwords).encode(), replace=True)
    return acl
