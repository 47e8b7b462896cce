"""The shapes of the HTTP API: response models, the smaller request bodies, examples.

Every answer is built as one of these models; each has an example.

Requests that carry money or ratios are validated by the domain's own models
(:class:`onestop.domain.bill.VisitRequest`, :class:`onestop.domain.policy.Policy`), and the
answers reuse the domain's value types (``Amounts``, ``LineSplit``, ``YearToDateView``,
``PolicyRef``): one definition each. Answers are built from the adjudicator's messages in one
module, :mod:`gateway.convert`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from onestop.domain.engine import Amounts, LineSplit, Note
from onestop.domain.errors import ErrorCode
from onestop.domain.member import DiseaseRegistration, IdNumber, OutOfRegionRegistration
from onestop.domain.reconciliation import DayFigures, GroupKey, HospitalDay
from onestop.domain.settlement import PolicyRef, SettlementStatus
from onestop.domain.state import YearToDateView
from onestop.domain.types import (
    AssistanceCategory,
    ClientKind,
    Code,
    HospitalLevel,
    IsoDate,
    MemberStatus,
    Name,
    NationalCode,
    Scheme,
    VisitType,
)

SETTLE_EXAMPLE: dict[str, Any] = {
    "visit_id": "ZY20260301001",
    "member_id": "M0001",
    "visit_type": "inpatient",
    "admission_date": "2026-03-01",
    "discharge_date": "2026-03-09",
    "diagnoses": ["C34.9"],
    "use_personal_account": False,
    "lines": [
        {
            "line_no": 1,
            "his_code": "YP0002",  # mapped by MAPPING_CSV_EXAMPLE, to XB02 of the catalog
            "quantity": "2",
            "unit_price": 1500,
            "amount": 3000,
            "date": "2026-03-02",
        }
    ],
}

PUBLIC_KEY_EXAMPLE = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA...\n-----END PUBLIC KEY-----\n"

CLIENT_EXAMPLE: dict[str, Any] = {
    "kind": "hospital",
    "name": "省人民医院",
    "level": "level3",
    "region": "410100",
    "public_key": PUBLIC_KEY_EXAMPLE,
    "national_code": "H41010000001",
    "national_codes_allowed": False,
}

RECEIPT_KEY_EXAMPLE: dict[str, Any] = {
    "key_id": "3f2a9c0d1e4b5a67",
    "algorithm": "ed25519",
    "public_key": PUBLIC_KEY_EXAMPLE,
}

MAPPING_CHANGE_EXAMPLE: dict[str, Any] = {
    "his_code": "HC0001",
    "change": "changed",
    "old": ["HC0001,支架,CB01,1,2020-01-01,"],
    "new": ["HC0001,支架,CC03,1,2020-01-01,"],
    "risky": True,
    "reason": "CB01 (category B) becomes CC03 (category C)",
}

MAPPING_CSV_EXAMPLE = (
    "his_code,his_name,catalog_code,factor,valid_from,valid_to\n"
    "YP0002,头孢呋辛酯(盒),XB02,1,2020-01-01,\n"
    "YP0002T,头孢呋辛酯(片),XB02,0.1,2020-01-01,\n"
)

MEMBERS_EXAMPLE = (
    '{"member_id": "M0001", "id_number": "410102198001011234", "name": "张三", '
    '"birth_date": "1980-01-01", "sex": "M", "region": "410100", "scheme": "resident", '
    '"status": "active", "enrolled_since": "2020-01-01", "supplementary_enrolled": true, '
    '"assistance_category": "dibao", "groups": [], "personal_account_balance": 5000}\n'
)

POLICY_EXAMPLE: dict[str, Any] = {
    "region": "410100",
    "scheme": "resident",
    "year": 2026,
    "name": "Zhengzhou urban resident",
    "inpatient": {
        "deductible": {"community": 20000, "level1": 30000, "level2": 60000, "level3": 90000},
        "ratio": {"community": "0.60", "level1": "0.60", "level2": "0.55", "level3": "0.50"},
        "halved_deductible_groups": [],
    },
    "annual_cap": 2500000,
    "continuous_bonus": {"from_years": 3, "step": "0.02", "max": "0.20"},
    "waiting_period_months": 0,
    "outpatient_special": {"diagnoses": ["C", "N18", "Z94"], "ratio": "0.50", "deductible": 0},
    "outpatient_pooling": {"ratio": "0.50", "annual_cap": 5000},
    "personal_account": {"pays_self_pay_items": False},
    "supplementary": {"kind": "beyond_cap", "requires_enrollment": True, "annual_cap": 3500000},
    "assistance": {
        "dibao": {"threshold": 300000, "ratio": "0.70", "annual_cap": 2000000},
        "tekun": {"threshold": 0, "ratio": "1.00", "annual_cap": None},
    },
    "controls": {
        "duplicate_bill": {"action": "refuse"},
        "split_admission": {"action": "flag", "within_days": 15},
        "quantity": {"action": "flag", "limits": [{"code": "XB02", "per_visit": "1"}]},
    },
}

POLICY_REF_EXAMPLE: dict[str, Any] = {
    "region": "410100",
    "scheme": "resident",
    "year": 2026,
    "version": "5b1f0c2e9a7d",
    "effective_from": "2026-01-01",
}

AMOUNTS_EXAMPLE: dict[str, Any] = {
    "total": 111150,
    "full_self_pay": 0,
    "over_limit_self_pay": 0,
    "pre_self_pay": 0,
    "in_scope": 111150,
    "deductible": 90000,
    "basic_fund": 10575,
    "supplementary": 0,
    "assistance": 0,
    "personal_account": 0,
    "cash": 100575,
    "hospital_part": 0,
}

YEAR_TO_DATE_EXAMPLE: dict[str, Any] = {
    "basic_fund": 10575,
    "basic_cap_remaining": 2489425,
    "outpatient_pooling": 0,
    "supplementary": 0,
    "critical_illness_base": 0,
    "assistance": 0,
    "assistance_base": 0,
    "personal_account_balance": 5000,
    "assistance_outpatient": 0,
    "assistance_outpatient_base": 0,
    "diseases": {},
}

RESULT_EXAMPLE: dict[str, Any] = {
    "settlement_id": "S1a3019c8f6b2a0d4e7f0a1b2c3d4e5f",
    "client_id": "H0001",
    "visit_id": "ZY20260301001",
    "member_id": "M0001",
    "visit_type": "inpatient",
    "status": "settled",
    "replayed": False,
    "settled_at": "2026-03-09T10:15:02.000+08:00",
    "policy": POLICY_REF_EXAMPLE,
    "amounts": AMOUNTS_EXAMPLE,
    "lines": [
        {
            "line_no": 1,
            "catalog_code": "FA02",
            "category": "A",
            "amount": 4000,
            "full_self_pay": 0,
            "over_limit_self_pay": 0,
            "pre_self_pay": 0,
            "in_scope": 4000,
            "reasons": [],
        }
    ],
    "year_to_date": YEAR_TO_DATE_EXAMPLE,
    "notes": [],
    "signature": {"key_id": "3f2a9c0d1e4b5a67", "algorithm": "ed25519", "value": "q83v...=="},
}


class Signature(BaseModel):
    """Ed25519 signature of the result.

    It covers the result without ``signature`` and ``replayed``, as sorted, compact UTF-8
    JSON; the key is listed at ``GET /v1/keys``.
    """

    model_config = ConfigDict(extra="forbid")

    key_id: str
    algorithm: Literal["ed25519"]
    value: str


class UnsignedResult(BaseModel):
    """A settlement (or preview, or reversal) before it is signed.

    The signature covers all of it but ``replayed``.
    """

    model_config = ConfigDict(extra="forbid")

    settlement_id: str | None = Field(description="null for a preview")
    client_id: str
    visit_id: str
    member_id: str
    visit_type: VisitType
    status: SettlementStatus
    replayed: bool = Field(
        description="this answer repeats the original settlement of the identical request"
    )
    settled_at: str | None = Field(description="ISO 8601, Asia/Shanghai; null for a preview")
    reversed_at: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="present once reversed: when (ISO 8601, Asia/Shanghai)",
    )
    policy: PolicyRef
    amounts: Amounts = Field(
        description="every amount in fen; national interface names: medfee_sumamt, "
        "fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, act_pay_dedc, "
        "hifp_pay, hifmi_pay, maf_pay, acct_pay, psn_cash_pay"
    )
    lines: list[LineSplit]
    year_to_date: YearToDateView = Field(
        description="the member's year after this settlement (a preview: as if committed; a "
        "reversal: after the undo)"
    )
    notes: list[Note]


class SettlementResult(UnsignedResult):
    """A settlement (or preview, or reversal), signed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": RESULT_EXAMPLE})

    signature: Signature


