"""The national code tables: profiles, schemes, fund types."""

from __future__ import annotations

from onestop.domain.types import Scheme, VisitType
from onestop.national.codes import (
    INSUTYPE,
    SCHEME_OF_INSUTYPE,
    Profile,
    med_types_of,
    visit_type_of,
)


def test_a_province_profile_chooses_its_medical_types() -> None:
    assert visit_type_of("21", Profile.NATIONAL) is VisitType.INPATIENT
    assert visit_type_of("2101", Profile.NATIONAL) is None
    assert visit_type_of("2101", Profile.HUNAN) is VisitType.INPATIENT
    assert visit_type_of("16", Profile.HUNAN) is VisitType.OUTPATIENT_SPECIAL
    assert visit_type_of("51", Profile.HUNAN) is None  # maternity: another scheme


def test_schemes_and_insurance_types_map_both_ways() -> None:
    assert INSUTYPE[Scheme.RESIDENT] == "390"
    assert INSUTYPE[Scheme.EMPLOYEE] == "310"
    assert {SCHEME_OF_INSUTYPE[code] for code in INSUTYPE.values()} == set(Scheme)
    assert med_types_of(VisitType.PHARMACY, Profile.NATIONAL) == ["41"]
