"""The walk-through: realistic discharges and swipes a cashier settles in the demo region."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from onestop.tooling.demo.regions import DEMO_CLIENTS, DemoClient, his_code


@dataclass(frozen=True, slots=True)
class Scenario:
    """One request at one window, with what the audience should notice."""

    title: str
    client_id: str
    body: dict[str, Any]


def _client(client_id: str) -> DemoClient:
    return next(client for client in DEMO_CLIENTS if client.client_id == client_id)


class _Bill:
    """Builds a bill line by line in the client's own HIS codes."""

    def __init__(self, client_id: str) -> None:
        self.client = _client(client_id)
        self.lines: list[dict[str, Any]] = []

    def add(
        self,
        catalog_code: str,
        quantity: str,
        unit_price: int,
        day: date,
        *,
        per_tablet: bool = False,
        his: str | None = None,
    ) -> _Bill:
        amount = int((Decimal(quantity) * unit_price).to_integral_value())
        self.lines.append(
            {
                "line_no": len(self.lines) + 1,
                "his_code": his or his_code(self.client, catalog_code, per_tablet=per_tablet),
                "quantity": quantity,
                "unit_price": unit_price,
                "amount": amount,
                "date": day.isoformat(),
            }
        )
        return self

    def daily(self, admission: date, days: int, items: list[tuple[str, str, int]]) -> _Bill:
        for offset in range(days):
            for catalog_code, quantity, unit_price in items:
                self.add(catalog_code, quantity, unit_price, admission + timedelta(days=offset))
        return self


def _inpatient(
    visit_id: str, member_id: str, admission: date, days: int, bill: _Bill, diagnoses: list[str]
) -> dict[str, Any]:
    return {
        "visit_id": visit_id,
        "member_id": member_id,
        "visit_type": "inpatient",
        "admission_date": admission.isoformat(),
        "discharge_date": (admission + timedelta(days=days - 1)).isoformat(),
        "diagnoses": diagnoses,
        "use_personal_account": False,
        "lines": bill.lines,
    }


def _single_day(
    visit_id: str,
    member_id: str,
    visit_type: str,
    day: date,
    bill: _Bill,
    diagnoses: list[str],
    *,
    use_account: bool = False,
) -> dict[str, Any]:
    return {
        "visit_id": visit_id,
        "member_id": member_id,
        "visit_type": visit_type,
        "service_date": day.isoformat(),
        "diagnoses": diagnoses,
        "use_personal_account": use_account,
        "lines": bill.lines,
    }