class SettlementList(BaseModel):
    """Settlements a terminal lost track of (单边账): of one visit, or a page of one day."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"items": [RESULT_EXAMPLE], "next_cursor": None}},
    )

    items: list[SettlementResult]
    next_cursor: str | None = Field(
        description="the day's next page: send it as `cursor`; null on the last page (and for "
        "a visit, whose settlements come in one answer)"
    )


class ProblemError(BaseModel):
    """One offending line, field or row."""

    model_config = ConfigDict(extra="forbid")

    line_no: int | None
    his_code: str | None
    field: str | None
    code: ErrorCode
    message: str
    row: int | None = Field(default=None, description="the row or line of an upload")


class Problem(BaseModel):
    """A refusal (``application/problem+json``): nothing was changed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "type": "urn:onestop:problem:UNMAPPED_CODES",
                "title": "Some HIS codes have no mapping",
                "status": 422,
                "code": "UNMAPPED_CODES",
                "detail": "1 problem(s) in the bill",
                "errors": [
                    {
                        "line_no": 3,
                        "his_code": "NOPE01",
                        "field": "his_code",
                        "code": "UNMAPPED_CODES",
                        "message": "HIS code NOPE01 has no mapping valid on 2026-09-01",
                    }
                ],
            }
        },
    )

    type: str = Field(description="urn:onestop:problem:CODE")
    title: str
    status: int = Field(description="the HTTP status, again")
    code: ErrorCode
    detail: str = Field(description="what is wrong and how to fix it")
    errors: list[ProblemError]


