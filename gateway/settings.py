"""Settings of the gateway, from ``ONESTOP_GATEWAY_*`` environment variables."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from onestop.national.codes import Profile
from onestop.redis_client import RedisLoginSettings
from onestop.tls import TlsFiles


class GatewaySettings(RedisLoginSettings):
    """How one gateway process runs.

    ``key_dir`` holds the receipt-signing keys (made on first start, mode 0600); every key that
    ever signed stays there so ``GET /v1/keys`` can list it.
    """

    model_config = SettingsConfigDict(env_prefix="ONESTOP_GATEWAY_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    adjudicator: str = Field(
        description="host:port of the adjudicator's gRPC service; several (comma-separated "
        "IP:port, or dns:///NAME:PORT resolving to one address per process) are balanced "
        "round-robin over the healthy ones"
    )
    adjudicator_tls_ca_file: Path | None = Field(
        default=None, description="the CA the adjudicator's certificate is signed by"
    )
    adjudicator_tls_cert_file: Path | None = Field(
        default=None, description="the gateway's client certificate for the adjudicator"
    )
    adjudicator_tls_key_file: Path | None = None
    adjudicator_tls_server_name: str | None = Field(
        default=None,
        description="the name the adjudicator's certificate carries, when the target names "
        "it otherwise (an IP address, a list of processes)",
    )
    workers: int = Field(default=1, ge=1, le=64, description="gateway processes on one port")
    redis_url: str = Field(pattern=r"^rediss?://", description="for nonces and versions")
    key_dir: Path
    signing_key_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{16}$",
        description="the receipt key that signs (default: the newest file in key_dir)",
    )
    clock_skew_seconds: int = Field(default=300, ge=1, le=3600)
    nonce_ttl_seconds: int = Field(default=600, ge=1, le=86_400)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024, description="catalog and mapping CSV uploads"
    )
    max_members_bytes: int = Field(
        default=8 * 1024**3, ge=1024, description="a members file: streamed, spooled to disk"
    )
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, le=1024 * 1024, description="all of a request's headers"
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="from a connection's first byte (or the previous answer) to its request's "
        "last header; a slower client is disconnected",
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="the longest pause between two parts of a body"
    )
    keep_alive_seconds: int = Field(
        default=5, ge=1, le=300, description="how long an idle connection is kept open"
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="open connections per process; one more is closed at once",
    )
    rate_per_client: float = Field(
        default=200.0, gt=0, description="requests a second one client may send, per process"
    )
    burst_per_client: float = Field(
        default=400.0, ge=1, description="requests one client may send at once, per process"
    )
    refusals_per_address: float = Field(
        default=2.0,
        gt=0,
        description="refused authentications a second one network address may cause (a "
        "burst of 20): beyond, its requests are answered 429 before they are read",
    )
    unknown_members_limit: int = Field(
        default=60,
        ge=1,
        description="unknown member ids one client may name in a window (every process "
        "together); past it, its member lookups and previews are answered 429",
    )
    unknown_members_window_seconds: int = Field(default=3600, ge=10, le=86_400)
    uploads_in_flight: int = Field(
        default=2, ge=1, le=64, description="catalog, mapping and members uploads read at once"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="where Prometheus scrapes the gateway (HTTP `/metrics` on host, summing "
        "every worker; unset: not served). Keep it off the public listener's routes",
    )
    metrics_networks: tuple[IPvAnyNetwork, ...] = Field(
        default=(IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")),
        description="the networks `GET /metrics` on the API's own port answers (loopback by "
        "default: behind a proxy every request comes from the proxy's address)",
    )
    console_login_seconds: int = Field(
        default=60,
        ge=10,
        le=600,
        description="how long a console login link works (once) after the agency asked for it",
    )
    console_idle_seconds: int = Field(
        default=900, ge=60, le=3600, description="a console session unused this long ends"
    )
    console_max_age_seconds: int = Field(
        default=8 * 3600,
        ge=300,
        le=86_400,
        description="a console session ends this long after it began, however much it is used",
    )
    console_origin: str | None = Field(
        default=None,
        pattern=r"^https?://[A-Za-z0-9.:\[\]-]+$",
        description="where browsers reach the console, e.g. https://gateway.example, when a "
        "proxy ends TLS in front of the gateway: its forms are accepted from that origin and "
        "its cookie is Secure (unset: the request's own address)",
    )
    export_grace_seconds: int = Field(
        default=900,
        ge=0,
        le=86_400,
        description="how long after a settlement day closes (midnight, Asia/Shanghai) its "
        "export is refused still: a settlement committed at 23:59:59 may still be on its way",
    )
    national_profile: Profile = Field(
        default=Profile.NATIONAL,
        description="the national interface's provincial code dialect (med_type ...): "
        "national or hunan (docs/national.md)",
    )
    statement_font: Path | None = Field(
        default=None,
        description="the TrueType CJK font PDF statements embed (default: WenQuanYi Micro Hei "
        "of the fonts-wqy-microhei package, else a font `fc-list :lang=zh` lists); without "
        "one, PDF statements are refused 503 NO_STATEMENT_FONT and HTML ones still served",
    )
    adjudicator_deadline_seconds: float = Field(default=10.0, gt=0, le=300)
    redis_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    redis_wait_seconds: float = Field(
        default=60.0, ge=0, le=3600, description="how long a start waits for Redis to answer"
    )
    reference_max_age_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="how old this process's copy of the reference-data versions may be when a "
        "request uses it (a write announces itself at once; this bounds a lost announcement). "
        "0 reads Redis for every request",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("nonce_ttl_seconds")
    @classmethod
    def _nonces_outlive_the_clock_window(cls, value: int) -> int:
        # A nonce must be remembered at least as long as its timestamp is accepted, or a
        # captured request could be replayed once the nonce is forgotten.
        if value < 300:
            raise ValueError("nonces must be remembered for at least 300 s")
        return value

    @model_validator(mode="after")
    def _all_tls_files_or_none(self) -> GatewaySettings:
        files = (
            self.adjudicator_tls_ca_file,
            self.adjudicator_tls_cert_file,
            self.adjudicator_tls_key_file,
        )
        if any(files) and not all(files):
            raise ValueError(
                "set all of adjudicator_tls_ca_file, adjudicator_tls_cert_file and "
                "adjudicator_tls_key_file, or none"
            )
        return self

    def adjudicator_tls(self) -> TlsFiles | None:
        """The gateway's TLS files for the adjudicator, when it speaks mutual TLS."""
        ca, cert, key = (
            self.adjudicator_tls_ca_file,
            self.adjudicator_tls_cert_file,
            self.adjudicator_tls_key_file,
        )
        return TlsFiles(ca, cert, key) if ca and cert and key else None

    @model_validator(mode="after")
    def _console_over_https_unless_on_this_machine(self) -> GatewaySettings:
        origin = self.console_origin
        loopback = ("127.0.0.1", "localhost", "::1")
        if origin and origin.startswith("http://") and urlsplit(origin).hostname not in loopback:
            raise ValueError(
                f"console_origin {origin} is plain http: the console's cookie and forms "
                "need https beyond this machine"
            )
        return self

    @model_validator(mode="after")
    def _console_sessions_idle_within_their_age(self) -> GatewaySettings:
        if self.console_idle_seconds > self.console_max_age_seconds:
            raise ValueError(
                f"console_idle_seconds ({self.console_idle_seconds}) may not exceed "
                f"console_max_age_seconds ({self.console_max_age_seconds})"
            )
        return self

    @model_validator(mode="after")
    def _nonces_outlive_both_sides_of_the_window(self) -> GatewaySettings:
        # A timestamp is accepted from clock_skew before to clock_skew after the server's
        # time: a request stays acceptable for twice the skew, and so must its nonce.
        if self.nonce_ttl_seconds < 2 * self.clock_skew_seconds:
            raise ValueError(
                f"nonce_ttl_seconds ({self.nonce_ttl_seconds}) must be at least twice "
                f"clock_skew_seconds ({self.clock_skew_seconds}): a signed request stays "
                "acceptable that long, and would replay once its nonce is forgotten"
            )
        return self
