"""Rotating the member-data key while the adjudicator serves: nothing unreadable, nothing lost."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from adjudicator.rotation import rotate_member_key
from onestop.redis_client import connect
from onestop.settlement.v1 import adjudicator_pb2 as pb
from onestop.settlement.v1 import adjudicator_pb2_grpc as pb_grpc
from onestop.storage.crypto import MemberCipher
from onestop.storage.layout import MemberField, identity_index_key, member_key
from tests.support.adjudicator import error_code, open_adjudicator
from tests.support.redis import sync_client
from tests.support.scenario import load_demo_world, member_record

MEMBERS = [member_record(f"M7100{n:02d}") for n in range(30)]


def _key_file(directory: Path, name: str, key: bytes) -> Path:
    path = directory / name
    path.write_text(base64.b64encode(key).decode() + "\n")
    path.chmod(0o600)
    return path


async def _lookup(stub: pb_grpc.AdjudicatorAsyncStub, id_number: str) -> pb.EligibilityAnswer:
    return await stub.LookupMember(
        pb.LookupMemberRequest(id_number=id_number, date="2026-03-01", client_id="ZZH3")
    )


async def test_a_rotation_reseals_everyone_online_and_the_old_key_retires(
    redis_url: str, tmp_path: Path
) -> None:
    old_key, new_key = bytes(range(32)), bytes(range(100, 132))
    old_file = _key_file(tmp_path, "old.key", old_key)
    new_file = _key_file(tmp_path, "new.key", new_key)
    async with open_adjudicator(redis_url, member_key=None, member_key_file=old_file) as before:
        await load_demo_world(before.stub, MEMBERS)

    # The adjudicators now seal with the new key and still open and find with the old one.
    rotating = {"member_key": None, "member_key_file": new_file}
    async with open_adjudicator(
        redis_url, **rotating, member_previous_key_files=[old_file]
    ) as serving:
        found = await _lookup(serving.stub, MEMBERS[0]["id_number"])
        assert found.member_id == MEMBERS[0]["member_id"]
        # An enrolment of an id number still indexed under the old key is still a duplicate.
        duplicate = member_record("M719999", id_number=MEMBERS[1]["id_number"])
        line = json.dumps(duplicate, ensure_ascii=False).encode() + b"\n"
        reply = await serving.stub.PutMembers(iter([pb.TextChunk(data=line)]))
        assert [rejection.code for rejection in reply.rejected] == ["DUPLICATE_ENROLLMENT"]

        client = await connect(redis_url, timeout_seconds=5, wait_seconds=0)
        try:
            cipher = MemberCipher(new_key, [old_key])
            report = await rotate_member_key(client, cipher)
            assert report.complete
            assert (report.resealed, report.current) == (len(MEMBERS), 0)
            assert report.indexes_moved == len(MEMBERS)
            again = await rotate_member_key(client, cipher)
            assert (again.resealed, again.current, again.indexes_moved) == (0, len(MEMBERS), 0)
        finally:
            await client.aclose()
        # Served throughout.
        assert (await _lookup(serving.stub, MEMBERS[2]["id_number"])).member_id == "M710002"

    inspect = sync_client(redis_url)
    old_only = MemberCipher(old_key)
    for member in MEMBERS:
        sealed = inspect.hget(member_key(member["member_id"]), MemberField.IDENTITY.value)
        assert isinstance(sealed, bytes)
        assert MemberCipher(new_key).is_current(sealed)
        assert not inspect.exists(identity_index_key(old_only.blind_index(member["id_number"])))
    inspect.close()

    # The old key retired: everything reads and is found with the new key alone.
    async with open_adjudicator(redis_url, **rotating) as after:
        answer = await _lookup(after.stub, MEMBERS[3]["id_number"])
        assert answer.member_id == "M710003"
        assert answer.name_masked == "测*"
        eligibility = await after.stub.Eligibility(
            pb.EligibilityRequest(member_id="M710004", date="2026-03-01", client_id="ZZH3")
        )
        assert eligibility.id_number_masked.startswith("4101")
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await _lookup(after.stub, "410100000000000000")
        assert error_code(unknown.value) == "UNKNOWN_MEMBER"


async def test_the_command_says_what_it_could_not_rotate(redis_url: str, tmp_path: Path) -> None:
    lost_key, new_key = bytes(range(50, 82)), bytes(range(150, 182))
    lost_file = _key_file(tmp_path, "lost.key", lost_key)
    new_file = _key_file(tmp_path, "new.key", new_key)
    async with open_adjudicator(redis_url, member_key=None, member_key_file=lost_file) as before:
        await load_demo_world(before.stub, MEMBERS[:2])
    command = [
        sys.executable,
        "-m",
        "onestop",
        "keys",
        "rotate-member",
        "--redis-url",
        redis_url,
        "--key",
        str(new_file),
    ]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1
    assert "2 members are not under key" in refused.stdout
    assert "which is not configured" in refused.stderr
    done = subprocess.run(
        [*command, "--previous", str(lost_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "every identity is sealed under key" in done.stdout