class EligibilityResult(BaseModel):
    """A member's entitlement on a day, identity masked."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "member_id": "M0001",
                "name": "张*",
                "id_number": "4101**********1234",
                "scheme": "resident",
                "region": "410100",
                "status": "active",
                "waiting_until": None,
                "in_waiting_period": False,
                "continuous_years": 6,
                "assistance_category": "dibao",
                "supplementary_enrolled": True,
                "personal_account_balance": 5000,
                "year_to_date": YEAR_TO_DATE_EXAMPLE,
                "policy": POLICY_REF_EXAMPLE,
                "out_of_region_registrations": [
                    {"region": "520100", "from": "2026-01-01", "to": None}
                ],
                "registered_diseases": [{"code": "MT002", "from": "2026-01-01", "to": None}],
            }
        },
    )

    member_id: str
    name: str = Field(description="masked: the first character")
    id_number: str = Field(description="masked: the first and last four characters")
    scheme: Scheme
    region: str
    status: MemberStatus
    waiting_until: str | None = Field(description="the first day the funds pay, if waiting")
    in_waiting_period: bool
    continuous_years: int
    assistance_category: AssistanceCategory | None
    supplementary_enrolled: bool
    personal_account_balance: int
    year_to_date: YearToDateView
    policy: PolicyRef = Field(description="the policy version in force on the date asked")
    out_of_region_registrations: tuple[OutOfRegionRegistration, ...] = Field(
        description="registrations for care in other regions (异地就医备案): region, from, to"
    )
    registered_diseases: tuple[DiseaseRegistration, ...] = Field(
        description="registrations for chronic and special diseases (门诊慢特病): code, from, to"
    )


class LookupRequest(BaseModel):
    """A member looked up by the id number the patient shows."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"id_number": "410102198001011234", "date": "2026-03-09"}},
    )

    id_number: IdNumber = Field(description="the resident identity card number, 18 characters")
    date: IsoDate | None = Field(default=None, description="YYYY-MM-DD (today)")


