"""Settings of the adjudicator, from ``ONESTOP_ADJUDICATOR_*`` environment variables."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from onestop.redis_client import RedisLoginSettings
from onestop.tls import TlsFiles

MIN_KEY_BYTES = 32
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only."""
    return host in LOOPBACK or host.startswith("127.")


def new_member_key() -> bytes:
    """A fresh member-data key as its file holds it: 32 random bytes, base64, a newline."""
    return base64.b64encode(os.urandom(MIN_KEY_BYTES)) + b"\n"


def decode_member_key(text: str) -> bytes:
    """Decode a base64 member-data key and refuse a weak one.

    Raises:
        ValueError: not base64, shorter than 32 bytes, or one byte repeated (a placeholder).
    """
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("the member key must be base64") from error
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the member key must be at least {MIN_KEY_BYTES} bytes")
    if len(set(key)) == 1:
        raise ValueError("the member key is a placeholder (one byte repeated); generate one")
    return key


class AdjudicatorSettings(RedisLoginSettings):
    """How one adjudicator process runs.

    The member-data key (AES-GCM encryption of id numbers and names, and the HMAC of the
    id-number index) has no default: it comes from ``member_key`` (base64) or
    ``member_key_file``; ``onestop serve`` creates one in its data directory.
    """

    model_config = SettingsConfigDict(env_prefix="ONESTOP_ADJUDICATOR_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535, description="0 picks a free port")
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="where this process answers Prometheus scrapes (HTTP, on host; 0 picks a "
        "free port; unset: not served)",
    )
    redis_url: str = Field(pattern=r"^rediss?://")
    member_key: SecretStr | None = None
    member_key_file: Path | None = None
    member_previous_key_files: list[Path] = Field(
        default_factory=list,
        description="keys being rotated away from (a JSON list of files): they open values "
        "sealed under them and find their id numbers until `onestop keys rotate-member` "
        "has re-sealed everything under the current key; then remove them",
    )
    commit_attempts: int = Field(default=200, ge=1, le=10_000)
    lookup_audit_days: int = Field(
        default=400,
        ge=1,
        le=3650,
        description="how long each day's trail of eligibility checks and lookups is kept",
    )
    redis_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    redis_wait_seconds: float = Field(
        default=60.0, ge=0, le=3600, description="how long a start waits for Redis to answer"
    )
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=300)
    replicas_required: int = Field(
        default=0,
        ge=0,
        le=16,
        description="replicas of the written key's primary that must hold a settlement, "
        "reversal, members load or reference change before it is acknowledged (Redis WAIT). "
        "0 acknowledges what the primary applied, as before 0.2.0: a failover may then lose "
        "the last writes its replica had not received",
    )
    replica_timeout_ms: int = Field(
        default=1000,
        ge=1,
        le=60_000,
        description="how long to wait for them; past it the answer is 503 UNAVAILABLE, safe to "
        "retry (the write stays and the retry is answered once the replicas hold it)",
    )
    reference_max_age_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="how old this process's copy of the reference-data versions may be when a "
        "settlement uses it (a write announces itself at once; this bounds a lost "
        "announcement). 0 reads Redis for every settlement",
    )
    archive_dir: Path | None = Field(
        default=None,
        description="the archive folder (docs/operations.md, Retention and archive): "
        "settlements and journals of days Redis no longer holds are read from it. Shared by "
        "every adjudicator; none: Redis keeps everything",
    )
    archive_keep_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="closed days Redis keeps before the archive job moves them to the "
        "archive (besides today)",
    )
    archive_every_seconds: float = Field(
        default=0,
        ge=0,
        le=86_400,
        description="run the archive job this often in this process (one job at a time per "
        "archive folder: a process finding another's job running skips its turn); 0: never "
        "(run `onestop archive` instead)",
    )
    archive_batch: int = Field(
        default=500,
        ge=1,
        le=1_000_000,
        description="journal entries the archive job reads and writes as one part: raise it "
        "where a (day, slot group) holds hundreds of thousands (a province: 20000)",
    )
    archive_restored_grace_seconds: float = Field(
        default=3600,
        ge=0,
        le=30 * 86_400,
        description="how long a settlement or visit put back from the archive (to be "
        "reversed, or asked again) stays in Redis before the job moves it back",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="the adjudicator's certificate (PEM); with tls_key_file"
    )
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = Field(
        default=None,
        description="the CA every client's certificate must be signed by (mutual TLS)",
    )
    insecure_transport: bool = Field(
        default=False,
        description="listen without TLS on an address other than loopback: only behind a "
        "network that authenticates both ends itself (a service mesh with mutual TLS)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _tls_or_loopback(self) -> AdjudicatorSettings:
        files = (self.tls_cert_file, self.tls_key_file, self.tls_ca_file)
        if any(files) and not all(files):
            raise ValueError("set all of tls_cert_file, tls_key_file and tls_ca_file, or none")
        if not any(files) and not is_loopback(self.host) and not self.insecure_transport:
            raise ValueError(
                f"the adjudicator would listen on {self.host} without TLS: anyone who can "
                "reach it could register clients and read settlements. Give tls_cert_file, "
                "tls_key_file and tls_ca_file (onestop keys tls makes them), or set "
                "insecure_transport when a service mesh authenticates both ends"
            )
        return self

    def tls(self) -> TlsFiles | None:
        """The adjudicator's TLS files, when it serves mutual TLS."""
        if self.tls_cert_file and self.tls_key_file and self.tls_ca_file:
            return TlsFiles(self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        return None

    @model_validator(mode="after")
    def _archive_needs_a_folder(self) -> AdjudicatorSettings:
        if self.archive_every_seconds and self.archive_dir is None:
            raise ValueError(
                "archive_every_seconds runs the archive job, which needs archive_dir: give "
                "the archive folder, or set archive_every_seconds to 0"
            )
        return self

    @model_validator(mode="after")
    def _one_valid_key(self) -> AdjudicatorSettings:
        if (self.member_key is None) == (self.member_key_file is None):
            raise ValueError("set exactly one of member_key and member_key_file")
        self.member_key_bytes()
        self.previous_member_keys()
        return self

    def previous_member_keys(self) -> list[bytes]:
        """The keys being rotated away from, decoded and checked."""
        return [
            decode_member_key(path.read_text(encoding="ascii"))
            for path in self.member_previous_key_files
        ]

    def member_key_bytes(self) -> bytes:
        """The member-data key, decoded and checked."""
        if self.member_key is not None:
            return decode_member_key(self.member_key.get_secret_value())
        if self.member_key_file is not None:
            return decode_member_key(self.member_key_file.read_text(encoding="ascii"))
        raise ValueError("set exactly one of member_key and member_key_file")
