"""How members, year-to-date state and increments are laid out in Redis hashes.

A member is one small hash (kept in Redis's compact encoding):

- ``p``: the profile, ``|``-separated (birth date, sex, region, scheme, status, enrolled
  since, supplementary 0/1, assistance category, comma-separated groups);
- ``e``: id number and name, sealed with AES-GCM (:class:`adjudicator.crypto.MemberCipher`);
- ``b``: personal account balance in fen; ``v``: version, moved by every commit;
- ``<year>:<field>``: year-to-date figures, fields in :data:`YEAR_FIELDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from adjudicator.crypto import MemberCipher
from onestop.domain.member import Member
from onestop.domain.state import StateDelta, YearToDate

YEAR_FIELDS = (
    ("bf", "basic_fund"),
    ("op", "outpatient_pooling"),
    ("su", "supplementary"),
    ("ci", "critical_illness_base"),
    ("as", "assistance"),
    ("ab", "assistance_base"),
    ("ad", "admissions"),
)

Fields = Mapping[bytes, bytes]


def encode_member(member: Member, cipher: MemberCipher) -> dict[str, bytes | str | int]:
    """The hash fields of a member (the balance only when the record carries one)."""
    profile = "|".join(
        (
            member.birth_date.isoformat(),
            member.sex,
            member.region,
            member.scheme.value,
            member.status.value,
            member.enrolled_since.isoformat(),
            "1" if member.supplementary_enrolled else "0",
            member.assistance_category.value if member.assistance_category else "",
            ",".join(member.groups),
        )
    )
    fields: dict[str, bytes | str | int] = {
        "p": profile,
        "e": cipher.seal(member.member_id, member.id_number, member.name),
    }
    if member.personal_account_balance is not None:
        fields["b"] = member.personal_account_balance
    return fields


def decode_member(member_id: str, fields: Fields, cipher: MemberCipher) -> Member:
    """Rebuild a member from its hash (the balance is read apart: :func:`balance_of`)."""
    (birth, sex, region, scheme, status, since, supplementary, category, groups) = (
        fields[b"p"].decode().split("|")
    )
    id_number, name = cipher.open(member_id, fields[b"e"])
    return Member.model_validate(
        {
            "member_id": member_id,
            "id_number": id_number,
            "name": name,
            "birth_date": date.fromisoformat(birth),
            "sex": sex,
            "region": region,
            "scheme": scheme,
            "status": status,
            "enrolled_since": date.fromisoformat(since),
            "supplementary_enrolled": supplementary == "1",
            "assistance_category": category or None,
            "groups": tuple(group for group in groups.split(",") if group),
        }
    )


def balance_of(fields: Fields) -> int:
    """The member's personal account balance in fen."""
    return int(fields.get(b"b", b"0"))


def version_of(fields: Fields) -> int:
    """The member's version (0 before the first commit)."""
    return int(fields.get(b"v", b"0"))


def year_state_of(fields: Fields, year: int) -> YearToDate:
    """The member's year-to-date state for ``year``."""
    prefix = f"{year}:".encode()
    return YearToDate(
        **{name: int(fields.get(prefix + code.encode(), b"0")) for code, name in YEAR_FIELDS}
    )


def increments_text(delta: StateDelta) -> str:
    """Increments as the commit script reads them: ``bf,op,su,ci,as,ab,ad,account``."""
    values = [getattr(delta, name) for _, name in YEAR_FIELDS]
    return ",".join(str(value) for value in (*values, delta.personal_account))


def parse_state_after(text: str) -> tuple[YearToDate, int]:
    """Parse the reversal script's ``bf,op,su,ci,as,ab,balance`` into state and balance."""
    numbers = [int(part) for part in text.split(",")]
    names = [name for _, name in YEAR_FIELDS if name != "admissions"]
    return YearToDate(**dict(zip(names, numbers[:6], strict=True))), numbers[6]


def stays_of(fields: Fields) -> dict[str, tuple[date, date]]:
    """Active stays: settlement id -> (admission, discharge)."""
    stays = {}
    for settlement_id, value in fields.items():
        first, last = value.decode().split("|")
        stays[settlement_id.decode()] = (date.fromisoformat(first), date.fromisoformat(last))
    return stays