class LookupOut(BaseModel):
    """One eligibility check or lookup in the audit trail."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "at": "2026-03-09T10:14:55.120+08:00",
                "client_id": "H0001",
                "kind": "lookup",
                "member_id": "M0001",
                "found": True,
                "asked_date": "2026-03-09",
            }
        },
    )

    at: str
    client_id: str
    kind: Literal["eligibility", "lookup"]
    member_id: str | None = Field(description="null when no member was found")
    found: bool
    asked_date: str


class PublicKey(BaseModel):
    """A receipt-signing key."""

    model_config = ConfigDict(json_schema_extra={"example": RECEIPT_KEY_EXAMPLE})

    key_id: str
    algorithm: Literal["ed25519"]
    public_key: str


class Keys(BaseModel):
    """Every key that ever signed a receipt."""

    model_config = ConfigDict(json_schema_extra={"example": {"keys": [RECEIPT_KEY_EXAMPLE]}})

    keys: list[PublicKey]


class ClientRegistration(BaseModel):
    """A client the agency registers (``level`` and ``region`` for hospitals and pharmacies)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": CLIENT_EXAMPLE,
        },
    )

    kind: ClientKind
    name: Name
    level: HospitalLevel | None = None
    region: Code | None = None
    public_key: str = Field(description="PEM SubjectPublicKeyInfo, Ed25519")
    national_code: NationalCode | None = Field(
        default=None,
        description="the fixmedins_code its national-interface messages carry "
        "(default: its client id)",
    )
    national_codes_allowed: bool = Field(
        default=False,
        description="its national fee lines may name catalog codes (med_list_codg) directly",
    )


class ClientOut(ClientRegistration):
    """A registered client."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"client_id": "H0001", **CLIENT_EXAMPLE},
        }
    )

    client_id: str


class CatalogLoaded(BaseModel):
    """A stored catalog."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"loaded": 52130, "version": "9c3e1d7a22f0"}}
    )

    loaded: int
    version: str


class MappingChangeOut(BaseModel):
    """How an upload changed one HIS code."""

    his_code: str
    change: Literal["added", "removed", "changed"]
    old: list[str]
    new: list[str]
    risky: bool
    reason: str


class MappingLoaded(BaseModel):
    """A stored mapping and what it changed."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "loaded": 20000,
                "version": "a41c0f9e3b27",
                "changes": [MAPPING_CHANGE_EXAMPLE],
            }
        }
    )

    loaded: int
    version: str
    changes: list[MappingChangeOut]


class AuditEntry(MappingChangeOut):
    """One change in a mapping's audit trail."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "at": "2026-11-24T14:31:42.959+08:00",
                "changed_by": "agency",
                "version": "a41c0f9e3b27",
                **MAPPING_CHANGE_EXAMPLE,
            }
        }
    )

    at: str
    changed_by: str
    version: str


class RejectedMember(BaseModel):
    """A line of a members file that was not loaded."""

    line: int
    member_id: str | None
    code: ErrorCode
    message: str


