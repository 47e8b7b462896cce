"""The national interface's code tables, in one place (docs/spec/national.md section 8).

Codes the platform leaves to provinces (``med_type`` above all) have named variants; the
gateway's settings pick one (``ONESTOP_GATEWAY_NATIONAL_PROFILE``). Where a code is not
confirmed by the sources national.md read, the choice is onestop's and docs/national.md says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from onestop.domain.catalog import CatalogItem
from onestop.domain.types import Category, FeeCategory, ItemKind, Scheme, VisitType


class Profile(StrEnum):
    """A province's dialect of the codes that vary (national.md section 10)."""

    NATIONAL = "national"
    """The codes two or more provinces agree on."""
    HUNAN = "hunan"
    """Hunan: ``2101`` for ordinary inpatient care, ``15`` 门诊统筹, ``16`` 门诊特殊病."""


_COMMON_MED_TYPES: dict[str, VisitType] = {
    "11": VisitType.OUTPATIENT,  # 普通门诊
    "12": VisitType.OUTPATIENT,  # 门诊挂号
    "13": VisitType.OUTPATIENT,  # 急诊
    "14": VisitType.OUTPATIENT_SPECIAL,  # 门诊慢特病
    "21": VisitType.INPATIENT,  # 普通住院
    "22": VisitType.INPATIENT,  # 外伤住院
    "23": VisitType.INPATIENT,  # 转外诊治住院
    "24": VisitType.INPATIENT,  # 急诊转住院
    "41": VisitType.PHARMACY,  # 定点药店购药
}

MED_TYPES: Mapping[Profile, Mapping[str, VisitType]] = MappingProxyType(
    {
        Profile.NATIONAL: MappingProxyType(dict(_COMMON_MED_TYPES)),
        Profile.HUNAN: MappingProxyType(
            {
                **_COMMON_MED_TYPES,
                "2101": VisitType.INPATIENT,
                "15": VisitType.OUTPATIENT,
                "16": VisitType.OUTPATIENT_SPECIAL,
            }
        ),
    }
)
"""``med_type`` (医疗类别) -> the visit type onestop settles, per profile. Maternity (51-53)
and work injury are other schemes onestop does not settle: refused, naming the code."""


def visit_type_of(med_type: str, profile: Profile) -> VisitType | None:
    """The visit type of a ``med_type`` in a profile, ``None`` when onestop does not serve it."""
    return MED_TYPES[profile].get(med_type)


def med_types_of(visit_type: VisitType, profile: Profile) -> list[str]:
    """Every ``med_type`` a profile maps to ``visit_type`` (for messages and docs)."""
    return [code for code, kind in MED_TYPES[profile].items() if kind is visit_type]


INSUTYPE: Mapping[Scheme, str] = MappingProxyType({Scheme.RESIDENT: "390", Scheme.EMPLOYEE: "310"})
"""``insutype`` (险种类型) of each scheme: 390 城乡居民基本医疗保险, 310 职工基本医疗保险."""

SCHEME_OF_INSUTYPE: Mapping[str, Scheme] = MappingProxyType(
    {code: scheme for scheme, code in INSUTYPE.items()}
)


class CertType(StrEnum):
    """``mdtrt_cert_type`` (就诊凭证类型) and what ``mdtrt_cert_no`` carries."""

    E_VOUCHER = "01"
    """医保电子凭证: a token only the national platform resolves; served only with the person's
    id number in ``certno``."""
    ID_NUMBER = "02"
    """居民身份证: the id number, looked up by its blind index."""
    CARD = "03"
    """社会保障卡: its number is the holder's 社会保障号码, the citizen id number (GB 11643):
    looked up as the id number (``card_sn``, the chip's serial, is not needed)."""


PSN_CERT_TYPE_ID_CARD = "01"
"""``psn_cert_type`` 居民身份证（户口簿）."""

GEND: Mapping[str, str] = MappingProxyType({"M": "1", "F": "2"})
"""``gend`` (性别) of onestop's sex: 1 男, 2 女."""

PSN_TYPE: Mapping[Scheme, str] = MappingProxyType(
    {Scheme.EMPLOYEE: "1101", Scheme.RESIDENT: "1501"}
)
"""``psn_type`` (人员类别): 1101 职工在职, 1501 普通居民(成年). onestop keeps no finer person
category; a province's own codes are not derived."""

