"""The policy document of one (region, scheme, year): contract section 1, effects in domain.md."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from onestop.domain.documents import validate_document
from onestop.domain.types import (
    AssistanceCategory,
    Code,
    Fen,
    HospitalLevel,
    IsoDate,
    Name,
    PositiveFen,
    Ratio,
    Scheme,
)

ValueT = TypeVar("ValueT")


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelTable(_Document, Generic[ValueT]):
    """One value for every hospital level; none may be missing."""

    community: ValueT
    level1: ValueT
    level2: ValueT
    level3: ValueT

    def for_level(self, level: HospitalLevel) -> ValueT:
        """The value for ``level``."""
        value: ValueT = getattr(self, level.value)
        return value


class Inpatient(_Document):
    """Inpatient rules of the basic fund."""

    deductible: LevelTable[Fen]
    ratio: LevelTable[Ratio]
    halved_deductible_groups: tuple[Code, ...] = ()


class ContinuousBonus(_Document):
    """Continuous-enrolment bonus: ``step`` a year from year ``from_years``, at most ``max``."""

    from_years: Annotated[int, Strict(), Field(ge=1, le=100)]
    step: Ratio
    max: Ratio


class CapStep(_Document):
    """An annual cap that replaces the policy's after ``from_years`` continuous years (s9)."""

    from_years: Annotated[int, Strict(), Field(ge=1, le=100)]
    annual_cap: Fen


class OutpatientSpecial(_Document):
    """Outpatient special diseases (门诊特定病种): ICD-10 prefixes, per-visit deductible, ratio."""

    diagnoses: tuple[Code, ...] = Field(min_length=1)
    ratio: Ratio
    deductible: Fen

    def covers(self, diagnoses: tuple[str, ...]) -> bool:
        """Whether any visit diagnosis starts with one of the listed prefixes."""
        return any(code.startswith(self.diagnoses) for code in diagnoses)


class OutpatientPooling(_Document):
    """General outpatient pooling (门诊统筹): ratio and its own annual cap."""

    ratio: Ratio
    annual_cap: Fen


class PersonalAccount(_Document):
    """Personal account rules."""

    pays_self_pay_items: StrictBool = False


class BeyondCap(_Document):
    """Supplementary insurance paying, at the basic ratio, what the basic cap cut off."""

    kind: Literal["beyond_cap"]
    requires_enrollment: StrictBool
    annual_cap: Fen


class Band(_Document):
    """One band of critical-illness payment; ``width: null`` means no end (last band only)."""

    width: PositiveFen | None
    ratio: Ratio


class Hardship(_Document):
    """Better critical-illness terms for hardship groups."""

    groups: tuple[Code, ...]
    threshold_factor: Ratio
    ratio_bonus: Ratio
    uncapped: StrictBool


class CriticalIllness(_Document):
    """Critical illness insurance (大病保险) over the year's in-scope personal share."""

    kind: Literal["critical_illness"]
    requires_enrollment: StrictBool
    threshold: Fen
    bands: tuple[Band, ...] = Field(min_length=1)
    annual_cap: Fen | None
    hardship: Hardship | None = None

    @model_validator(mode="after")
    def _only_last_band_open(self) -> CriticalIllness:
        for index, band in enumerate(self.bands[:-1]):
            if band.width is None:
                raise ValueError(f"bands.{index}: only the last band may have width null")
        return self


class Assistance(_Document):
    """Medical assistance for one assistance category."""

    threshold: Fen
    ratio: Ratio
    annual_cap: Fen | None


Supplementary = Annotated[BeyondCap | CriticalIllness, Field(discriminator="kind")]


class Policy(_Document):
    """The policy of one region, scheme and year.

    Optional blocks may be absent; unknown keys anywhere are an error.
    """

    region: Code
    scheme: Scheme
    year: Annotated[int, Strict(), Field(ge=2000, le=2100)]
    name: Name
    inpatient: Inpatient
    annual_cap: Fen
    cap_by_continuous_years: tuple[CapStep, ...] = ()
    """Higher caps after continuous years (domain section 9); the continuous bonus multiplies
    whichever cap applies."""
    continuous_bonus: ContinuousBonus | None = None
    waiting_period_months: Annotated[int, Strict(), Field(ge=0, le=120)] = 0
    outpatient_special: OutpatientSpecial | None = None
    outpatient_pooling: OutpatientPooling | None = None
    personal_account: PersonalAccount | None = None
    supplementary: Supplementary | None = None
    assistance: dict[AssistanceCategory, Assistance] = Field(default_factory=dict)
    effective_from: IsoDate | None = None
    """The first day this version applies (domain section 13); absent means January 1."""

    @model_validator(mode="after")
    def _one_cap_per_year_count(self) -> Policy:
        years = [step.from_years for step in self.cap_by_continuous_years]
        if len(set(years)) != len(years):
            raise ValueError("cap_by_continuous_years: each from_years at most once")
        return self

    @field_validator("effective_from")
    @classmethod
    def _effective_within_its_year(cls, value: date | None, info: ValidationInfo) -> date | None:
        year = info.data.get("year")
        if value is not None and year is not None and value.year != year:
            raise ValueError(
                f"{value} is not in the policy's year {year}: a version takes effect within "
                "its own year (a new year is a new policy document)"
            )
        return value

    @property
    def in_force_from(self) -> date:
        """The first day this version applies: ``effective_from``, or January 1 of ``year``."""
        return self.effective_from or date(self.year, 1, 1)

    def annual_cap_after(self, years: int) -> int:
        """The annual cap, before the continuous bonus, after ``years`` of continuous enrolment.

        The step with the largest ``from_years`` at most ``years``; without one, ``annual_cap``.
        """
        reached = [step for step in self.cap_by_continuous_years if step.from_years <= years]
        return (
            max(reached, key=lambda step: step.from_years).annual_cap
            if reached
            else (self.annual_cap)
        )

    @property
    def key(self) -> tuple[str, Scheme, int]:
        """The identity of this policy: (region, scheme, year)."""
        return (self.region, self.scheme, self.year)

    @property
    def pays_self_pay_items(self) -> bool:
        """Whether the personal account also pays C items and amounts over price caps."""
        return self.personal_account is not None and self.personal_account.pays_self_pay_items


def parse_policy(data: Any) -> Policy:
    """Validate a parsed policy document.

    Raises:
        InvalidDocument: listing every field at fault by its path.
    """
    return validate_document(Policy, data, what="policy")


def policy_to_document(policy: Policy) -> dict[str, Any]:
    """The policy as the contract's JSON document (ratios as decimal strings, dates as text)."""
    document: dict[str, Any] = _decimals_as_text(policy.model_dump(mode="python"))
    for name in _ADDED_FIELDS:
        if not document.get(name):
            # A policy that does not use a round-2 field is written as before it existed:
            # stored documents and their versions do not change.
            del document[name]
    return document


_ADDED_FIELDS = ("cap_by_continuous_years", "effective_from")
"""Optional fields added after round 1, left out of a document that does not use them."""


def _decimals_as_text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _decimals_as_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_decimals_as_text(item) for item in value]
    return value