class MembersLoaded(BaseModel):
    """What a members upload did."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "loaded": 999998,
                "rejected": [
                    {
                        "line": 17,
                        "member_id": "M0017",
                        "code": "DUPLICATE_ENROLLMENT",
                        "message": "this id number is already enrolled as active member M0003",
                    },
                    {
                        "line": 40211,
                        "member_id": None,
                        "code": "MALFORMED",
                        "message": "not JSON: Expecting value: line 1 column 1 (char 0)",
                    },
                ],
            }
        }
    )

    loaded: int
    rejected: list[RejectedMember]


class Health(BaseModel):
    """The gateway can settle."""

    model_config = ConfigDict(json_schema_extra={"example": {"status": "ok"}})

    status: Literal["ok"]


DayFen = Annotated[int, Field(ge=-(10**15), le=10**15)]
"""An amount of a day or a settlement in fen: at most ten trillion yuan either way (what the
adjudicator's 64-bit fields carry with room to spare)."""

DayCount = Annotated[int, Field(ge=0, le=10**9)]
"""How many settlements or reversals of a day."""


class FundAmounts(BaseModel):
    """A day's amounts per fund (fen): settled minus reversed."""

    model_config = ConfigDict(extra="forbid")

    total: DayFen
    basic_fund: DayFen
    supplementary: DayFen
    assistance: DayFen
    personal_account: DayFen
    cash: DayFen


RECONCILIATION_FUNDS_EXAMPLE: dict[str, Any] = {
    "total": 1341200,
    "basic_fund": 512300,
    "supplementary": 30000,
    "assistance": 20000,
    "personal_account": 5000,
    "cash": 773900,
}

RECONCILIATION_EXAMPLE: dict[str, Any] = {
    "date": "2026-03-09",
    "settlements": 1,
    "reversals": 0,
    "amounts": RECONCILIATION_FUNDS_EXAMPLE,
    "settlement_amounts": {"S1a3019c8f6b2a0d4e7f0a1b2c3d4e5f": RECONCILIATION_FUNDS_EXAMPLE},
    "groups": [
        {
            "visit_type": "inpatient",
            "scheme": "resident",
            "settlements": 1,
            "reversals": 0,
            "amounts": RECONCILIATION_FUNDS_EXAMPLE,
        }
    ],
}


class GroupFigures(BaseModel):
    """A day's figures of one visit type and scheme (the national interface's 险种/清算类别)."""

    model_config = ConfigDict(extra="forbid")

    visit_type: VisitType
    scheme: Scheme
    settlements: DayCount
    reversals: DayCount
    amounts: FundAmounts


class ReconciliationRequest(BaseModel):
    """A hospital's or pharmacy's own figures of one settlement day (Asia/Shanghai)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": RECONCILIATION_EXAMPLE})

    date: IsoDate
    settlements: DayCount
    reversals: DayCount
    amounts: FundAmounts
    settlement_ids: list[Code] | None = Field(
        default=None,
        max_length=2_000_000,
        description="with them, the settlements are compared one by one (对明细账)",
    )
    settlement_amounts: dict[Code, FundAmounts] | None = Field(
        default=None,
        max_length=2_000_000,
        description=(
            "the day's settlements by id, each with its amounts as settled (a reversal does "
            "not change them): compared one by one, by id and by amount; instead of "
            "settlement_ids"
        ),
    )
    groups: list[GroupFigures] | None = Field(
        default=None,
        max_length=len(VisitType) * len(Scheme),
        description="the same day per visit type and scheme, compared group by group",
    )

    @model_validator(mode="after")
    def _one_detail_and_distinct_groups(self) -> ReconciliationRequest:
        if self.settlement_ids is not None and self.settlement_amounts is not None:
            raise ValueError(
                "send settlement_ids or settlement_amounts, not both "
                "(settlement_amounts already names the ids)"
            )
        if self.groups is not None:
            keys = [(group.visit_type, group.scheme) for group in self.groups]
            if len(set(keys)) != len(keys):
                raise ValueError("groups: each visit type and scheme at most once")
        return self

    def hospital_day(self) -> HospitalDay:
        """The figures as the domain compares them."""
        return HospitalDay(
            totals=DayFigures(self.settlements, self.reversals, self.amounts.model_dump()),
            settlement_ids=self.settlement_ids,
            settlement_amounts=(
                None
                if self.settlement_amounts is None
                else {key: funds.model_dump() for key, funds in self.settlement_amounts.items()}
            ),
            groups=(
                None
                if self.groups is None
                else {
                    GroupKey(group.visit_type, group.scheme): DayFigures(
                        group.settlements, group.reversals, group.amounts.model_dump()
                    )
                    for group in self.groups
                }
            ),
        )


class DayFiguresOut(BaseModel):
    """A day's figures."""

    settlements: int
    reversals: int
    amounts: FundAmounts


class AmountDifferenceOut(BaseModel):
    """A settlement both sides hold with different amounts."""

    settlement_id: str
    gateway: FundAmounts
    hospital: FundAmounts
    differences: dict[str, int] = Field(description="each fund: gateway minus hospital")


class GroupResultOut(BaseModel):
    """One visit type and scheme of the day."""

    visit_type: VisitType | None = Field(
        description="null with scheme null: settled before onestop recorded the split"
    )
    scheme: Scheme | None
    result: Literal["balanced", "unbalanced"] | None = Field(
        description="null when the request sent no groups"
    )
    gateway: DayFiguresOut
    hospital: DayFiguresOut | None
    differences: dict[str, int] | None


_NO_DIFFERENCES: dict[str, Any] = dict.fromkeys(
    ("settlements", "reversals", *RECONCILIATION_FUNDS_EXAMPLE), 0
)


class RecoveriesOut(BaseModel):
    """Recoveries the agency decided that day on the client's flagged settlements.

    Their own row: shown, never compared, and never part of the day's funds.
    """

    model_config = ConfigDict(extra="forbid")

    count: int
    recovered: int = Field(description="fen")


class ReconciliationResult(BaseModel):
    """The comparison: ``differences`` are gateway minus hospital."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "result": "balanced",
                "gateway": {
                    "settlements": 1,
                    "reversals": 0,
                    "amounts": RECONCILIATION_FUNDS_EXAMPLE,
                },
                "differences": _NO_DIFFERENCES,
                "only_in_gateway": [],
                "only_in_hospital": [],
                "amount_differences": [],
                "groups": [
                    {
                        "visit_type": "inpatient",
                        "scheme": "resident",
                        "result": "balanced",
                        "gateway": {
                            "settlements": 1,
                            "reversals": 0,
                            "amounts": RECONCILIATION_FUNDS_EXAMPLE,
                        },
                        "hospital": {
                            "settlements": 1,
                            "reversals": 0,
                            "amounts": RECONCILIATION_FUNDS_EXAMPLE,
                        },
                        "differences": _NO_DIFFERENCES,
                    }
                ],
                "provisional": False,
                "notes": [],
                "recoveries": {"count": 0, "recovered": 0},
            }
        }
    )

    result: Literal["balanced", "unbalanced"]
    gateway: DayFiguresOut
    differences: dict[str, int]
    only_in_gateway: list[str]
    only_in_hospital: list[str]
    amount_differences: list[AmountDifferenceOut] = Field(
        description="settlements both sides hold whose amounts differ (with settlement_amounts)"
    )
    groups: list[GroupResultOut] = Field(
        description="the day per visit type and scheme; compared when the request sent groups"
    )
    provisional: bool = Field(
        description="the day is not closed yet (Asia/Shanghai): its figures may still change"
    )
    notes: list[str] = Field(
        description="what may explain an unbalanced day (a date in the wrong time zone)"
    )
    recoveries: RecoveriesOut = Field(
        description="recoveries the agency decided that day on the client's flagged "
        "settlements: their own row, not compared (added in 0.2.0)"
    )


class GroupOut(BaseModel):
    """A visit type and a scheme (both null: settled before the split was recorded)."""

    visit_type: VisitType | None
    scheme: Scheme | None


class ReconciliationSummaryOut(BaseModel):
    """What was answered to one reconciliation: the verdict and by how much."""

    client_id: str
    reconciled_at: str = Field(description="ISO 8601, Asia/Shanghai")
    result: Literal["balanced", "unbalanced"]
    provisional: bool
    detail: Literal["totals", "ids", "amounts"] = Field(
        description="how finely the client compared: totals only, ids, or each amount"
    )
    differences: dict[str, int] = Field(description="counts and funds: gateway minus client")
    only_in_gateway: int = Field(description="settlements the client did not report")
    only_in_hospital: int = Field(description="settlements the client reported, unknown here")
    amount_differences: int = Field(description="settlements whose amounts differ")
    unbalanced_groups: list[GroupOut]


class ClientReconciliations(BaseModel):
    """One client's reconciliations of the day."""

    client_id: str
    status: Literal["balanced", "unbalanced", "not_reconciled"] = Field(
        description="the latest answer's result; not_reconciled when it never asked"
    )
    latest: ReconciliationSummaryOut | None
    history: list[ReconciliationSummaryOut] = Field(description="every answer, in order")


_SUMMARY_EXAMPLE: dict[str, Any] = {
    "client_id": "ZZH3",
    "reconciled_at": "2026-03-10T08:30:00+08:00",
    "result": "unbalanced",
    "provisional": False,
    "detail": "amounts",
    "differences": {**_NO_DIFFERENCES, "total": 1, "cash": 1},
    "only_in_gateway": 0,
    "only_in_hospital": 0,
    "amount_differences": 1,
    "unbalanced_groups": [{"visit_type": "outpatient", "scheme": "resident"}],
}


class DayReconciliations(BaseModel):
    """Which clients balanced a day, which did not and by how much."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "date": "2026-03-09",
                "clients": [
                    {
                        "client_id": "ZZH3",
                        "status": "unbalanced",
                        "latest": _SUMMARY_EXAMPLE,
                        "history": [_SUMMARY_EXAMPLE],
                    },
                    {
                        "client_id": "ZZP1",
                        "status": "not_reconciled",
                        "latest": None,
                        "history": [],
                    },
                ],
            }
        }
    )

    date: str
    clients: list[ClientReconciliations]


# -- the review queue (domain section 18) ----------------------------------------------------


class FindingOut(BaseModel):
    """One control's finding on a flagged settlement."""

    model_config = ConfigDict(extra="forbid")

    control: str = Field(description="the control's code, e.g. SPLIT_ADMISSION")
    action: Literal["flag", "deduct"]
    message: str
    line_nos: list[int] = Field(description="the lines at fault; empty: the whole visit")
    related_settlement: str | None = Field(
        description="the member's earlier settlement the finding rests on"
    )


class ReviewOut(BaseModel):
    """A flagged settlement in the review queue, and the decision on it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "settlement_id": "S0a3019ca6b20ae0f3b2c1d4e5f60718",
                "client_id": "H0001",
                "member_id": "M0001",
                "visit_id": "ZY2026030502",
                "visit_type": "inpatient",
                "flagged_at": "2026-03-09T10:14:55.120+08:00",
                "findings": [
                    {
                        "control": "SPLIT_ADMISSION",
                        "action": "flag",
                        "message": "a stay within 15 days 0 day(s) from your stay of 2026-03-01 "
                        "to 2026-03-05, for a related diagnosis (K35): ...",
                        "line_nos": [],
                        "related_settlement": "S0a3019ca6b1dfe80a1b2c3d4e5f60718",
                    }
                ],
                "funds_paid": 182000,
                "status": "recovered",
                "decided_by": "AGENCY:LI-01",
                "decided_at": "2026-03-10T09:02:11.004+08:00",
                "recovered": 91000,
                "reason": "one stay split in two: the second deductible was not charged",
                "settlement_status": "settled",
            }
        },
    )

    settlement_id: str
    client_id: str
    member_id: str
    visit_id: str
    visit_type: VisitType
    flagged_at: str
    findings: list[FindingOut]
    funds_paid: int = Field(description="what the funds paid (fen): the most a recovery takes")
    status: Literal["open", "accepted", "recovered"]
    decided_by: str | None
    decided_at: str | None
    recovered: int = Field(description="fen recovered from the client (0 unless recovered)")
    reason: str | None
    settlement_status: SettlementStatus | None = Field(
        description="the settlement as it stands (a reversed one paid nothing to recover)"
    )


class ReviewDecisionIn(BaseModel):
    """The agency's decision on a flagged settlement: made once, never rewriting it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "decision": "accept",
                "reason": "two boxes were prescribed for the stay",
                "reviewer": "LI-01",
            }
        },
    )

    decision: Literal["accept", "recover"]
    amount: Annotated[int, Field(strict=True, ge=0, le=10**13)] = Field(
        default=0, description="fen to recover (recover only), at most funds_paid"
    )
    reason: Name = Field(description="why: kept with the decision")
    reviewer: Code | None = Field(
        default=None, description="the person deciding, kept beside the agency's client id"
    )