CHRGITM_LV: Mapping[Category, str] = MappingProxyType(
    {Category.A: "01", Category.B: "02", Category.C: "03"}
)
"""``chrgitm_lv`` (收费项目等级): 01 甲类, 02 乙类, 03 丙类."""

MED_CHRGITM_TYPE: Mapping[ItemKind, FeeCategory] = MappingProxyType(
    {
        ItemKind.DRUG: FeeCategory.WESTERN_DRUG,
        ItemKind.MATERIAL: FeeCategory.MATERIAL,
        ItemKind.SERVICE: FeeCategory.OTHER,
    }
)
"""``med_chrgitm_type`` (医疗收费项目类别) by the catalog item's kind, for an item whose catalog
row leaves the column empty: 09 西药费, 08 卫生材料费, 14 其他费."""


def med_chrgitm_type_of(item: CatalogItem) -> FeeCategory:
    """The item's fee category: its catalog's ``med_chrgitm_type``, else its kind's."""
    return item.med_chrgitm_type or MED_CHRGITM_TYPE[item.kind]


CLR_TYPE: Mapping[VisitType, str] = MappingProxyType(
    {
        VisitType.OUTPATIENT: "11",
        VisitType.OUTPATIENT_SPECIAL: "11",
        VisitType.INPATIENT: "21",
        VisitType.PHARMACY: "41",
    }
)
"""``clr_type`` (清算类别): 11 outpatient, 21 inpatient (both seen); 41 for a pharmacy is
onestop's choice (national.md: not confirmed)."""

CLR_WAY = "1"
"""``clr_way`` (清算方式): the value seen for ordinary settlements; onestop settles one way."""


class FundPayType(StrEnum):
    """``fund_pay_type`` (基金支付类型) of each ``setldetail`` row."""

    EMPLOYEE_POOL = "310100"
    EMPLOYEE_ACCOUNT = "310200"
    LARGE_AMOUNT = "330100"
    RESIDENT_POOL = "390100"
    RESIDENT_CRITICAL_ILLNESS = "390200"
    ASSISTANCE = "610100"
    HOSPITAL_PART = "999996"


FUND_PAY_TYPE_NAMES: Mapping[FundPayType, str] = MappingProxyType(
    {
        FundPayType.EMPLOYEE_POOL: "职工基本医疗保险统筹基金",
        FundPayType.EMPLOYEE_ACCOUNT: "职工基本医疗保险个人账户基金",
        FundPayType.LARGE_AMOUNT: "大额医疗费用补助基金",
        FundPayType.RESIDENT_POOL: "城乡居民基本医疗保险基金",
        FundPayType.RESIDENT_CRITICAL_ILLNESS: "城乡居民大病医疗保险基金",
        FundPayType.ASSISTANCE: "医疗救助基金",
        FundPayType.HOSPITAL_PART: "医院垫付基金",
    }
)

POOL_FUND: Mapping[Scheme, FundPayType] = MappingProxyType(
    {Scheme.EMPLOYEE: FundPayType.EMPLOYEE_POOL, Scheme.RESIDENT: FundPayType.RESIDENT_POOL}
)
"""The basic fund's ``fund_pay_type`` per scheme."""

SUPPLEMENTARY_FUND: Mapping[Scheme, FundPayType] = MappingProxyType(
    {
        Scheme.EMPLOYEE: FundPayType.LARGE_AMOUNT,
        Scheme.RESIDENT: FundPayType.RESIDENT_CRITICAL_ILLNESS,
    }
)
"""The supplementary layer's ``fund_pay_type`` per scheme (``hifob_pay`` / ``hifmi_pay``)."""

LIST_TYPE: Mapping[ItemKind, str] = MappingProxyType(
    {ItemKind.DRUG: "101", ItemKind.SERVICE: "201", ItemKind.MATERIAL: "301"}
)
"""``list_type`` (目录类别) by the item's kind: 101 西药, 201 医疗服务项目, 301 医用材料.
onestop's catalog does not tell a Chinese patent medicine (102) from a western drug."""

ACCT_USED = {"0": False, "1": True}
"""``acct_used_flag``: 0 no, 1 yes."""

OPTER_TYPES = frozenset({"1", "2", "3"})
"""``opter_type``: 1 经办人, 2 自助终端, 3 移动终端."""
