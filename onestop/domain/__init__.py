"""The settlement domain: pure rules and values, no I/O, no transports, no settings.

Everything here can be used with plain values; the adjudicator and the gateway are thin layers
of storage and transport around it.
"""

from onestop.domain.bill import (
    MAX_BILL_LINES,
    BillLine,
    CodedLine,
    Visit,
    VisitRequest,
    check_client_may_settle,
)
from onestop.domain.catalog import CatalogItem, parse_catalog_csv, parse_catalog_items
from onestop.domain.eligibility import Entitlement, entitlement, require_active
from onestop.domain.engine import Adjudication, Amounts, LineSplit, Note, adjudicate
from onestop.domain.errors import (
    BillRejected,
    DomainError,
    ErrorCode,
    Forbidden,
    InvalidDocument,
    MalformedDocument,
    MemberNotEligible,
    NoPolicy,
    NotFound,
    OverlappingStay,
    Problem,
    RiskyMappingChange,
    UnknownMember,
    VisitAlreadySettled,
    VisitNotAllowed,
)
from onestop.domain.mapping import MappingRow, MappingTable, map_bill, parse_mapping_csv
from onestop.domain.member import Member, mask_id_number, mask_name, parse_members_jsonl
from onestop.domain.money import round_half_up
from onestop.domain.policy import Policy, parse_policy
from onestop.domain.state import StateDelta, YearToDate, YearToDateView
from onestop.domain.stays import stays_overlap
from onestop.domain.types import (
    AssistanceCategory,
    Category,
    ClientKind,
    HospitalLevel,
    ItemKind,
    MemberStatus,
    Scheme,
    VisitType,
)

__all__ = [
    "MAX_BILL_LINES",
    "Adjudication",
    "Amounts",
    "AssistanceCategory",
    "BillLine",
    "BillRejected",
    "CatalogItem",
    "Category",
    "ClientKind",
    "CodedLine",
    "DomainError",
    "Entitlement",
    "ErrorCode",
    "Forbidden",
    "HospitalLevel",
    "InvalidDocument",
    "ItemKind",
    "LineSplit",
    "MalformedDocument",
    "MappingRow",
    "MappingTable",
    "Member",
    "MemberNotEligible",
    "MemberStatus",
    "NoPolicy",
    "NotFound",
    "Note",
    "OverlappingStay",
    "Policy",
    "Problem",
    "RiskyMappingChange",
    "Scheme",
    "StateDelta",
    "UnknownMember",
    "Visit",
    "VisitAlreadySettled",
    "VisitNotAllowed",
    "VisitRequest",
    "VisitType",
    "YearToDate",
    "YearToDateView",
    "adjudicate",
    "check_client_may_settle",
    "entitlement",
    "map_bill",
    "mask_id_number",
    "mask_name",
    "parse_catalog_csv",
    "parse_catalog_items",
    "parse_mapping_csv",
    "parse_members_jsonl",
    "parse_policy",
    "require_active",
    "round_half_up",
    "stays_overlap",
]