class DayGroupOut(BaseModel):
    """One visit type and scheme of a client's day."""

    visit_type: VisitType | None = Field(
        description="null with scheme null: what was committed before the split was recorded"
    )
    scheme: Scheme | None
    settlements: int
    reversals: int
    amounts: FundAmounts


class ClientDayOut(BaseModel):
    """What one hospital or pharmacy settled on the day (settled minus reversed)."""

    client_id: str
    name: str | None = Field(description="the registered name; null for a client since removed")
    kind: ClientKind | None
    settlements: int
    reversals: int
    amounts: FundAmounts
    groups: list[DayGroupOut] = Field(description="by visit type and scheme")


class VisitTypeDayOut(BaseModel):
    """Every client's day of one visit type, summed."""

    visit_type: VisitType | None = Field(description="null: committed before the split")
    settlements: int
    reversals: int
    amounts: FundAmounts


class DayTotalsOut(BaseModel):
    """What was settled on a day: in all, per visit type and per hospital or pharmacy.

    The figures a reconciliation compares (contract section 6): counts, and each reconciled
    fund settled that day minus what reversals that day gave back.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "date": "2026-03-09",
                "closed": False,
                "total": {
                    "settlements": 2,
                    "reversals": 0,
                    "amounts": RECONCILIATION_FUNDS_EXAMPLE,
                },
                "by_visit_type": [
                    {
                        "visit_type": "inpatient",
                        "settlements": 2,
                        "reversals": 0,
                        "amounts": RECONCILIATION_FUNDS_EXAMPLE,
                    }
                ],
                "clients": [
                    {
                        "client_id": "ZZH3",
                        "name": "郑州市第三人民医院",
                        "kind": "hospital",
                        "settlements": 2,
                        "reversals": 0,
                        "amounts": RECONCILIATION_FUNDS_EXAMPLE,
                        "groups": [
                            {
                                "visit_type": "inpatient",
                                "scheme": "employee",
                                "settlements": 2,
                                "reversals": 0,
                                "amounts": RECONCILIATION_FUNDS_EXAMPLE,
                            }
                        ],
                    }
                ],
            }
        }
    )

    date: str
    closed: bool = Field(description="the day has ended (Asia/Shanghai): its figures are final")
    total: DayFiguresOut
    by_visit_type: list[VisitTypeDayOut]
    clients: list[ClientDayOut] = Field(description="every hospital and pharmacy, by client id")


class DayRefusalsOut(BaseModel):
    """How many answers of each refusal code a day saw, every gateway process together."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "date": "2026-03-09",
                "total": 5,
                "by_code": {"UNMAPPED_CODES": 3, "UNAUTHENTICATED": 2},
            }
        }
    )

    date: str
    total: int
    by_code: dict[ErrorCode, int] = Field(description="each code answered, most frequent first")


class ConsoleLoginOut(BaseModel):
    """A one-time link that opens a console session in a browser."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "login_path": "/console/login/3q2S0m7Qe0nqk2nB7dT1hX8pV4yW9cF6aJ5rL0uZ1sE",
                "expires_in_seconds": 60,
            }
        }
    )

    login_path: str = Field(
        description="open the gateway's address followed by this path in a browser, once; "
        "`?next=/console/...` may be added to land on another page"
    )
    expires_in_seconds: int
