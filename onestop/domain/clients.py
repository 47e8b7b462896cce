"""The agency's client registry: hospitals, pharmacies and agency clients (contract section 2)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, StrictBool, model_validator

from onestop.domain.errors import Forbidden
from onestop.domain.types import ClientKind, Code, HospitalLevel, Name, NationalCode


class Client(BaseModel):
    """A registered client. Hospitals and pharmacies have a level and a region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: Code
    kind: ClientKind
    name: Name
    level: HospitalLevel | None = None
    region: Code | None = None
    public_key: str
    national_code: NationalCode | None = None
    """The ``fixmedins_code`` (定点医药机构编号) it sends on the national interface; without
    one, it sends its client id there."""
    national_codes_allowed: StrictBool = False
    """Its national fee lines may name catalog codes directly (``med_list_codg``) instead of
    its own codes through its mapping."""

    @model_validator(mode="after")
    def _level_and_region_for_providers(self) -> Client:
        if self.kind is not ClientKind.AGENCY and (self.level is None or self.region is None):
            raise ValueError("hospitals and pharmacies need level and region")
        return self

    def fixmedins_code(self) -> str:
        """The institution code its national messages must carry."""
        return self.national_code or self.client_id

    def settling_level(self) -> HospitalLevel:
        """The level that decides a visit's terms (hospitals and pharmacies have one).

        Raises:
            Forbidden: the client is the agency, which settles nothing.
        """
        if self.level is None:
            raise Forbidden(f"{self.kind.value} client {self.client_id} settles no visits")
        return self.level


def providers(clients: Iterable[Client]) -> list[Client]:
    """The hospitals and pharmacies among ``clients``, in their order.

    Those settle and reconcile; an agency client does neither.
    """
    return [client for client in clients if client.kind is not ClientKind.AGENCY]
