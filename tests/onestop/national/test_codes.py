"""The national code tables: profiles, schemes, fund types."""

from __future__ import annotations

from onestop.domain.catalog import CatalogItem
from onestop.domain.types import FeeCategory, Scheme, VisitType
from onestop.national.codes import (
    INSUTYPE,
    SCHEME_OF_INSUTYPE,
    Profile,
    med_chrgitm_type_of,
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


def test_an_items_fee_category_is_its_own_else_its_kinds() -> None:
    bed = CatalogItem(
        code="FA02", name="床位费", kind="service", category="A", unit="day", med_chrgitm_type="01"
    )
    assert med_chrgitm_type_of(bed) is FeeCategory.BED
    assert med_chrgitm_type_of(bed.model_copy(update={"med_chrgitm_type": None})) is (
        FeeCategory.OTHER
    )
    drug = CatalogItem(code="XA01", name="阿莫西林胶囊", kind="drug", category="A", unit="box")
    assert med_chrgitm_type_of(drug) is FeeCategory.WESTERN_DRUG
