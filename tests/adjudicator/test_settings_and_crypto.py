from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from adjudicator.settings import AdjudicatorSettings

GOOD = base64.b64encode(os.urandom(32)).decode()


@pytest.mark.parametrize(
    "values",
    [
        {"redis_url": "redis://127.0.0.1:6379/0"},  # no key at all
        {
            "redis_url": "redis://127.0.0.1:6379/0",
            "member_key": base64.b64encode(b"short").decode(),
        },
        {
            "redis_url": "redis://127.0.0.1:6379/0",
            "member_key": base64.b64encode(b"\0" * 32).decode(),
        },
        {"redis_url": "redis://127.0.0.1:6379/0", "member_key": "not base64!"},
        {"redis_url": "http://example.org", "member_key": GOOD},
        {"redis_url": "redis://127.0.0.1:6379/0", "member_key": GOOD, "port": 70000},
        {"redis_url": "redis://127.0.0.1:6379/0", "member_key": GOOD, "colour": "red"},
    ],
)
def test_unsafe_or_wrong_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AdjudicatorSettings(**values)  # type: ignore[arg-type]


def test_settings_from_the_environment_and_a_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "member.key"
    key_file.write_text(GOOD)
    monkeypatch.setenv("ONESTOP_ADJUDICATOR_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("ONESTOP_ADJUDICATOR_MEMBER_KEY_FILE", str(key_file))
    monkeypatch.setenv("ONESTOP_ADJUDICATOR_PORT", "0")
    settings = AdjudicatorSettings()
    assert settings.member_key_bytes() == base64.b64decode(GOOD)
    assert settings.port == 0
