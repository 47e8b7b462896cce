"""The policy document of one (region, scheme, year): contract section 1, effects in domain.md."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StrictBool,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from onestop.domain.controls import Controls
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


def _no_repeats(values: tuple[Any, ...], what: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} '{value}' is listed twice")
        seen.add(value)


class OutpatientSpecial(_Document):
    """Outpatient special diseases (门诊特定病种) in the one-block form.

    ICD-10 prefixes, one per-visit deductible and ratio, no registration and no cap of its own.
    """

    diagnoses: tuple[Code, ...] = Field(min_length=1)
    ratio: Ratio
    deductible: Fen

    def covers(self, diagnoses: tuple[str, ...]) -> bool:
        """Whether any visit diagnosis starts with one of the listed prefixes."""
        return any(code.startswith(self.diagnoses) for code in diagnoses)


class SpecialDisease(_Document):
    """One registered chronic or special disease (门诊慢特病) of the list form (section 11)."""

    code: Code
    name: Name
    diagnoses: tuple[Code, ...] = Field(min_length=1)
    ratio: Ratio
    deductible: Fen
    annual_cap: Fen | None
    """What the basic fund pays for this disease in a year, within the shared cap; null: none."""
    requires_registration: StrictBool

    def covers(self, diagnoses: tuple[str, ...]) -> bool:
        """Whether any visit diagnosis starts with one of the listed prefixes."""
        return any(code.startswith(self.diagnoses) for code in diagnoses)


class SingleDisease(_Document):
    """A single-disease fixed price (单病种限价, section 12) of an inpatient stay."""

    code: Code
    name: Name
    diagnoses: tuple[Code, ...] = Field(min_length=1)
    """ICD-10 prefixes the stay's first diagnosis is matched against."""
    price: PositiveFen
    patient_ratio: Ratio


class OutOfRegion(_Document):
    """Care outside the member's region (异地就医, section 8): ratio reductions, pooling."""

    registered_ratio_reduction: Ratio
    unregistered_ratio_reduction: Ratio
    pooling: StrictBool
    """Whether general outpatient pooling pays out of region."""


class Referral(_Document):
    """Stays at these levels without a referral number have their ratio reduced (section 8)."""

    levels: tuple[HospitalLevel, ...] = Field(min_length=1)
    unreferred_ratio_reduction: Ratio

    @model_validator(mode="after")
    def _levels_once(self) -> Referral:
        _no_repeats(self.levels, "level")
        return self


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


class OutpatientAssistance(_Document):
    """Assistance terms of outpatient visits and pharmacy swipes (section 10).

    They count on their own year-to-date figures.
    """

    threshold: Fen
    ratio: Ratio
    annual_cap: Fen | None


class Assistance(_Document):
    """Medical assistance for one assistance category (or ``general``: members with none)."""

    threshold: Fen
    ratio: Ratio
    annual_cap: Fen | None
    outpatient: OutpatientAssistance | None = None
    """Terms of outpatient, outpatient-special and pharmacy visits; absent: these terms."""


GENERAL_ASSISTANCE = "general"
"""The ``assistance`` key for members with no assistance category (一般对象, section 10)."""

_ASSISTANCE_KEYS = (*(category.value for category in AssistanceCategory), GENERAL_ASSISTANCE)


def _assistance_key(value: str) -> str:
    if value not in _ASSISTANCE_KEYS:
        raise ValueError(f"must be one of {', '.join(_ASSISTANCE_KEYS)}")
    return value


AssistanceKey = Annotated[str, Strict(), AfterValidator(_assistance_key)]
"""A key of the ``assistance`` table: an assistance category, or ``general``."""


Supplementary = Annotated[BeyondCap | CriticalIllness, Field(discriminator="kind")]


def _special_form(value: Any) -> str | None:
    if isinstance(value, dict | OutpatientSpecial):
        return "one_block"
    if isinstance(value, list | tuple):
        return "list"
    return None


SpecialDiseases = Annotated[
    Annotated[OutpatientSpecial, Tag("one_block")]
    | Annotated[tuple[SpecialDisease, ...], Tag("list")],
    Discriminator(
        _special_form,
        custom_error_type="invalid_form",
        custom_error_message="must be an object (one block) or a list of diseases",
    ),
]
"""``outpatient_special``: one block, or a list of diseases; a problem's path names the form
(``outpatient_special.list.0.ratio``)."""


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
    outpatient_special: SpecialDiseases | None = None
    """One block (round 1), or a list of registered diseases (domain section 11)."""
    outpatient_pooling: OutpatientPooling | None = None
    personal_account: PersonalAccount | None = None
    supplementary: Supplementary | None = None
    assistance: dict[AssistanceKey, Assistance] = Field(default_factory=dict)
    single_disease: tuple[SingleDisease, ...] = ()
    """Single-disease fixed prices of inpatient stays (domain section 12)."""
    out_of_region: OutOfRegion | None = None
    referral: Referral | None = None
    effective_from: IsoDate | None = None
    """The first day this version applies (domain section 13); absent means January 1."""
    controls: Controls | None = None
    """Checks across the member's visits and what each finding does (domain section 18)."""

    @model_validator(mode="after")
    def _one_cap_per_year_count(self) -> Policy:
        years = [step.from_years for step in self.cap_by_continuous_years]
        if len(set(years)) != len(years):
            raise ValueError("cap_by_continuous_years: each from_years at most once")
        return self

    @field_validator("outpatient_special")
    @classmethod
    def _diseases_once(
        cls, value: OutpatientSpecial | tuple[SpecialDisease, ...] | None
    ) -> OutpatientSpecial | tuple[SpecialDisease, ...] | None:
        if isinstance(value, tuple):
            if not value:
                raise ValueError("a list of diseases lists at least one (or leave the block out)")
            _no_repeats(tuple(disease.code for disease in value), "disease code")
        return value

    @field_validator("single_disease")
    @classmethod
    def _single_diseases_once(cls, value: tuple[SingleDisease, ...]) -> tuple[SingleDisease, ...]:
        _no_repeats(tuple(disease.code for disease in value), "disease code")
        return value

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
    for entry in document["assistance"].values():
        if entry.get("outpatient") is None:
            del entry["outpatient"]
    return document


_ADDED_FIELDS = (
    "cap_by_continuous_years",
    "effective_from",
    "single_disease",
    "out_of_region",
    "referral",
    "controls",
)
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
