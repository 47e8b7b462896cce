"""Sign-in, the person by certificate, the benefit check (9001, 1101, 2001)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from gateway.national.base import (
    Call,
    NationalBase,
    Output,
    med_type_refusal,
    person_of,
)
from onestop.domain.errors import DomainError
from onestop.domain.types import Scheme
from onestop.national.amounts import (
    yuan,
)
from onestop.national.codes import (
    INSUTYPE,
    POOL_FUND,
    CertType,
    visit_type_of,
)
from onestop.national.envelope import (
    NationalRefusal,
    national_datetime,
    node,
    parse_datetime,
    refusal_of,
    required_text,
    text_field,
)
from onestop.settlement.v1 import adjudicator_pb2 as pb


class People(NationalBase):
    """Who the patient is and what they are entitled to."""

    async def _sign_in(self, call: Call) -> Output:
        sign_in = node(call.input, "signIn")
        required_text(sign_in, "opter_no", "input.signIn", 20)
        sign_no = hashlib.sha256(
            f"{call.client.client_id}\x1f{call.envelope.opter}\x1f"
            f"{national_datetime(call.received_ms)[:10]}".encode()
        ).hexdigest()[:20]
        return {
            "signinoutb": {"sign_time": national_datetime(call.received_ms), "sign_no": sign_no}
        }, None

    async def _person_by_certificate(self, call: Call) -> pb.EligibilityAnswer:
        data = node(call.input, "data")
        cert_type = required_text(data, "mdtrt_cert_type", "input.data", 3)
        cert_no = required_text(data, "mdtrt_cert_no", "input.data", 50)
        certified = text_field(data, "certno", "input.data", max_length=50)
        if cert_type == CertType.E_VOUCHER:
            # The e-voucher's token is resolved by the national platform only; a HIS that read
            # the person's id number with it may send it in certno (psn_cert_type 01).
            if certified is None or data.get("psn_cert_type") not in (None, "", "01"):
                raise NationalRefusal(
                    "input.data.mdtrt_cert_type: an e-voucher (01) is resolved only by the "
                    "national platform; send the id number (02), the social security card's "
                    "number (03), or the person's id number in certno with psn_cert_type 01"
                )
            cert_no = certified
        elif cert_type not in (CertType.ID_NUMBER, CertType.CARD):
            raise NationalRefusal(f"input.data.mdtrt_cert_type: {cert_type} is not 01, 02 or 03")
        day = (
            parse_datetime(data["begntime"], "input.data.begntime").date()
            if data.get("begntime")
            else datetime.fromisoformat(national_datetime(call.received_ms)).date()
        )
        try:
            return await self.gateway.adjudicator.lookup(cert_no, day, call.client.client_id)
        except DomainError as error:
            raise refusal_of(error) from None

    async def _person_info(self, call: Call) -> Output:
        found = await self._person_by_certificate(call)
        scheme = Scheme(found.scheme)
        person = person_of(found)
        suspended = found.status != "active"
        return {
            "baseinfo": {
                "psn_no": found.member_id,
                "psn_cert_type": "01",
                "certno": person.certno,
                "psn_name": person.psn_name,
                "gend": person.gend,
                "naty": None,
                "brdy": person.brdy,
                "age": None,
            },
            "insuinfo": [
                {
                    "balc": yuan(found.personal_account_balance),
                    "insutype": INSUTYPE[scheme],
                    "psn_type": person.psn_type,
                    "psn_insu_stas": "4" if suspended else "1",
                    "psn_insu_date": found.enrolled_since or None,
                    "paus_insu_date": None,
                    "cvlserv_flag": "0",
                    "insuplc_admdvs": found.region,
                    "emp_name": None,
                }
            ],
            "idetinfo": [],
        }, None

    async def _benefits(self, call: Call) -> Output:
        data = node(call.input, "data")
        member_id = required_text(data, "psn_no", "input.data")
        begin = parse_datetime(data.get("begntime"), "input.data.begntime")
        med_type = required_text(data, "med_type", "input.data", 6)
        if visit_type_of(med_type, self.profile) is None:
            raise NationalRefusal(med_type_refusal("input.data.med_type", med_type))
        found = await self._member(call, member_id, begin.date())
        self._check_insutype(data, "input.data", found)
        entitled = found.status == "active" and not found.in_waiting_period
        reason = None
        if found.status != "active":
            reason = f"member status {found.status}"
        elif found.in_waiting_period:
            reason = f"waiting period until {found.waiting_until}"
        return {
            "trtinfo": [
                {
                    "psn_no": member_id,
                    "trt_chk_type": "01",
                    "fund_pay_type": POOL_FUND[Scheme(found.scheme)].value,
                    "trt_enjymnt_flag": "1" if entitled else "0",
                    "begndate": begin.date().isoformat(),
                    "enddate": None,
                    "trt_chk_rslt": reason,
                }
            ]
        }, None
