"""A HIS talking the national interface, written from docs/spec/national.md alone.

It knows the envelope's field names, the transactions' nodes and the code values national.md
gives; it does not import onestop's adapter. Amounts go out as JSON numbers of yuan and come
back parsed as decimals, never floats.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from onestop.client import SignedClient

ENVELOPE_TIME = "%Y-%m-%d %H:%M:%S"
BEIJING = ZoneInfo("Asia/Shanghai")
"""Every time of the interface is Beijing time (national.md section 9.2)."""


EXCHANGE_LOG = "NATIONAL_EXCHANGE_LOG"
"""An environment variable naming a file: each request and answer is appended to it, one JSON
line each, as a HIS would log its exchanges (for reading a flow, not for the tests' checks)."""


def _log_exchange(request: bytes, answer: bytes) -> None:
    path = os.environ.get(EXCHANGE_LOG)
    if path:
        with open(path, "ab") as log:
            log.write(b">> " + request + b"\n<< " + answer + b"\n")


def dumps(value: Any) -> str:
    """JSON with decimals written as the numbers they are (``8.00``, never ``8.0`` or a float)."""
    if isinstance(value, Decimal):
        return str(value)  # 8.00 stays 8.00; 1E+999999999 stays short
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def relationships_broken(info: dict[str, Any]) -> list[str]:
    """national.md section 5.2's R1-R4, checked on a parsed ``setlinfo``."""

    def amount(name: str) -> Decimal:
        value = info.get(name)
        return Decimal(0) if value is None else Decimal(str(value))

    broken = []
    if amount("inscp_scp_amt") != (
        amount("medfee_sumamt")
        - amount("fulamt_ownpay_amt")
        - amount("overlmt_selfpay")
        - amount("preselfpay_amt")
    ):
        broken.append("R1")
    funds = ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay")
    if amount("fund_pay_sumamt") != sum((amount(name) for name in funds), Decimal(0)) + amount(
        "hifdm_pay"
    ):
        broken.append("R2")
    if amount("medfee_sumamt") != (
        amount("fund_pay_sumamt") + amount("psn_part_amt") + amount("hosp_part_amt")
    ):
        broken.append("R3")
    if amount("psn_cash_pay") != amount("psn_part_amt") - amount("acct_pay"):
        broken.append("R4")
    return broken


@dataclass
class NationalHis:
    """One institution's HIS: its code, its region, its signed transport."""

    transport: SignedClient
    fixmedins_code: str
    region: str
    name: str = "测试医院"
    sent: list[dict[str, Any]] = field(default_factory=list)
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def msgid(self) -> str:
        """``fixmedins_code`` (12) + ``yyyyMMddHHmmss`` + a 4-digit sequence (national.md 9.3)."""
        stamp = datetime.now(BEIJING).strftime("%Y%m%d%H%M%S")
        return f"{self.fixmedins_code[:12]:<12}{stamp}{next(self._sequence) % 10000:04d}"

    def envelope(
        self,
        infno: str,
        payload: dict[str, Any],
        *,
        msgid: str | None = None,
        insured_region: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A request envelope (national.md section 2.1)."""
        message = {
            "infno": infno,
            "msgid": msgid or self.msgid(),
            "mdtrtarea_admvs": self.region,
            "insuplc_admdvs": insured_region if insured_region is not None else self.region,
            "recer_sys_code": "YBXT",
            "dev_no": "",
            "dev_safe_info": "",
            "cainfo": "",
            "signtype": "",
            "infver": "V1.0",
            "opter_type": "1",
            "opter": "0001",
            "opter_name": "收费员",
            "inf_time": datetime.now(BEIJING).strftime(ENVELOPE_TIME),
            "fixmedins_code": self.fixmedins_code,
            "fixmedins_name": self.name,
            "sign_no": "",
            "input": payload,
        }
        message.update(overrides)
        return message

    async def post(self, message: dict[str, Any], *, path: str | None = None) -> Any:
        """Send an envelope; the answer parsed (decimals exact)."""
        self.sent.append(message)
        body = dumps(message).encode()
        answer = await self.transport.request(
            "POST",
            path or f"/fsi/api/{message['infno']}",
            content=body,
            content_type="application/json",
        )
        assert answer.status_code == 200, answer.text
        _log_exchange(body, answer.content)
        return json.loads(answer.content, parse_float=Decimal)

    async def raw(self, message: dict[str, Any]) -> bytes:
        """Send an envelope; the answer's bytes."""
        body = dumps(message).encode()
        answer = await self.transport.request(
            "POST", f"/fsi/api/{message['infno']}", content=body, content_type="application/json"
        )
        assert answer.status_code == 200, answer.text
        return answer.content

    async def call(self, infno: str, payload: dict[str, Any], **options: Any) -> Any:
        """Build, send, parse."""
        return await self.post(self.envelope(infno, payload, **options))
