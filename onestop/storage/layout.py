"""What onestop keeps in Redis: every key, hash field, journal field and day-total field.

This module is the one owner of the stored layout. What is stored outlives the code that
wrote it, so:

- every value is stored **by name** (a hash field, a stream field, a JSON object key), never
  by position in a list whose order a later version could change;
- the layout has a version, :data:`LAYOUT_VERSION`, carried in every key's prefix
  (:data:`PREFIX`): data of two layouts never mix;
- ``tests/onestop/storage/test_layout.py`` pins the layout against a golden file: changing a
  name below fails it, on purpose. A change then needs a new layout version, a migration in
  :mod:`onestop.storage.migrate` that converts the previous layout (tested on data the
  previous version wrote), and an entry in ``CHANGELOG.md``.

Members are spread over :data:`GROUPS` slot groups. Every key of one member (record, stays,
visit index, settlements) and the journal and day totals of its group carry the group's hash
tag, so every multi-key script touches one Redis Cluster slot. Reference data (policies,
catalog, clients, mappings) and the blind index live under plain keys, read and written one
key at a time.

Layout history: ``os1`` (round 1) stored the member's profile, a settlement's increments and
amounts, and the day totals by position; ``os2`` stores all of them by name. Within ``os2``,
fields are only ever added, and data written before a field existed reads without it:
settlements and journal entries gained the visit's type, dates and hospital level, day totals
their split by visit type and scheme (``by:`` fields), each day its reconciliations
(:func:`reconciliations_key`), and the policies hash its mid-year versions
(:func:`policy_field` with a fourth element), all in 0.2.0. Also in 0.2.0 a settlement's
record moved to a compressed field (:attr:`SettlementField.PACKED`); settlements written
before keep theirs under :attr:`SettlementField.RECORD`, read as before. A move, not an
addition: code from before it cannot read settlements committed after it (CHANGELOG).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import fields
from datetime import date
from enum import StrEnum

from onestop.domain.reconciliation import AMOUNT_FIELDS, EntryKind
from onestop.domain.settlement import SettlementStatus
from onestop.domain.state import StateDelta

LAYOUT_VERSION = 2
"""The version of this layout; the previous one is converted by ``onestop migrate``."""

PREFIX = f"os{LAYOUT_VERSION}"
"""Every key starts with it."""

GROUPS = 1024
"""Slot groups for member data; each has its own journal stream and day totals."""


# -- keys ------------------------------------------------------------------------------------


def member_group(member_id: str) -> int:
    """The slot group of a member (stable across processes and versions of Python)."""
    return zlib.crc32(member_id.encode("utf-8")) % GROUPS


def _tag(group: int) -> str:
    return f"{PREFIX}:{{g{group:03x}}}"


def member_key(member_id: str) -> str:
    """Hash (:class:`MemberField`, :func:`year_field`): profile, identity, balance, figures."""
    return f"{_tag(member_group(member_id))}:m:{member_id}"


MEMBER_KEY_PATTERN = f"{PREFIX}:{{g*}}:m:*"
"""Every member hash (for a SCAN)."""


def member_id_of_key(key: str) -> str:
    """The member id a :func:`member_key` names."""
    return key.split("}:m:", 1)[1]


def stays_key(member_id: str) -> str:
    """Hash: settlement id -> its active inpatient stay, ``YYYY-MM-DD/YYYY-MM-DD``."""
    return f"{_tag(member_group(member_id))}:stays:{member_id}"


def visit_key(member_id: str, client_id: str, visit_id: str) -> str:
    """Hash (:class:`VisitField`, :func:`request_field`): the settlement of one (client, visit).

    In the member's slot group, so that the commit script writes it with the member's state.
    """
    return f"{_tag(member_group(member_id))}:v:{client_id}:{visit_id}"


def visit_group(client_id: str, visit_id: str) -> int:
    """The slot group of a (client, visit): the same whichever member a request names."""
    return zlib.crc32(f"{client_id}\x1f{visit_id}".encode()) % GROUPS


def visit_claim_key(client_id: str, visit_id: str) -> str:
    """Hash (:class:`VisitClaimField`): which member a (client, visit) belongs to.

    A visit id names one visit of one client (domain section 16), whichever member a request
    names; the member's own visit index lives in that member's slot group, so this key, in
    the visit's own group, is where requests naming different members meet (docs/adr/0008).
    """
    return f"{_tag(visit_group(client_id, visit_id))}:vc:{client_id}:{visit_id}"


def settlement_key(group: int, settlement_id: str) -> str:
    """Hash (:class:`SettlementField`): one settlement, its record and what it added."""
    return f"{_tag(group)}:s:{settlement_id}"


def journal_key(group: int) -> str:
    """Stream (:class:`JournalField`, and the amounts by name): the group's journal.

    Every settlement and reversal of the group's members, in commit order.
    """
    return f"{_tag(group)}:journal"


def day_totals_key(group: int, day: str, client_id: str) -> str:
    """Hash (:func:`day_total_fields`): one client's day (``YYYYMMDD``) in the group.

    Written by the same scripts that write the journal, so it always agrees with it; summing
    the hash over all groups gives the client's day without reading the journal.
    """
    return f"{_tag(group)}:day:{day}:{client_id}"


def day_settlements_key(group: int, day: str, client_id: str) -> str:
    """List: ids of the settlements one client committed on a day (``YYYYMMDD``) in the group.

    Appended by the commit script beside the journal entry (a later reversal leaves the id:
    the settlement was committed that day). Reconciliation by detail reads these lists, so its
    cost follows the caller's own volume, never the other clients' of the day.
    """
    return f"{_tag(group)}:dayids:{day}:{client_id}"


def reconciliations_key(day: str) -> str:
    """Stream (:class:`ReconciliationField`): every reconciliation of a day (``YYYYMMDD``).

    One entry per answer given to a client, in the order answered; the agency reads the day's
    stream to see who balanced (``GET /v1/admin/reconciliations``).
    """
    return f"{PREFIX}:recon:{day}"


def day_text(day: date) -> str:
    """A settlement day (Asia/Shanghai) as day keys name it: ``YYYYMMDD``."""
    return day.strftime("%Y%m%d")


def day_reversals_key(group: int, day: str, client_id: str) -> str:
    """Sorted set: ids of the settlements one client reversed on a day, scored by the time.

    The score is the reversal's commit time (epoch ms); written by the reversal script beside
    its journal entry. With :func:`day_settlements_key` it lists a client's day in commit
    order without reading the journal (``GET /v1/settlements?date=``).
    """
    return f"{_tag(group)}:dayrev:{day}:{client_id}"


def national_message_key(client_id: str, msgid: str) -> str:
    """String (JSON object, :class:`NationalMessageField`): one national message of a client.

    Written before the message is processed (``pending``) and overwritten with its answer, so
    that the same ``msgid`` again is answered with the original answer and 2601 finds what a
    message did; also written by a 2601 of a message never received (``revoked``), so that it
    is refused if it arrives later (docs/adr/0009).
    """
    return f"{PREFIX}:nat:msg:{client_id}:{msgid}"


def national_visit_key(member_id: str, client_id: str, mdtrt_id: str) -> str:
    """Hash (:class:`NationalVisitField`): a visit the national interface registered.

    In the member's slot group: a visit belongs to its member (``psn_no``).
    """
    return f"{_tag(member_group(member_id))}:nv:{client_id}:{mdtrt_id}"


def national_lines_key(member_id: str, client_id: str, mdtrt_id: str) -> str:
    """Hash: ``feedetl_sn`` -> a fee line uploaded for a visit and not yet settled.

    Each value is a JSON object by name (:class:`NationalLineField`).
    """
    return f"{_tag(member_group(member_id))}:nl:{client_id}:{mdtrt_id}"


def replication_barrier_key(key: str) -> str:
    """String with a time to live, in ``key``'s slot: written just before ``WAIT``.

    ``WAIT`` counts the writes of its own connection; this small write on that connection makes
    it cover every earlier write of the primary (see ``onestop.redis_client``). Added in 0.2.0.
    """
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    tag = key[start + 1 : end] if start >= 0 and end > start + 1 else key
    if "{" in tag or "}" in tag:
        raise ValueError(f"cannot place a barrier beside {key!r}")
    return f"{PREFIX}:wait:{{{tag}}}"


def restored_key(group: int) -> str:
    """Sorted set: keys of the group put back from the archive, scored by when (epoch ms).

    A reversal of an archived settlement, or a request for an archived visit, puts the
    settlement's hash, the visit indexes and the visit's claim back into Redis first; the
    archive job moves them back to the archive once they have been quiet a while (0.2.0).
    """
    return f"{_tag(group)}:restored"


def history_key(member_id: str) -> str:
    """Hash: settlement id -> what it left for later controls (:class:`HistoryField`, JSON).

    The member's recent visits the controls across visits read (domain section 18), written
    by the commit script and removed by the reversal script with the settlement that added
    them; bounded by :data:`onestop.domain.controls.HISTORY_DAYS` and ``HISTORY_ENTRIES``
    (older entries are dropped by the next commit). Added in 0.2.0; absent: no history.
    """
    return f"{_tag(member_group(member_id))}:hist:{member_id}"


def review_key(group: int, settlement_id: str) -> str:
    """Hash (:class:`ReviewField`): a flagged settlement and the agency's decision on it.

    Written by the commit script with the settlement it flags (added in 0.2.0).
    """
    return f"{_tag(group)}:review:{settlement_id}"


def day_reviews_key(group: int, day: str) -> str:
    """Sorted set: ids of the settlements flagged on a day (``YYYYMMDD``), scored by the time.

    The review queue of a day is the union over the groups (added in 0.2.0).
    """
    return f"{_tag(group)}:dayreviews:{day}"


def day_recoveries_key(group: int, day: str) -> str:
    """Sorted set: ids of the flagged settlements a recovery was decided for on a day.

    Scored by the decision's time; the export and reconciliation of the decision's day read
    them (added in 0.2.0).
    """
    return f"{_tag(group)}:dayrecov:{day}"


def group_of_key(key: str) -> int | None:
    """The slot group a member-data key names, ``None`` for a key of no group."""
    prefix = f"{PREFIX}:{{g"
    if not key.startswith(prefix) or key[len(prefix) + 3 : len(prefix) + 4] != "}":
        return None
    try:
        return int(key[len(prefix) : len(prefix) + 3], 16)
    except ValueError:
        return None


def identity_index_key(blind_index: str) -> str:
    """String: member id of the active enrolment with this id number (by HMAC, never clear)."""
    return f"{PREFIX}:idx:{blind_index}"


VERSIONS_KEY = f"{PREFIX}:versions"
"""Hash: kind of reference data (:func:`mapping_kind` and the ``*_KIND`` names) -> version."""

VERSIONS_CHANNEL = f"{PREFIX}:versions:changed"
"""Pub/sub channel: a write of reference data publishes its kind (added in 0.2.0)."""

POLICIES_KEY = f"{PREFIX}:policies"
"""Hash: :func:`policy_field` -> ``{"version", "document"}`` (JSON; the contract's policy)."""

CATALOG_KEY = f"{PREFIX}:catalog"
"""String: the current catalog as the contract's CSV (named columns)."""

MIGRATIONS_KEY = f"{PREFIX}:migrations"
"""Set: the steps ``onestop migrate`` completed within this layout (a step that adds an index
to data of this layout runs once, e.g. ``visit-claims``)."""

CLIENTS_KEY = f"{PREFIX}:clients"
"""Hash: client id -> the client as JSON (kind, name, level, region, public key)."""


def mapping_key(client_id: str) -> str:
    """String: the client's current mapping as the contract's CSV (named columns)."""
    return f"{PREFIX}:mapping:{client_id}"


def mapping_audit_key(client_id: str) -> str:
    """Stream (:class:`AuditField`): every change to the client's mapping."""
    return f"{PREFIX}:mapaudit:{client_id}"


def lookups_key(day: str, client_id: str) -> str:
    """Stream (:class:`LookupField`): a client's member lookups of one day (``YYYYMMDD``).

    Eligibility checks by member id and lookups by id number, kept for the agency's audit.
    """
    return f"{PREFIX}:lookups:{day}:{client_id}"


def unknown_members_key(client_id: str, window: int) -> str:
    """String counter with a time to live: a client's unknown member ids in one window.

    ``window`` is the window's number since the epoch.
    """
    return f"{PREFIX}:unknownmembers:{client_id}:{window}"


def nonce_key(client_id: str, nonce: str) -> str:
    """String with a time to live: a request nonce already seen."""
    return f"{PREFIX}:nonce:{client_id}:{nonce}"


def refusals_key(day: str) -> str:
    """Hash with a time to live: refusal code -> answers of it on one day (``YYYYMMDD``).

    Every gateway process adds to it (the console's view of the day, Asia/Shanghai).
    """
    return f"{PREFIX}:refusals:{day}"


REFUSALS_TTL_SECONDS = 40 * 86_400
"""How long a day's refusal counts are kept: the console shows a month back."""


def console_login_key(code_digest: str) -> str:
    """String with a time to live: a one-time console login code, by its SHA-256 (hex).

    Holds the agency client id it was issued to and its key's fingerprint; taken (GETDEL) by
    its first use.
    """
    return f"{PREFIX}:console:login:{code_digest}"


def console_session_key(token_digest: str) -> str:
    """String with a time to live (the idle limit): a console session, by its token's SHA-256.

    A JSON object (:class:`ConsoleSessionField`); the cookie's token itself is never stored.
    """
    return f"{PREFIX}:console:session:{token_digest}"


class ConsoleSessionField(StrEnum):
    """Names in a console session's JSON object."""

    CLIENT_ID = "client_id"
    """The agency client whose signed call issued the login code."""
    KEY = "key"
    """A fingerprint of that client's registered key then: a new key ends the session."""
    CSRF = "csrf"
    """The token every form of the session must carry."""
    CREATED_MS = "created_ms"
    """When the session began (epoch ms): it ends after its absolute limit whatever its use."""


GATEWAY_KEY_PATTERNS = (
    f"{PREFIX}:nonce:*",
    f"{PREFIX}:refusals:*",
    f"{PREFIX}:console:*",
    f"{PREFIX}:unknownmembers:*",
    VERSIONS_KEY,
    f"{PREFIX}:nat:*",
    f"{PREFIX}:{{g*}}:nv:*",
    f"{PREFIX}:{{g*}}:nl:*",
)
"""The keys the gateway's Redis user may touch (:mod:`onestop.redis_users`); no others."""


# -- settlement ids --------------------------------------------------------------------------


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


def settlement_id_ms(settlement_id: str) -> int | None:
    """The time (epoch ms) a settlement id was minted at, or ``None`` if it is not one of ours."""
    if group_of_settlement(settlement_id) is None:
        return None
    return int(settlement_id[4:16], 16)


# -- fields ----------------------------------------------------------------------------------


class MemberField(StrEnum):
    """Fields of a member's hash. Short names: a province keeps a hundred million of them."""

    BIRTH_DATE = "bd"
    SEX = "sx"
    REGION = "rg"
    SCHEME = "sc"
    STATUS = "st"
    ENROLLED_SINCE = "es"
    SUPPLEMENTARY_ENROLLED = "se"
    """``1`` or ``0``."""
    ASSISTANCE_CATEGORY = "ac"
    """The category, or empty for none."""
    GROUPS = "gr"
    """A JSON list of the member's group tags."""
    IDENTITY = "id"
    """Id number and name, sealed (:class:`onestop.storage.crypto.MemberCipher`)."""
    BALANCE = "ba"
    """Personal account balance, fen."""
    VERSION = "ve"
    """Moved by every commit and reversal: a snapshot with this version is still true."""
    OUT_OF_REGION_REGISTRATIONS = "oo"
    """A JSON list of ``{"region", "from", "to"}`` (added in 0.2.0; absent: none)."""
    REGISTERED_DISEASES = "rd"
    """A JSON list of ``{"code", "from", "to"}`` (added in 0.2.0; absent: none)."""


YEAR_FIGURES: dict[str, str] = {
    "basic_fund": "bf",
    "outpatient_pooling": "op",
    "supplementary": "su",
    "critical_illness_base": "ci",
    "assistance": "as",
    "assistance_base": "ab",
    "admissions": "ad",
    "assistance_outpatient": "ao",
    "assistance_outpatient_base": "ob",
}
"""A year's figures (:class:`~onestop.domain.state.YearToDate` field) -> field suffix; the
last two were added in 0.2.0 (a member without them has 0)."""

DISEASE_FIGURE = "d"
"""The suffix of per-disease figures: ``2026:d:MT002`` is the basic fund paid in 2026 for
disease MT002 (added in 0.2.0)."""


_FIGURE_OF_SUFFIX = {suffix: figure for figure, suffix in YEAR_FIGURES.items()}


def year_field(year: int, figure: str) -> str:
    """The member-hash field of one year-to-date figure: ``2026:bf``."""
    return f"{year}:{YEAR_FIGURES[figure]}"


def year_of_field(field: str) -> tuple[int, str] | None:
    """``(year, figure)`` of a year-to-date field, ``None`` for any other member field."""
    year, separator, code = field.partition(":")
    figure = _FIGURE_OF_SUFFIX.get(code) if separator and year.isdigit() else None
    return None if figure is None else (int(year), figure)


def year_disease_field(year: int, disease_code: str) -> str:
    """The member-hash field of the basic fund paid in ``year`` for one disease."""
    return f"{year}:{DISEASE_FIGURE}:{disease_code}"


def year_disease_of_field(field: str) -> tuple[int, str] | None:
    """``(year, disease code)`` of a per-disease field, ``None`` for any other member field."""
    year, separator, rest = field.partition(":")
    figure, separator_2, code = rest.partition(":")
    if separator and separator_2 and figure == DISEASE_FIGURE and year.isdigit() and code:
        return int(year), code
    return None


class VisitField(StrEnum):
    """Fields of a visit's hash: which settlement holds it."""

    SETTLEMENT_ID = "settlement_id"
    FINGERPRINT = "fingerprint"
    """SHA-256 of the canonical request, hex: the identical request again is a replay."""
    STATUS = "status"
    """``settled`` or ``reversed`` (:class:`~onestop.domain.settlement.SettlementStatus`)."""


REQUEST_FIELD_PREFIX = "rq:"
"""Visit-index fields ``rq:<fingerprint hex>`` -> settlement id: every request that settled
the visit, kept after a reversal, so that a late retry of a reversed request is answered with
its reversal (domain section 15)."""


def request_field(fingerprint: bytes) -> str:
    """The visit-index field naming the settlement a request (by its fingerprint) made."""
    return f"{REQUEST_FIELD_PREFIX}{fingerprint.hex()}"


class VisitClaimField(StrEnum):
    """Fields of a visit's claim (:func:`visit_claim_key`)."""

    MEMBER_ID = "member_id"
    """The member whose request holds the visit."""
    TOKEN = "token"
    """Names the request that claimed it (a takeover compares it)."""
    CLAIMED_MS = "claimed_ms"
    """When (epoch ms): a claim whose member never settled is stale after a while."""


CLAIMANT_FIELD_PREFIX = "m:"
"""Claim hash field ``m:MEMBER`` -> epoch ms it first claimed: every member that ever held
the visit, so that its settlements are found again after the visit changed hands."""


def claimant_field(member_id: str) -> str:
    """The claim hash field recording that ``member_id`` held the visit."""
    return f"{CLAIMANT_FIELD_PREFIX}{member_id}"


class SettlementField(StrEnum):
    """Fields of a settlement's hash."""

    PACKED = "packed"
    """The settlement as answered, kept small: a serialized
    ``onestop.settlement.v1.PackedSettlement`` (proto/onestop/settlement/v1/record.proto)
    compressed with zlib. Written since 0.2.0 (issue 20), in place of :attr:`RECORD`: a 200-line
    settlement takes about 2.7 KB instead of 8 KB."""
    RECORD = "record"
    """Before: the settlement as answered, a serialized
    ``onestop.settlement.v1.Settlement``. Still read; no longer written."""
    STATUS = "status"
    """``settled`` or ``reversed`` (:class:`~onestop.domain.settlement.SettlementStatus`)."""
    FINGERPRINT = "fingerprint"
    CLIENT_ID = "client_id"
    MEMBER_ID = "member_id"
    VISIT_ID = "visit_id"
    POLICY_YEAR = "policy_year"
    """The year whose figures the settlement added to."""
    COMMITTED_MS = "committed_ms"
    DELTA = "delta"
    """What it added: a JSON object, :class:`~onestop.domain.state.StateDelta` field -> fen."""
    REVERSED_MS = "reversed_ms"
    STATE_AFTER = "state_after"
    """After a reversal: a JSON object, :data:`STATE_AFTER_FIGURES` -> value at that moment."""
    VISIT_TYPE = "visit_type"
    """Added in 0.2.0 with the three below; settlements before it lack them."""
    FIRST_DAY = "first_day"
    """``YYYY-MM-DD``: admission, or the day of an outpatient visit or a purchase."""
    LAST_DAY = "last_day"
    """``YYYY-MM-DD``: discharge, or the same day."""
    HOSPITAL_LEVEL = "hospital_level"
    """The client's registered level when it settled; empty when it has none."""


STATE_AFTER_DISEASE = "disease:"
"""The prefix of a per-disease figure captured by a reversal: ``disease:MT002``."""

STATE_AFTER_FIGURES = (
    *(name for name in YEAR_FIGURES if name != "admissions"),
    "personal_account_balance",
)
"""What a reversal captures of the member, atomically with the undo, to answer with."""


class HistoryField(StrEnum):
    """Keys of a history entry's JSON object (:func:`history_key`): short, one per visit."""

    CLIENT_ID = "c"
    VISIT_TYPE = "t"
    """:data:`HISTORY_VISIT_TYPES`."""
    FIRST_DAY = "f"
    """``YYYY-MM-DD``."""
    LAST_DAY = "l"
    """``YYYY-MM-DD``; absent when it is the first day."""
    CATEGORIES = "x"
    """A JSON list of ICD-10 categories (``K35``), at most 8; absent when none."""
    BILL_DIGEST = "b"
    """:func:`onestop.domain.controls.bill_digest` (16 hex digits)."""
    QUANTITIES = "q"
    """Catalog code -> catalog units settled, as decimal text; items with limits only; absent
    when none."""


HISTORY_VISIT_TYPES = {
    "inpatient": "i",
    "outpatient": "o",
    "outpatient_special": "s",
    "pharmacy": "p",
}
"""A visit type as a history entry stores it: one letter (a member keeps hundreds)."""


class ReviewField(StrEnum):
    """Fields of a review (:func:`review_key`)."""

    SETTLEMENT_ID = "settlement_id"
    CLIENT_ID = "client_id"
    MEMBER_ID = "member_id"
    VISIT_ID = "visit_id"
    VISIT_TYPE = "visit_type"
    FLAGGED_MS = "flagged_ms"
    """When the settlement was committed (epoch ms)."""
    FINDINGS = "findings"
    """A JSON list of ``{"control", "action", "message", "line_nos", "related_settlement"}``."""
    FUNDS_PAID = "funds_paid"
    """Basic fund, supplementary and assistance the settlement paid (fen): what may be
    recovered at most."""
    STATUS = "status"
    """:class:`onestop.domain.reviews.ReviewStatus`."""
    DECIDED_BY = "decided_by"
    DECIDED_MS = "decided_ms"
    RECOVERED = "recovered"
    """Fen recovered (a ``recover`` decision)."""
    REASON = "reason"
    """The reviewer's words."""


class JournalField(StrEnum):
    """Fields of a journal entry, besides the amounts (:data:`AMOUNT_FIELDS`, by name)."""

    KIND = "kind"
    """An :class:`~onestop.domain.reconciliation.EntryKind`."""
    SETTLEMENT_ID = "settlement_id"
    CLIENT_ID = "client_id"
    MEMBER_ID = "member_id"
    VISIT_ID = "visit_id"
    AT_MS = "at_ms"
    POLICY_REGION = "policy_region"
    POLICY_SCHEME = "policy_scheme"
    POLICY_YEAR = "policy_year"
    POLICY_VERSION = "policy_version"
    VISIT_TYPE = "visit_type"
    """Added in 0.2.0 with the three below, as in :class:`SettlementField`; entries before it
    lack them."""
    FIRST_DAY = "first_day"
    LAST_DAY = "last_day"
    HOSPITAL_LEVEL = "hospital_level"
    POLICY_EFFECTIVE_FROM = "policy_effective_from"
    """``YYYY-MM-DD``: the first day of the policy version applied (0.2.0); entries before it
    lack it and applied the version in force from January 1."""


# The amounts (:data:`~onestop.domain.reconciliation.AMOUNT_FIELDS`) are stored under the
# contract's names in journal entries and, prefixed, in day totals; a name added later reads
# as 0 in older data.

DELTA_FIELDS = tuple(delta.name for delta in fields(StateDelta))
"""The names of a settlement's ``delta`` object."""


class DayTotalField(StrEnum):
    """Counting fields of a client's day totals."""

    SETTLEMENTS = "settlements"
    REVERSALS = "reversals"


def settled_amount_field(amount: str) -> str:
    """Day-total field: the sum of ``amount`` over the day's settlements."""
    return f"settled:{amount}"


def reversed_amount_field(amount: str) -> str:
    """Day-total field: the sum of ``amount`` over the settlements reversed that day."""
    return f"reversed:{amount}"


GROUP_FIELD_PREFIX = "by:"
"""Day-total fields ``by:VISIT_TYPE:SCHEME:FIELD``: the same day split by visit type and
scheme, where ``FIELD`` is a counting field or a reconciled fund's settled or reversed field
(added in 0.2.0: a day before it has none, and the answer says what they leave out)."""


def group_total_field(visit_type: str, scheme: str, total_field: str) -> str:
    """The day-total field of one visit type and scheme: ``by:inpatient:resident:settlements``."""
    return f"{GROUP_FIELD_PREFIX}{visit_type}:{scheme}:{total_field}"


def group_of_total_field(name: str) -> tuple[str, str, str] | None:
    """``(visit_type, scheme, field)`` of a group field, ``None`` for another day-total field."""
    if not name.startswith(GROUP_FIELD_PREFIX):
        return None
    parts = name[len(GROUP_FIELD_PREFIX) :].split(":", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


class ReconciliationField(StrEnum):
    """Fields of a reconciliation entry (:func:`reconciliations_key`)."""

    CLIENT_ID = "client_id"
    AT_MS = "at_ms"
    RESULT = "result"
    """``balanced`` or ``unbalanced``."""
    PROVISIONAL = "provisional"
    """``1`` when the day was still open."""
    DETAIL = "detail"
    """``totals``, ``ids`` or ``amounts``: how finely the client compared."""
    DIFFERENCES = "differences"
    """A JSON object: every count and fund by name, onestop minus the client."""
    ONLY_IN_GATEWAY = "only_in_gateway"
    """How many settlements the client did not report."""
    ONLY_IN_HOSPITAL = "only_in_hospital"
    """How many settlements the client reported that onestop lacks."""
    AMOUNT_DIFFERENCES = "amount_differences"
    """How many settlements both hold with different amounts."""
    UNBALANCED_GROUPS = "unbalanced_groups"
    """A JSON array of ``{"visit_type", "scheme"}`` objects whose figures differ."""


class NationalMessageField(StrEnum):
    """Names of a national message's JSON object (:func:`national_message_key`)."""

    STATE = "state"
    """A :class:`NationalMessageState`."""
    INFNO = "infno"
    DIGEST = "digest"
    """SHA-256 (hex) of the message's ``infno`` and ``input``: the same ``msgid`` with other
    content is another message, refused."""
    AT_MS = "at_ms"
    """When it arrived (or, revoked, when the 2601 did)."""
    MEMBER_ID = "member_id"
    """``psn_no``, when the message names one."""
    MDTRT_ID = "mdtrt_id"
    """The visit it acts on, when known."""
    FINGERPRINT = "fingerprint"
    """A settlement's request identity (hex), so that 2601 finds the settlement it made."""
    ANSWER = "answer"
    """The answer's envelope, once answered: the JSON text sent (the same ``msgid`` again
    gets these very bytes)."""
    REVOKED_BY = "revoked_by"
    """The 2601's ``msgid`` that revoked it."""


class NationalMessageState(StrEnum):
    """Where a national message stands."""

    PENDING = "pending"
    """Being processed (or its processing was cut short: after a while, processed again)."""
    ANSWERED = "answered"
    REVOKED = "revoked"
    """Named by a 2601 before it arrived: refused if it ever does."""
    FAILED = "failed"
    """Answered ``-1`` for a passing reason (a dependency was down): the same message again
    is processed again; whatever it may have done is found by its fingerprint."""


class NationalVisitField(StrEnum):
    """Fields of a national visit (:func:`national_visit_key`)."""

    VISIT_TYPE = "visit_type"
    MED_TYPE = "med_type"
    INSUTYPE = "insutype"
    BEGIN = "begin"
    """Registration or admission time, ``YYYY-MM-DD HH:MM:SS`` (Asia/Shanghai)."""
    END = "end"
    """Discharge time (inpatient, after 2402); empty before."""
    STATUS = "status"
    """``open``, ``discharged`` or ``cancelled``."""
    HIS_NUMBER = "his_number"
    """The HIS's own visit or admission number (``ipt_otp_no`` / ``ipt_no``)."""
    DIAGNOSES = "diagnoses"
    """A JSON array of diagnosis codes."""
    REGISTERED_BY = "registered_by"
    """The ``msgid`` of the 2201 or 2401."""
    PERSON = "person"
    """What the settlement answer shows of the member, masked, as a JSON object by name."""
    MEMBER_ID = "member_id"
    """Whose visit it is (``psn_no``): a message naming another member does not find it."""


class NationalLineField(StrEnum):
    """Names of an uploaded fee line's JSON object (:func:`national_lines_key`)."""

    BATCH = "chrg_bchno"
    NATIONAL_CODE = "med_list_codg"
    HIS_CODE = "medins_list_codg"
    QUANTITY = "cnt"
    PRICE_FEN = "price_fen"
    """Unit price in fen, a decimal string (the message's ``pric`` in yuan, times 100)."""
    AMOUNT = "amount"
    """Line total in fen."""
    AT = "fee_ocur_time"
    RETURNS = "init_feedetl_sn"
    """For a return line (negative quantity): the line it returns."""
    UPLOADED_BY = "msgid"


class AuditField(StrEnum):
    """Fields of a mapping-audit entry."""

    AT = "at"
    CHANGED_BY = "by"
    VERSION = "version"
    HIS_CODE = "his_code"
    CHANGE = "change"
    OLD = "old"
    NEW = "new"
    RISKY = "risky"
    REASON = "reason"


class LookupField(StrEnum):
    """Fields of a lookup-audit entry."""

    AT = "at"
    CLIENT_ID = "client_id"
    KIND = "kind"
    """``eligibility`` (by member id) or ``lookup`` (by id number)."""
    MEMBER_ID = "member_id"
    """Empty when no member was found."""
    FOUND = "found"
    ASKED_DATE = "asked_date"
    BLIND_INDEX = "blind_index"
    """For a lookup by id number: its keyed digest (the number itself is never kept)."""


POLICIES_KIND = "policies"
CATALOG_KIND = "catalog"
CLIENTS_KIND = "clients"


_MAPPING_KIND = "mapping:"


def mapping_kind(client_id: str) -> str:
    """The versions-hash field of a client's mapping."""
    return f"{_MAPPING_KIND}{client_id}"


def client_of_mapping_kind(kind: str) -> str | None:
    """The client whose mapping a versions-hash field names, ``None`` for other kinds."""
    return kind.removeprefix(_MAPPING_KIND) if kind.startswith(_MAPPING_KIND) else None


def policy_field(region: str, scheme: str, year: int, effective_from: date | None = None) -> str:
    """The policies-hash field of one policy version: a JSON array, so any region code is one key.

    ``[region, scheme, year]`` for the version in force from January 1 (written so before
    versions existed: a document with ``effective_from`` January 1 replaces one without it),
    ``[region, scheme, year, "YYYY-MM-DD"]`` for a version taking effect later (0.2.0).
    """
    parts: list[str | int] = [region, scheme, year]
    if effective_from is not None and effective_from != date(year, 1, 1):
        parts.append(effective_from.isoformat())
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


__all__ = [
    "AMOUNT_FIELDS",
    "CATALOG_KEY",
    "CATALOG_KIND",
    "CLIENTS_KEY",
    "CLIENTS_KIND",
    "DELTA_FIELDS",
    "DISEASE_FIGURE",
    "GATEWAY_KEY_PATTERNS",
    "GROUPS",
    "GROUP_FIELD_PREFIX",
    "LAYOUT_VERSION",
    "MEMBER_KEY_PATTERN",
    "MIGRATIONS_KEY",
    "POLICIES_KEY",
    "POLICIES_KIND",
    "PREFIX",
    "REFUSALS_TTL_SECONDS",
    "REQUEST_FIELD_PREFIX",
    "STATE_AFTER_DISEASE",
    "STATE_AFTER_FIGURES",
    "VERSIONS_CHANNEL",
    "VERSIONS_KEY",
    "YEAR_FIGURES",
    "AuditField",
    "ConsoleSessionField",
    "DayTotalField",
    "EntryKind",
    "JournalField",
    "LookupField",
    "MemberField",
    "NationalLineField",
    "NationalMessageField",
    "NationalMessageState",
    "NationalVisitField",
    "ReconciliationField",
    "SettlementField",
    "SettlementStatus",
    "VisitClaimField",
    "VisitField",
    "client_of_mapping_kind",
    "console_login_key",
    "console_session_key",
    "day_settlements_key",
    "day_totals_key",
    "group_of_key",
    "group_of_settlement",
    "group_of_total_field",
    "group_total_field",
    "identity_index_key",
    "journal_key",
    "lookups_key",
    "mapping_audit_key",
    "mapping_key",
    "mapping_kind",
    "member_group",
    "member_id_of_key",
    "member_key",
    "national_lines_key",
    "national_message_key",
    "national_visit_key",
    "new_settlement_id",
    "nonce_key",
    "policy_field",
    "reconciliations_key",
    "refusals_key",
    "replication_barrier_key",
    "request_field",
    "restored_key",
    "reversed_amount_field",
    "settled_amount_field",
    "settlement_key",
    "stays_key",
    "unknown_members_key",
    "visit_claim_key",
    "visit_group",
    "visit_key",
    "year_disease_field",
    "year_disease_of_field",
    "year_field",
    "year_of_field",
]
