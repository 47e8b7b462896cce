"""Mutual TLS between gateways and adjudicators: the certificates, and gRPC credentials.

A private certificate authority signs one certificate per service: the adjudicator's serves
and is also a client certificate (its own health probe connects with it); the gateway's and
the operator's are client certificates. Both ends require the other's certificate: a process
without one signed by the authority cannot open a connection, let alone register a client.

``onestop keys tls --dir DIR`` writes the files :class:`TlsFiles` names (keys mode 0600);
``onestop serve`` makes them in its data directory on first start.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from onestop.signing import write_secret_file

CA_NAME = "onestop internal CA"
VALID_DAYS = 825
ROLES = ("adjudicator", "gateway", "operator")
"""Who gets a certificate: the adjudicator (serves, and probes itself), the gateway (calls
the adjudicator), the operator (bootstraps the agency, runs probes)."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where one service's TLS material lives: the CA's certificate, its own and its key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def of(cls, directory: Path, role: str) -> TlsFiles:
        """The files of ``role`` in a directory written by :func:`make_tls_material`."""
        return cls(directory / "ca.pem", directory / f"{role}.pem", directory / f"{role}.key")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "onestop"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_tls_material(directory: Path, hosts: Sequence[str] = ()) -> list[Path]:
    """Write a CA and a certificate for each of :data:`ROLES` into ``directory``.

    Args:
        directory: made mode 0700 if missing; existing files are never replaced.
        hosts: names and addresses the adjudicator is reached by, besides ``localhost`` and
            ``127.0.0.1`` (a Kubernetes Service name, say).

    Returns:
        The files written.

    Raises:
        FileExistsError: the directory already holds a CA.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (directory / "ca.pem").exists():
        raise FileExistsError(f"{directory / 'ca.pem'} exists; TLS material is never replaced")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    written = [directory / "ca.pem", directory / "ca.key"]
    written[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    write_secret_file(written[1], _key_pem(ca_key))
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(f"onestop {role}"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if role == "adjudicator":
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False).sign(
            ca_key, hashes.SHA256()
        )
        files = TlsFiles.of(directory, role)
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_secret_file(files.key, _key_pem(key))
        written += [files.cert, files.key]
    return written


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """The adjudicator's credentials: its certificate, and clients' required, signed by the CA."""
    return grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=files.ca.read_bytes(),
        require_client_auth=True,
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """A client's credentials: the CA to trust the adjudicator by, and its own certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )


def channel(
    target: str, tls: TlsFiles | None, options: Sequence[tuple[str, object]] = ()
) -> grpc.Channel:
    """A blocking channel to an adjudicator: mutual TLS with ``tls``, plain without."""
    if tls is None:
        return grpc.insecure_channel(target, options=list(options))
    return grpc.secure_channel(target, channel_credentials(tls), options=list(options))


def aio_channel(
    target: str,
    tls: TlsFiles | None,
    options: Sequence[tuple[str, object]] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """An asyncio channel to an adjudicator: mutual TLS with ``tls``, plain without."""
    if tls is None:
        return grpc.aio.insecure_channel(
            target, options=list(options), interceptors=list(interceptors) or None
        )
    return grpc.aio.secure_channel(
        target,
        channel_credentials(tls),
        options=list(options),
        interceptors=list(interceptors) or None,
    )
