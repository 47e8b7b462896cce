r"""Locust users for the gateway: hospital billing terminals, outpatient desks, pharmacies.

Every request is signed as the contract says, with the client keys that ``onestop gen`` wrote.
Point ``ONESTOP_LOAD_DATA`` at that directory (loaded into the gateway with
``onestop load-dataset``) and run, for example::

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8080 \\
        --headless --users 50 --spawn-rate 10 --run-time 2m

Each user settles as one client chosen from the dataset; visit ids are unique per user and
run, and a member's stays never overlap (each user walks its own members month by month).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import secrets
from datetime import date
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment

from onestop.client import json_bytes, signature_headers
from onestop.domain.mapping import parse_mapping_csv
from onestop.signing import load_private_key
from onestop.tooling.synthetic import BillFactory

DATA = Path(os.environ.get("ONESTOP_LOAD_DATA", "generated/region"))
RUN = secrets.token_hex(3)


class Dataset:
    """What the users draw from: clients with keys and mappings, and the members."""

    def __init__(self, directory: Path) -> None:
        """Read the dataset's clients and up to 200,000 member ids."""
        self.directory = directory
        self.clients = json.loads((directory / "clients.json").read_text())
        with (directory / "members.jsonl").open(encoding="utf-8") as handle:
            self.members = [
                json.loads(line)["member_id"] for line in itertools.islice(handle, 200_000)
            ]
        self._factories: dict[str, BillFactory] = {}

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The clients of one kind."""
        return [client for client in self.clients if client["kind"] == kind]

    def factory(self, client_id: str) -> BillFactory:
        """A bill factory in the client's own codes."""
        if client_id not in self._factories:
            text = (self.directory / "mappings" / f"{client_id}.csv").read_text()
            self._factories[client_id] = BillFactory.of(
                client_id, parse_mapping_csv(text, None), seed=random.randrange(10**6)
            )
        return self._factories[client_id]


dataset: Dataset | None = None


@events.init.add_listener  # type: ignore[untyped-decorator]
def _load(environment: Environment, **_: Any) -> None:
    global dataset
    dataset = Dataset(DATA)


_user_numbers = itertools.count()


class SignedUser(HttpUser):
    """A terminal of one client: signs every request with that client's key."""

    abstract = True
    kind = "hospital"

    def on_start(self) -> None:
        """Become one client of the dataset, with its key, mapping and members."""
        assert dataset is not None
        self.number = next(_user_numbers)
        clients = dataset.of_kind(self.kind)
        self.client_id = clients[self.number % len(clients)]["client_id"]
        self.key = load_private_key(dataset.directory / "keys" / f"{self.client_id}.key")
        self.factory = dataset.factory(self.client_id)
        self.visits = itertools.count()
        # Members are dealt out to users so that no two users share one.
        self.members = dataset.members[self.number :: 1000] or dataset.members

    def send(
        self, method: str, path: str, body: dict[str, Any] | None = None, name: str | None = None
    ) -> Any:
        """Send one signed request; the answer's JSON, or None when refused."""
        data = json_bytes(body) if body is not None else b""
        headers = signature_headers(self.key, self.client_id, method, path, data)
        if body is not None:
            headers["Content-Type"] = "application/json"
        with self.client.request(
            method, path, data=data, headers=headers, name=name, catch_response=True
        ) as answer:
            if answer.status_code >= 400:
                answer.failure(f"{answer.status_code} {answer.text[:200]}")
                return None
            answer.success()
            return answer.json()

    def next_visit(self) -> tuple[str, str, date]:
        """A new visit id, the next member, and a first day in that member's next month."""
        number = next(self.visits)
        member = self.members[number % len(self.members)]
        month = (number // len(self.members)) % 12 + 1
        return f"{RUN}-{self.number}-{number}", member, date(2026, month, 1)


class HospitalBillingTerminal(SignedUser):
    """Discharge settlement; sometimes a preview first; sometimes a reversal and a re-settle."""

    kind = "hospital"
    wait_time = between(0.5, 2)
    weight = 3

    @task
    def discharge(self) -> None:
        """One discharge."""
        visit_id, member, day = self.next_visit()
        bill = self.factory.discharge(visit_id, member, day)
        if random.random() < 0.3:
            self.send("POST", "/v1/settlements/preview", bill, "/v1/settlements/preview")
        settled = self.send("POST", "/v1/settlements", bill, "/v1/settlements [discharge]")
        if settled and random.random() < 0.05:
            path = f"/v1/settlements/{settled['settlement_id']}/reversal"
            self.send("POST", path, None, "/v1/settlements/{id}/reversal")
            bill["lines"] = bill["lines"][:-1] or bill["lines"]
            self.send("POST", "/v1/settlements", bill, "/v1/settlements [re-settle]")


class OutpatientDesk(SignedUser):
    """General outpatient visits, a few lines each."""

    kind = "hospital"
    wait_time = between(0.2, 1)
    weight = 2

    @task
    def outpatient(self) -> None:
        """One outpatient."""
        visit_id, member, day = self.next_visit()
        self.send(
            "POST",
            "/v1/settlements",
            self.factory.outpatient(visit_id, member, day),
            "/v1/settlements [outpatient]",
        )


class PharmacyTerminal(SignedUser):
    """Card swipes of 1 to 5 lines, paid from the personal account first."""

    kind = "pharmacy"
    wait_time = between(0.1, 0.5)
    weight = 5

    @task
    def swipe(self) -> None:
        """One swipe."""
        visit_id, member, day = self.next_visit()
        self.send(
            "POST",
            "/v1/settlements",
            self.factory.swipe(visit_id, member, day),
            "/v1/settlements [pharmacy]",
        )
