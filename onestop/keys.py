"""Every Redis key the project uses, in one place, under one versioned prefix.

Members are spread over :data:`GROUPS` slot groups. All keys of one member (record, stays,
settlements, visit index) and the journal of its group carry the group's hash tag, so every
multi-key script touches a single Redis Cluster slot. Reference data (policies, catalog,
clients, mappings) and the blind index live under plain keys, read and written one key at a
time.
"""

from __future__ import annotations

import os
import zlib

PREFIX = "os1"
"""Bump when the key layout changes: old and new data then never mix."""

GROUPS = 1024
"""Slot groups for member data; each has its own journal stream."""


def member_group(member_id: str) -> int:
    """The slot group of a member (stable across processes and versions of Python)."""
    return zlib.crc32(member_id.encode("utf-8")) % GROUPS


def _tag(group: int) -> str:
    return f"{PREFIX}:{{g{group:03x}}}"


def member(member_id: str) -> str:
    """Hash: the member's profile, encrypted identity, balance, version and year-to-date."""
    return f"{_tag(member_group(member_id))}:m:{member_id}"


def stays(member_id: str) -> str:
    """Hash: settlement id -> ``first|last`` of each active inpatient stay of the member."""
    return f"{_tag(member_group(member_id))}:stays:{member_id}"


def visit(member_id: str, client_id: str, visit_id: str) -> str:
    """Hash: the settlement of one (client, visit), its request fingerprint and status."""
    return f"{_tag(member_group(member_id))}:v:{client_id}:{visit_id}"


def settlement(group: int, settlement_id: str) -> str:
    """Hash: one settlement record (result, increments, status)."""
    return f"{_tag(group)}:s:{settlement_id}"


def journal(group: int) -> str:
    """Stream: every settlement and reversal of the group's members, in commit order."""
    return f"{_tag(group)}:journal"


def day_totals(group: int, day: str, client_id: str) -> str:
    """Hash: one client's settlements and reversals of one day (``YYYYMMDD``) in the group.

    Written by the same scripts that write the journal, so it always agrees with it; summing
    the hash over all groups gives the client's day without reading the journal.
    """
    return f"{_tag(group)}:day:{day}:{client_id}"


def new_settlement_id(member_id: str, now_ms: int) -> str:
    """A settlement id that names its slot group, sortable by time within the group."""
    return f"S{member_group(member_id):03x}{now_ms:012x}{os.urandom(8).hex()}"


def group_of_settlement(settlement_id: str) -> int | None:
    """The slot group named in a settlement id, or ``None`` if it is not one of ours."""
    if len(settlement_id) != 32 or not settlement_id.startswith("S"):
        return None
    try:
        group = int(settlement_id[1:4], 16)
        int(settlement_id[4:], 16)
    except ValueError:
        return None
    return group if group < GROUPS else None


def identity_index(blind_index: str) -> str:
    """String: member id of the active enrolment with this id number (by HMAC, never clear)."""
    return f"{PREFIX}:idx:{blind_index}"


VERSIONS = f"{PREFIX}:versions"
"""Hash: kind (``policies``, ``catalog``, ``clients``, ``mapping:<client>``) -> version."""

POLICIES = f"{PREFIX}:policies"
"""Hash: ``region:scheme:year`` -> policy JSON document with its version."""

CATALOG = f"{PREFIX}:catalog"
"""String: the current catalog as the contract's CSV."""

CLIENTS = f"{PREFIX}:clients"
"""Hash: client id -> client JSON (kind, name, level, region, public key)."""


def mapping(client_id: str) -> str:
    """String: the client's current mapping as the contract's CSV."""
    return f"{PREFIX}:mapping:{client_id}"


def mapping_audit(client_id: str) -> str:
    """Stream: every change to the client's mapping (who, when, old, new)."""
    return f"{PREFIX}:mapaudit:{client_id}"


def nonce(client_id: str, value: str) -> str:
    """String with a time to live: a request nonce already seen."""
    return f"{PREFIX}:nonce:{client_id}:{value}"