def scenarios() -> list[Scenario]:
    """The demo's requests, in the order the walk-through settles them."""
    ward_day = [
        ("FA02", "1", 4000),
        ("FA05", "1", 3000),
        ("FA01", "12", 500),
        ("XA02", "2", 650),
        ("FA06", "2", 450),
        ("CB02", "2", 250),
    ]

    stent_admission = date(2026, 3, 2)
    stent = _Bill("ZZH3").daily(stent_admission, 20, ward_day)
    stent.add("FA11", "1", 5_200_000, stent_admission + timedelta(days=1))
    stent.add("CB01", "2", 95_000, stent_admission + timedelta(days=1))
    stent.add("FA09", "1", 150_000, stent_admission + timedelta(days=1))
    stent.add("XB06", "6", 3_200, stent_admission + timedelta(days=19))
    stent.add("XC08", "4", 52_000, stent_admission + timedelta(days=2))

    appendix_admission = date(2026, 4, 8)
    appendix = _Bill("ZZH3").daily(appendix_admission, 12, ward_day)
    appendix.add("FA03", "1", 380_000, appendix_admission + timedelta(days=1))
    appendix.add("FA09", "1", 120_000, appendix_admission + timedelta(days=1))
    appendix.add("FA07", "2", 18_000, appendix_admission)
    appendix.add("XA03", "3", 2_600, appendix_admission + timedelta(days=2))
    appendix.add("XB02", "15", 520, appendix_admission + timedelta(days=10), per_tablet=True)
    appendix.add("CC03", "1", 26_000, appendix_admission + timedelta(days=1))

    waiting_admission = date(2026, 11, 3)
    waiting = _Bill("GYH3").daily(waiting_admission, 4, ward_day)
    waiting.add("FA08", "2", 1_800, waiting_admission)

    tekun_admission = date(2026, 6, 1)
    tekun = _Bill("GYH3").daily(tekun_admission, 28, ward_day)
    tekun.add("XB05", "12", 78_000, tekun_admission + timedelta(days=3))
    tekun.add("FA07", "3", 18_000, tekun_admission)
    tekun.add("XB07", "20", 8_500, tekun_admission + timedelta(days=10))

    fugu_day = date(2026, 5, 20)
    fugu = _Bill("FGT1").add("FA10", "1", 800, fugu_day).add("XA01", "2", 2_350, fugu_day)
    fugu.add("FA08", "1", 1_500, fugu_day)

    swipe_day = date(2026, 10, 4)
    swipe = _Bill("ZZP1").add("XA01", "1", 2_350, swipe_day).add("XC03", "1", 9_900, swipe_day)
    swipe.add("XB06", "2", 3_400, swipe_day)

    away_admission = date(2026, 9, 14)
    away = _Bill("GYH3").daily(away_admission, 7, ward_day)
    away.add("FA08", "2", 1_800, away_admission).add("XA03", "4", 2_600, away_admission)

    dialysis_day = date(2026, 10, 9)
    dialysis = _Bill("ZZH3").add("FA04", "1", 45_000, dialysis_day)
    dialysis.add("XA02", "2", 650, dialysis_day).add("CB02", "2", 250, dialysis_day)

    fixed_admission = date(2026, 8, 3)
    fixed = _Bill("FGH2").daily(fixed_admission, 5, ward_day)
    fixed.add("FA03", "1", 380_000, fixed_admission).add("FA09", "1", 120_000, fixed_admission)
    fixed.add("CC03", "1", 26_000, fixed_admission)

    # Controls across visits (Zhengzhou's policy runs them in the demo, domain section 18).
    readmission = appendix_admission + timedelta(days=11)  # the day of her discharge
    again = _Bill("ZZH3").daily(readmission, 4, ward_day)
    again.add("FA07", "1", 18_000, readmission).add("XA03", "2", 2_600, readmission)
    twice = _Bill("ZZC1").add("FA04", "1", 45_000, dialysis_day)
    twice.add("XA02", "2", 650, dialysis_day).add("CB02", "2", 250, dialysis_day)

    unmapped_day = date(2026, 10, 12)
    unmapped = _Bill("ZZC1").add("FA10", "1", 900, unmapped_day)
    unmapped.add("XA01", "1", 2_350, unmapped_day, his="JS-NEW-0417")

    return [
        Scenario(
            "Coronary stent at a level-3 hospital: the bill passes the basic fund's cap "
            "and voluntary supplementary insurance pays beyond it.",
            "ZZH3",
            _inpatient("RMYY2026030201", "ZZ000001", stent_admission, 20, stent, ["I25.1"]),
        ),
        Scenario(
            "A dibao patient's appendectomy: medical assistance pays 70 % of the "
            "in-scope personal share above 3,000 yuan, at the same window.",
            "ZZH3",
            _inpatient("RMYY2026040801", "ZZ000002", appendix_admission, 12, appendix, ["K35.8"]),
        ),
        Scenario(
            "Enrolled on 1 September with a six-month waiting period: the funds pay nothing yet.",
            "GYH3",
            _inpatient("SY12026110301", "GY000001", waiting_admission, 4, waiting, ["J18.9"]),
        ),
        Scenario(
            "A tekun patient's chemotherapy: halved deductible, critical illness from a "
            "halved threshold, then assistance at 100 %.",
            "GYH3",
            _inpatient("SY12026060101", "GY000002", tekun_admission, 28, tekun, ["C34.9"]),
        ),
        Scenario(
            "A township outpatient visit in Fugu: outpatient pooling pays half.",
            "FGT1",
            _single_day("XM2026052001", "FG000001", "outpatient", fugu_day, fugu, ["J06.9"]),
        ),
        Scenario(
            "A pharmacy card swipe: the personal account pays the in-scope drugs, cash "
            "the imported nutrition.",
            "ZZP1",
            _single_day("KT2026100401", "ZZ000001", "pharmacy", swipe_day, swipe, []),
        ),
        Scenario(
            "A Zhengzhou patient treated in Guiyang, registered for care there: her own plan "
            "pays, 5 points lower (out of region, 异地就医).",
            "GYH3",
            _inpatient("SY12026091401", "ZZ000003", away_admission, 7, away, ["J18.9"]),
        ),
        Scenario(
            "A registered dialysis patient (门诊慢特病 MT002): 80 % within the disease's own "
            "20,000-yuan cap, counted apart in the year's figures.",
            "ZZH3",
            _single_day(
                "RMYY2026100901",
                "ZZ000004",
                "outpatient_special",
                dialysis_day,
                dialysis,
                ["N18.5"],
            ),
        ),
        Scenario(
            "An appendectomy in Fugu at its single-disease price of 4,500 yuan: the patient "
            "pays 30 %, the hospital bears what the bill exceeds the price by.",
            "FGH2",
            _inpatient("FGX2026080301", "FG000002", fixed_admission, 5, fixed, ["K35.8"]),
        ),
        Scenario(
            "李秀英 is admitted again on the day of her discharge, for the same appendicitis: "
            "settled, and flagged for the agency's review as a possible split stay (分解住院).",
            "ZZH3",
            _inpatient("RMYY2026041901", "ZZ000002", readmission, 4, again, ["K35.8"]),
        ),
        Scenario(
            "A second hospital bills 周磊's dialysis session of 9 October again: refused as a "
            "duplicate claim (重复报销), nothing settled.",
            "ZZC1",
            _single_day(
                "JS2026100901", "ZZ000004", "outpatient_special", dialysis_day, twice, ["N18.5"]
            ),
        ),
        Scenario(
            "A community centre bills a code it never mapped: refused, nothing settled.",
            "ZZC1",
            _single_day(
                "JS2026101201", "ZZ000001", "outpatient", unmapped_day, unmapped, ["J06.9"]
            ),
        ),
    ]
