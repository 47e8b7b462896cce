"""The ``onestop`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _bench_stack(args: argparse.Namespace) -> int:
    from onestop.tooling.bench.stack import run_bench

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    figures = run_bench(
        seconds=args.seconds,
        members=args.members_loaded,
        lines=args.lines,
        write=progress,
        appendfsync=args.appendfsync,
        gateway_workers=args.gateway_workers or 1,
        adjudicator_workers=args.adjudicator_workers or 1,
        redis_shards=args.redis_shards,
        redis_replicas=args.redis_replicas,
        controls=args.controls,
        flamegraphs=args.flamegraphs,
        latency_rate=args.latency_rate,
    )
    if args.json:
        print(json.dumps(figures))
    else:
        _print_json(figures)
    return 0


def _bench_export(args: argparse.Namespace) -> int:
    from onestop.tooling.bench.export import measure_export

    export = measure_export(settlements=args.settlements)
    if args.json:
        print(json.dumps(export.as_dict()))
        return 0
    print(
        f"export: {export.settlements} settlements of one day -> {export.rows} rows "
        f"in {export.seconds:.1f} s; peak memory gateway {export.gateway_peak_mb:.0f} MB, "
        f"adjudicator {export.adjudicator_peak_mb:.0f} MB; verified: {export.verified}"
    )
    print(
        f"reconciliation by detail of one hospital: {export.reconcile_quiet_seconds * 1000:.1f}"
        f" ms on a quiet day, {export.reconcile_busy_seconds * 1000:.1f} ms with the other "
        f"clients' {export.settlements} settlements in the journal"
    )
    return 0


def _bench_memory(args: argparse.Namespace) -> int:
    from onestop.tooling.bench.memory import measure_member_memory

    memory = measure_member_memory(members=args.members, shards=args.redis_shards)
    if args.json:
        print(json.dumps(memory.as_dict()))
        return 0
    print(
        f"memory: {memory.members} members in Redis {memory.redis_version}\n"
        f"  record (profile, sealed identity, balance, index)  "
        f"{memory.record_bytes:6.0f} bytes/member\n"
        f"  record and one year of state                       "
        f"{memory.with_year_bytes:6.0f} bytes/member"
    )
    return 0


def _bench_engine(args: argparse.Namespace) -> int:
    from onestop.tooling.bench.engine import time_engine

    timing = time_engine(lines=args.lines, iterations=args.iterations)
    if args.json:
        print(json.dumps(timing.as_dict()))
        return 0
    print(
        f"engine: {timing.lines}-line inpatient discharge, {timing.iterations} runs\n"
        f"  adjudicate   median {timing.engine_median_us:8.1f} us   "
        f"p90 {timing.engine_p90_us:8.1f} us\n"
        f"  map + check  median {timing.check_median_us:8.1f} us"
    )
    return 0


def _bench_archive(args: argparse.Namespace) -> int:
    from onestop.tooling.bench.archive import measure_archive

    figures = measure_archive(days=args.days, per_day=args.per_day).as_dict()
    if args.json:
        print(json.dumps(figures))
        return 0
    memory = figures["redis_used_memory"]
    print(
        f"archive: {figures['settlements']} settlements over {figures['days']} days "
        f"({figures['discharges']} discharges of 200 lines, {figures['reversals']} reversed)\n"
        f"  Redis used_memory: members only {memory['members_only']:,} B, with the month "
        f"{memory['with_the_month']:,} B, after archiving {memory['after_archiving']:,} B\n"
        f"  Redis bytes per settlement kept {figures['redis_bytes_per_settlement_kept']:,.0f}, "
        f"left once archived {figures['redis_bytes_per_settlement_after_archiving']:,.0f}\n"
        f"  archive on disk {figures['archive_bytes_on_disk']:,} B "
        f"({figures['archive_bytes_per_settlement']:,.0f} B per settlement), written in "
        f"{figures['archive_seconds']} s"
    )
    return 0


_BENCHES = {
    "stack": _bench_stack,
    "engine": _bench_engine,
    "memory": _bench_memory,
    "export": _bench_export,
    "archive": _bench_archive,
}


def _bench(args: argparse.Namespace) -> int:
    return _BENCHES[args.target](args)


def _demo(args: argparse.Namespace) -> int:
    from onestop.tooling.demo.walkthrough import run_demo

    return run_demo(statements=args.statements)


def _serve(args: argparse.Namespace) -> int:
    from onestop.logs import configure
    from onestop.tooling.serve import ServeSettings, run

    overrides = {
        name: value
        for name, value in (
            ("data_dir", args.data_dir),
            ("port", args.port),
            ("adjudicator_port", args.adjudicator_port),
            ("appendfsync", args.appendfsync),
            ("gateway_workers", args.gateway_workers),
            ("adjudicator_workers", args.adjudicator_workers),
            ("redis_shards", args.redis_shards),
            ("redis_replicas", args.redis_replicas),
            ("archive_keep_days", args.archive_keep_days),
            ("archive_every_seconds", args.archive_every),
        )
        if value is not None
    }
    settings = ServeSettings(**overrides)
    configure(settings.log_level)
    return run(settings)


def _keys_new(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from onestop.signing import key_id, private_pem, public_pem, write_secret_file

    private_path = Path(f"{args.out}.key")
    public_path = Path(f"{args.out}.pub")
    if private_path.exists() or public_path.exists():
        print(f"onestop keys new: {private_path} or {public_path} exists", file=sys.stderr)
        return 1
    key = Ed25519PrivateKey.generate()
    write_secret_file(private_path, private_pem(key))
    public_path.write_text(public_pem(key.public_key()))
    print(f"private key {private_path} (keep it on the client; mode 0600)")
    print(f"public key  {public_path} (register it: onestop clients add ... --public-key)")
    print(f"key id      {key_id(key.public_key())}")
    return 0


def _keys_receipt(args: argparse.Namespace) -> int:
    from gateway.receipts import new_receipt_key

    args.dir.mkdir(parents=True, exist_ok=True)
    name = new_receipt_key(args.dir)
    print(f"receipt key {args.dir / f'receipt-{name}.pem'} (mode 0600)")
    print(f"key id      {name} (ONESTOP_GATEWAY_SIGNING_KEY_ID to sign with it)")
    return 0


def _keys_member(args: argparse.Namespace) -> int:
    from adjudicator.settings import new_member_key
    from onestop.signing import write_secret_file

    if args.out.exists():
        print(
            f"onestop keys member: {args.out} exists; a member key is never replaced",
            file=sys.stderr,
        )
        return 1
    write_secret_file(args.out, new_member_key())
    print(f"member-data key {args.out} (mode 0600): ONESTOP_ADJUDICATOR_MEMBER_KEY_FILE")
    print("keep a copy offline: without it the members' identities cannot be read")
    return 0


def _keys_rotate_member(args: argparse.Namespace) -> int:
    from adjudicator.rotation import RotationReport, rotate_member_key
    from adjudicator.settings import decode_member_key
    from onestop.redis_client import connect, login_of, without_credentials
    from onestop.storage.crypto import MemberCipher, member_key_id

    try:
        login = login_of(args.redis_user, args.redis_password_file)
        current = decode_member_key(args.key.read_text(encoding="ascii"))
        previous = [decode_member_key(path.read_text(encoding="ascii")) for path in args.previous]
    except (ValueError, OSError) as error:
        print(f"onestop keys rotate-member: {error}", file=sys.stderr)
        return 2
    cipher = MemberCipher(current, previous)
    print(
        f"re-sealing every member under key {cipher.key_id} (from "
        f"{', '.join(member_key_id(key) for key in previous) or 'no previous key'}) in "
        f"{without_credentials(args.redis_url)}",
        file=sys.stderr,
    )

    def progress(report: RotationReport) -> None:
        print(
            f"rotate-member: {report.scanned} members read, {report.resealed} re-sealed, "
            f"{report.indexes_moved} index entries moved",
            file=sys.stderr,
            flush=True,
        )

    async def rotate() -> RotationReport:
        client = await connect(args.redis_url, timeout_seconds=10, wait_seconds=10, login=login)
        try:
            return await rotate_member_key(client, cipher, progress)
        finally:
            await client.aclose()

    report = asyncio.run(rotate())
    for member_id, why in sorted(report.unreadable.items())[:20]:
        print(f"NOT rotated: member {member_id}: {why}", file=sys.stderr)
    if report.complete:
        print(
            f"every identity is sealed under key {cipher.key_id} ({report.resealed} re-sealed "
            f"now, {report.current} already); remove the previous keys from "
            "ONESTOP_ADJUDICATOR_MEMBER_PREVIOUS_KEY_FILES, restart, and retire them"
        )
        return 0
    print(
        f"{len(report.unreadable)} members are not under key {cipher.key_id}: keep the "
        "previous keys, give the missing ones with --previous, and run again"
    )
    return 1


def _keys_tls(args: argparse.Namespace) -> int:
    from onestop.tls import ROLES, make_tls_material

    try:
        written = make_tls_material(args.dir, args.host)
    except FileExistsError as error:
        print(f"onestop keys tls: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    print(
        f"a CA and certificates for {', '.join(ROLES)}; give each service only its own "
        "key (docs/security.md); keep ca.key offline"
    )
    return 0


def _keys_redis(args: argparse.Namespace) -> int:
    from onestop.redis_users import USERS, make_redis_users, password_file

    acl = make_redis_users(args.dir)
    for user in USERS:
        print(f"{user:<12} {password_file(args.dir, user)} (mode 0600)")
    print(f"ACL file     {acl} (Redis: aclfile {acl.name}; holds only password hashes)")
    return 0


def _bootstrap_agency(args: argparse.Namespace) -> int:
    from onestop.signing import UnusableKey, load_public_key
    from onestop.tls import TlsFiles
    from onestop.tooling.serve import register_agency

    public = args.public_key.read_text(encoding="ascii")
    try:
        load_public_key(public)
    except UnusableKey as error:
        print(f"onestop bootstrap-agency: {args.public_key}: {error}", file=sys.stderr)
        return 1
    tls = TlsFiles.of(args.tls_dir, "operator") if args.tls_dir else None
    register_agency(args.adjudicator, public, timeout=args.timeout, tls=tls)
    print(f"the agency's key is registered with {args.adjudicator}")
    return 0


def _soak(args: argparse.Namespace) -> int:
    from onestop.tooling.soak import run_soak

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    figures = run_soak(
        args.minutes,
        seed=args.seed,
        members=args.members,
        terminals=args.terminals,
        fault_every_seconds=(args.fault_every[0], args.fault_every[1]),
        write=progress,
        failover=args.failover,
    )
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))
    healthy = (
        figures["balanced"]
        and figures["lost"] == 0
        and figures["duplicated"] == 0
        and not figures["identities_broken"]
    )
    return 0 if healthy else 1


def _add_redis_login(parser: argparse.ArgumentParser, user: str) -> None:
    """``--redis-url``, ``--redis-user`` and ``--redis-password-file``."""
    parser.add_argument(
        "--redis-url", required=True, help="any node of the Redis (or Redis Cluster)"
    )
    parser.add_argument("--redis-user", help=f"the Redis user to log in as ({user})")
    parser.add_argument(
        "--redis-password-file", type=Path, help="a file holding that user's password"
    )


def _migrate(args: argparse.Namespace) -> int:
    from onestop.redis_client import login_of
    from onestop.storage.migrate import run_migration

    try:
        login = login_of(args.redis_user, args.redis_password_file)
    except (ValueError, OSError) as error:
        print(f"onestop migrate: {error}", file=sys.stderr)
        return 2
    report = asyncio.run(run_migration(args.redis_url, write=print, login=login))
    if args.json:
        print(json.dumps({"converted": report.converted, "dropped": report.dropped}))
    return 0


def _archive(args: argparse.Namespace) -> int:
    from adjudicator.archiving import ArchiveBusy, ArchiveJob
    from onestop.errors import Unavailable
    from onestop.redis_client import connect, login_of

    if args.keep_days < 0 or args.batch < 1:
        print("onestop archive: --keep-days must be 0 or more, --batch 1 or more", file=sys.stderr)
        return 2
    try:
        login = login_of(args.redis_user, args.redis_password_file)
    except (ValueError, OSError) as error:
        print(f"onestop archive: {error}", file=sys.stderr)
        return 2

    async def run() -> dict[str, Any]:
        client = await connect(args.redis_url, timeout_seconds=10, wait_seconds=10, login=login)
        try:
            job = ArchiveJob(
                client,
                args.archive_dir,
                keep_days=args.keep_days,
                restored_grace_seconds=args.restored_grace_seconds,
                batch=args.batch,
            )
            return (await job.run()).as_json()
        finally:
            await client.aclose()

    try:
        report = asyncio.run(run())
    except ArchiveBusy as error:
        print(f"onestop archive: {error}; try again once it is done", file=sys.stderr)
        return 1
    except Unavailable as error:
        print(f"onestop archive: {error}; run it again (nothing is lost)", file=sys.stderr)
        return 1
    print(
        f"archived {report['units']} day-groups: {report['settlements']} settlements, "
        f"{report['visits']} visits, {report['journal_entries']} journal entries in "
        f"{report['parts']} parts; {report['restored_back']} restored keys moved back"
    )
    if args.json:
        print(json.dumps(report))
    return 0


def _probe(args: argparse.Namespace) -> int:
    from onestop.probe import probe

    return probe(args.http, args.grpc, args.timeout, args.tls_dir, args.grpc_service)


def _connection(args: argparse.Namespace) -> Any:
    from onestop.admin import Connection

    return Connection.resolve(args.url, args.client_id, args.key, args.data_dir)


def _show_json(value: Any) -> int:
    _print_json(value)
    return 0


def _run_admin(call: Any, show: Callable[[Any], int] = _show_json) -> int:
    """Run a call against the gateway; a user's error is one line on stderr, never a trace.

    Exit status: 0 done (or what ``show`` returns for the answer), 1 the gateway refused (its
    problem+json is printed), 2 nothing was sent (a file that cannot be read or is invalid, a
    key of the wrong kind, no gateway).
    """
    import httpx

    from onestop.admin import Refused
    from onestop.domain.errors import DomainError
    from onestop.signing import UnusableKey

    try:
        status = show(asyncio.run(call))
    except Refused as refused:
        print(f"refused ({refused.answer.status_code}):", file=sys.stderr)
        try:
            print(json.dumps(refused.answer.json(), ensure_ascii=False, indent=2), file=sys.stderr)
        except ValueError:
            print(refused.answer.text, file=sys.stderr)
        return 1
    except DomainError as error:
        print(f"onestop: {error.message}", file=sys.stderr)
        for problem in error.problems:
            where = problem.field or (f"row {problem.row}" if problem.row else "")
            print(
                f"  {where}: {problem.message}" if where else f"  {problem.message}",
                file=sys.stderr,
            )
        return 2
    except (OSError, UnicodeDecodeError, UnusableKey) as error:
        print(f"onestop: {error}", file=sys.stderr)
        return 2
    except httpx.HTTPError as error:
        url = error.request.url if _has_request(error) else "the gateway"
        print(
            f"onestop: could not reach {url}: {error!s} (is the gateway running? give --url, "
            "ONESTOP_URL or --data-dir)",
            file=sys.stderr,
        )
        return 2
    return status


def _has_request(error: Any) -> bool:
    try:
        error.request  # noqa: B018 - raises when the error has none
    except RuntimeError:
        return False
    return True


def _clients_add(args: argparse.Namespace) -> int:
    from onestop.admin import register_client

    return _run_admin(
        register_client(
            _connection(args),
            args.new_client_id,
            kind=args.kind,
            name=args.name,
            level=args.level,
            region=args.region,
            public_key=args.public_key,
            national_code=args.national_code,
            national_codes_allowed=args.national_codes_allowed,
        )
    )


def _load(args: argparse.Namespace) -> int:
    from onestop import admin

    connection = _connection(args)
    if args.what == "policy":
        return _run_admin(admin.load_policies(connection, args.files))
    if args.what == "catalog":
        return _run_admin(admin.load_catalog(connection, args.files[0]))
    if args.what == "mapping":
        return _run_admin(
            admin.load_mapping(connection, args.mapping_client, args.files[0], confirm=args.confirm)
        )
    progress = admin.progress_printer("members")
    if len(args.files) == 1:
        return _run_admin(admin.load_members(connection, args.files[0], progress))
    return _run_admin(admin.load_members_files(connection, args.files, progress))


def _export(args: argparse.Namespace) -> int:
    from onestop.admin import download_export

    return _run_admin(
        download_export(_connection(args), args.date, args.out, provisional=args.provisional)
    )


UNBALANCED_EXIT = 3
"""``onestop reconcile``'s exit status when the day does not balance."""


def _reconcile(args: argparse.Namespace) -> int:
    from onestop.admin import reconcile_his_export
    from onestop.his_reconcile import report_lines

    def show(answer: Any) -> int:
        if args.json:
            _print_json(answer)
        else:
            for line in report_lines(answer):
                print(line)
        return 0 if answer["result"] == "balanced" else UNBALANCED_EXIT

    return _run_admin(
        reconcile_his_export(_connection(args), args.file, args.date, yuan=args.yuan), show
    )


def _reconciliations(args: argparse.Namespace) -> int:
    from onestop.admin import day_reconciliations

    return _run_admin(day_reconciliations(_connection(args), args.date, args.for_client))


def _console_login(args: argparse.Namespace) -> int:
    from onestop.admin import console_login

    def show(link: str) -> int:
        print(link)
        return 0

    return _run_admin(console_login(_connection(args), args.page), show)


def _verify_receipt(args: argparse.Namespace) -> int:

    import httpx

    from onestop.admin import fetch_published_keys, gateway_url
    from onestop.receipts import check_receipt
    from onestop.statement.seal import PREFIX, MalformedSeal, check_seal, parse_seal

    if (args.receipt is None) == (args.seal is None):
        print(
            "onestop verify-receipt: give a receipt file (JSON, or a statement's seal as its QR "
            "code reads) or --seal TEXT",
            file=sys.stderr,
        )
        return 2
    receipt: dict[str, Any] | None = None
    seal: str | None = args.seal
    if args.receipt is not None:
        try:
            text = args.receipt.read_text(encoding="utf-8")
            if text.strip().startswith(PREFIX):
                seal = text.strip()
            else:
                receipt = json.loads(text)
                if not isinstance(receipt, dict):
                    raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            print(
                f"onestop verify-receipt: {args.receipt}: not a receipt ({error})", file=sys.stderr
            )
            return 2
    if seal is not None:
        try:
            parse_seal(seal)
        except MalformedSeal as error:
            print(f"onestop verify-receipt: not a statement seal: {error}", file=sys.stderr)
            return 2
    try:
        if args.keys is not None:
            published = json.loads(args.keys.read_text(encoding="utf-8"))["keys"]
            source = str(args.keys)
        else:
            url = gateway_url(args.url, args.data_dir)
            published = asyncio.run(fetch_published_keys(url))
            source = f"{url}/v1/keys"
    except (OSError, ValueError, KeyError, TypeError, httpx.HTTPError) as error:
        print(
            f"onestop verify-receipt: could not read the published keys: {error}", file=sys.stderr
        )
        return 2
    if receipt is None:
        assert seal is not None
        sealed = check_seal(seal, published)
        if sealed.valid and sealed.seal is not None:
            print(
                f"the statement's seal verifies with key {sealed.seal.key_id} ({source}): it "
                f"vouches for {sealed.seal.describe()}"
            )
            return 0
        print(f"the statement's seal: NOT VALID: {sealed.reason}", file=sys.stderr)
        return 1
    check = check_receipt(receipt, published)
    what = receipt.get("settlement_id") or "the receipt"
    if check.valid:
        print(f"{what}: the signature verifies with key {check.key_id} ({source})")
        return 0
    print(f"{what}: NOT VALID: {check.reason}", file=sys.stderr)
    return 1


def _verify_export(args: argparse.Namespace) -> int:
    from onestop.exports import verify_export

    key = args.public_key.read_text() if args.public_key else None
    published = None
    if args.keys is not None:
        try:
            listed = json.loads(args.keys.read_text(encoding="utf-8"))
            published = [dict(entry) for entry in listed["keys"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(
                f"onestop verify-export: {args.keys}: not a GET /v1/keys answer ({error})",
                file=sys.stderr,
            )
            return 2
    day = None
    if args.date is not None:
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            print(f"onestop verify-export: --date {args.date!r} is not YYYY-MM-DD", file=sys.stderr)
            return 2
    result = verify_export(args.source, key, published_keys=published, day=day)
    for check in result.checks:
        print(f"ok    {check}")
    for failure in result.failures:
        print(f"FAIL  {failure}")
    print("export verified" if result.ok else "export NOT verified")
    return 0 if result.ok else 1


def _gen(args: argparse.Namespace) -> int:
    from onestop.tooling.dataset import DatasetSize, write_dataset

    size = DatasetSize(
        members=args.members,
        items=args.items,
        hospitals=args.hospitals,
        pharmacies=args.pharmacies,
        mapping_rows=args.mapping_rows,
        seed=args.seed,
    )
    _print_json(write_dataset(args.out, size))
    return 0


def _load_dataset(args: argparse.Namespace) -> int:
    from onestop.tooling.dataset import load_dataset

    return _run_admin(load_dataset(_connection(args), args.directory))


def _gen_members(args: argparse.Namespace) -> int:
    from onestop.tooling.demo.members import crowd

    with args.out.open("w", encoding="utf-8") as handle:
        for record in crowd(args.count, seed=args.seed):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{args.count} members written to {args.out}")
    return 0


def _add_connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--url", help="gateway URL (ONESTOP_URL; or from --data-dir)")
    group.add_argument("--client-id", help="who signs (ONESTOP_CLIENT_ID; default agency)")
    group.add_argument("--key", type=Path, help="private key PEM (ONESTOP_KEY)")
    group.add_argument(
        "--data-dir", type=Path, help="a running onestop serve's directory: its URL and agency key"
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per task."""
    parser = argparse.ArgumentParser(
        prog="onestop",
        description="One-stop settlement gateway for public medical insurance.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run Redis and the services on this machine until SIGTERM or SIGINT"
    )
    serve.add_argument("--data-dir", type=Path, help="where data and keys live (var/onestop)")
    serve.add_argument("--port", type=int, help="HTTP gateway port on 127.0.0.1 (8080; 0: free)")
    serve.add_argument("--adjudicator-port", type=int, help="gRPC port (default: a free one)")
    serve.add_argument(
        "--appendfsync",
        choices=["always", "everysec"],
        help="always (default): no acknowledged settlement is ever lost; everysec: faster, a "
        "power cut may lose up to one second of acknowledged settlements",
    )
    serve.add_argument("--gateway-workers", type=int, help="gateway processes on the port (1)")
    serve.add_argument(
        "--adjudicator-workers", type=int, help="adjudicator processes, balanced by the gateway (1)"
    )
    serve.add_argument(
        "--redis-shards",
        type=int,
        help="the embedded Redis: 1 server (default), or a Redis Cluster of N primaries",
    )
    serve.add_argument(
        "--redis-replicas",
        type=int,
        help="replicas of each embedded primary (0); writes are acknowledged once they hold them",
    )
    serve.add_argument(
        "--archive-keep-days",
        type=int,
        help="closed days Redis keeps before they move to DATA_DIR/archive (30)",
    )
    serve.add_argument(
        "--archive-every",
        type=float,
        help="seconds between runs of the archive job (3600; 0: never)",
    )
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser(
        "demo", help="start everything, settle the demo region's visits, print the statements"
    )
    demo.add_argument(
        "--statements",
        type=Path,
        help="where to write the settled visits' statements as PDF files (default: a new "
        "directory under the system's temporary one, printed at the end)",
    )
    demo.set_defaults(handler=_demo)

    keys = commands.add_parser(
        "keys", help="client key pairs; receipt, member-data, TLS and Redis secrets"
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = key_commands.add_parser("new", help="write an Ed25519 key pair: OUT.key and OUT.pub")
    new.add_argument("--out", required=True, help="file name prefix")
    new.set_defaults(handler=_keys_new)
    receipt = key_commands.add_parser(
        "receipt", help="write a new receipt-signing key for the gateway into DIR"
    )
    receipt.add_argument("--dir", type=Path, required=True, help="the gateway's key directory")
    receipt.set_defaults(handler=_keys_receipt)
    member_key = key_commands.add_parser(
        "member", help="write a new member-data key (AES-GCM and the id-number index)"
    )
    member_key.add_argument("--out", type=Path, required=True)
    member_key.set_defaults(handler=_keys_member)
    rotate = key_commands.add_parser(
        "rotate-member",
        help="re-seal every member's identity under a new member-data key, online",
        description="Run while the adjudicators serve with the new key as "
        "ONESTOP_ADJUDICATOR_MEMBER_KEY_FILE and the old one in "
        "ONESTOP_ADJUDICATOR_MEMBER_PREVIOUS_KEY_FILES (docs/operations.md). Resumable.",
    )
    rotate.add_argument("--redis-url", required=True, help="any node of the Redis (or cluster)")
    rotate.add_argument("--redis-user", help="the Redis user to log in as (admin)")
    rotate.add_argument("--redis-password-file", type=Path, help="that user's password file")
    rotate.add_argument("--key", type=Path, required=True, help="the new (current) key file")
    rotate.add_argument(
        "--previous",
        type=Path,
        action="append",
        default=[],
        help="a key being retired (repeatable)",
    )
    rotate.set_defaults(handler=_keys_rotate_member)
    tls = key_commands.add_parser(
        "tls",
        help="write a CA and mutual-TLS certificates for adjudicator, gateway, operator",
    )
    tls.add_argument("--dir", type=Path, required=True, help="made mode 0700; never overwritten")
    tls.add_argument(
        "--host",
        action="append",
        default=[],
        help="a name or address the adjudicator is reached by (repeatable; localhost and "
        "127.0.0.1 are always in)",
    )
    tls.set_defaults(handler=_keys_tls)
    redis_users = key_commands.add_parser(
        "redis", help="write a Redis password per service and the ACL file Redis loads"
    )
    redis_users.add_argument("--dir", type=Path, required=True, help="existing passwords are kept")
    redis_users.set_defaults(handler=_keys_redis)

    bootstrap = commands.add_parser(
        "bootstrap-agency",
        help="register the agency's public key directly with an adjudicator (first deploy)",
    )
    bootstrap.add_argument("--adjudicator", required=True, help="host:port of an adjudicator")
    bootstrap.add_argument("--public-key", type=Path, required=True, help="PEM public key file")
    bootstrap.add_argument(
        "--tls-dir",
        type=Path,
        help="the operator's certificate (operator.pem/.key and ca.pem, onestop keys tls) "
        "for an adjudicator that requires mutual TLS",
    )
    bootstrap.add_argument("--timeout", type=float, default=120, help="seconds to wait for it")
    bootstrap.set_defaults(handler=_bootstrap_agency)

    migrate = commands.add_parser(
        "migrate",
        help="convert stored data of an older layout (run with the services stopped)",
        description="Convert every Redis key of an older storage layout to the current one "
        "(docs/operations.md). Resumable: run it again after an interruption. onestop serve "
        "runs it by itself before starting the services.",
    )
    _add_redis_login(migrate, "admin")
    migrate.add_argument("--json", action="store_true", help="a last line of JSON")
    migrate.set_defaults(handler=_migrate)

    archive = commands.add_parser(
        "archive",
        help="move closed days past the retention from Redis to the archive folder",
        description="Move the settlements, visit indexes, journal entries and day totals of "
        "closed days older than --keep-days from Redis to the archive folder (compressed JSON "
        "Lines, one file set per day and slot group, checksummed; docs/operations.md). Safe "
        "to stop at any moment and run again; the adjudicators read archived days from the "
        "same folder (ONESTOP_ADJUDICATOR_ARCHIVE_DIR).",
    )
    _add_redis_login(archive, "adjudicator")
    archive.add_argument("--archive-dir", type=Path, required=True, help="the archive folder")
    archive.add_argument(
        "--keep-days",
        type=int,
        default=30,
        help="closed days Redis keeps besides today (default 30; 0 archives every closed day)",
    )
    archive.add_argument(
        "--restored-grace-seconds",
        type=float,
        default=3600,
        help="how long what was put back from the archive stays in Redis (default 3600)",
    )
    archive.add_argument(
        "--batch", type=int, default=500, help="journal entries read and written at a time (500)"
    )
    archive.add_argument("--json", action="store_true", help="a last line of JSON")
    archive.set_defaults(handler=_archive)

    probe = commands.add_parser(
        "probe", help="exit 0 when this container's service is up (Docker HEALTHCHECK)"
    )
    probe.add_argument("--http", help="a gateway's base URL (default: from ONESTOP_GATEWAY_*)")
    probe.add_argument("--grpc", help="an adjudicator's host:port (from ONESTOP_ADJUDICATOR_*)")
    probe.add_argument(
        "--tls-dir", type=Path, help="ask with the operator's certificate of this directory"
    )
    probe.add_argument(
        "--grpc-service",
        default="",
        help="the gRPC health service to ask: '' (ready: Redis answers too) or "
        "onestop.liveness (the process serves; for liveness probes)",
    )
    probe.add_argument("--timeout", type=float, default=3)
    probe.set_defaults(handler=_probe)

    clients = commands.add_parser("clients", help="the agency's client registry")
    client_commands = clients.add_subparsers(
        dest="clients_command", required=True, metavar="ACTION"
    )
    add = client_commands.add_parser("add", help="register a hospital, pharmacy or agency")
    add.add_argument("new_client_id", metavar="CLIENT_ID")
    add.add_argument("--kind", required=True, choices=["hospital", "pharmacy", "agency"])
    add.add_argument("--name", required=True)
    add.add_argument("--level", choices=["community", "level1", "level2", "level3"])
    add.add_argument("--region")
    add.add_argument("--public-key", type=Path, required=True, help="PEM public key file")
    add.add_argument(
        "--national-code",
        metavar="FIXMEDINS_CODE",
        help="the institution code its national-interface messages carry (default: CLIENT_ID)",
    )
    add.add_argument(
        "--national-codes-allowed",
        action="store_true",
        help="its national fee lines may name catalog codes (med_list_codg) directly",
    )
    _add_connection(add)
    add.set_defaults(handler=_clients_add)

    load = commands.add_parser("load", help="load the agency's data into a running gateway")
    load.add_argument("what", choices=["policy", "catalog", "mapping", "members"])
    load.add_argument(
        "files",
        type=Path,
        nargs="+",
        help="policy: JSON or YAML files; catalog, mapping: CSV; members: JSONL",
    )
    load.add_argument(
        "--for",
        dest="mapping_client",
        metavar="CLIENT_ID",
        help="mapping: the hospital or pharmacy",
    )
    load.add_argument(
        "--confirm", action="store_true", help="mapping: accept changes of kind or category"
    )
    _add_connection(load)
    load.set_defaults(handler=_load)

    export = commands.add_parser("export", help="the agency's signed files of one day")
    export.add_argument("--date", required=True, help="settlement day YYYY-MM-DD")
    export.add_argument("--out", type=Path, required=True, help="directory to write")
    export.add_argument(
        "--provisional",
        action="store_true",
        help="a day still open: a file marked final: false (a closed day's is final)",
    )
    _add_connection(export)
    export.set_defaults(handler=_export)

    reconcile = commands.add_parser(
        "reconcile",
        help="对账: a day of the HIS's own records (CSV) against onestop, signed as the hospital",
        description="Compare a day of the hospital's own records with onestop's: totals, each "
        "settlement by id and amount, and per visit type and scheme when the file has those "
        "columns. The CSV needs settlement_id and total, basic_fund, supplementary, assistance, "
        "personal_account, cash (fen; --yuan for yuan with two decimals); event (settlement or "
        "reversal), visit_type and scheme are optional; other columns are ignored, so "
        "onestop's own settlements.csv reads as it is. Prints what only one side holds and "
        "each settlement whose amounts differ. Exit status: 0 balanced, 3 unbalanced, 1 "
        "refused by the gateway, 2 nothing sent.",
    )
    reconcile.add_argument("file", type=Path, help="the HIS export of the day (CSV)")
    reconcile.add_argument("--date", required=True, help="settlement day YYYY-MM-DD (Beijing)")
    reconcile.add_argument(
        "--yuan", action="store_true", help="amounts are yuan with two decimals, not fen"
    )
    reconcile.add_argument("--json", action="store_true", help="print the answer as JSON")
    _add_connection(reconcile)
    reconcile.set_defaults(handler=_reconcile)

    reconciliations = commands.add_parser(
        "reconciliations",
        help="the agency's view of a day: which clients balanced, which did not, by how much",
    )
    reconciliations.add_argument("--date", required=True, help="settlement day YYYY-MM-DD")
    reconciliations.add_argument(
        "--for", dest="for_client", metavar="CLIENT_ID", help="one client's only"
    )
    _add_connection(reconciliations)
    reconciliations.set_defaults(handler=_reconciliations)

    console_login = commands.add_parser(
        "console-login",
        help="print a one-time link that opens the agency console in a browser (signed with "
        "the agency's key; it works once, within a minute)",
    )
    console_login.add_argument(
        "--page",
        help="the console page to land on, e.g. /console/reviews (default: today's overview)",
    )
    _add_connection(console_login)
    console_login.set_defaults(handler=_console_login)

    verify = commands.add_parser(
        "verify-export", help="check an export's hashes, date, files and signature"
    )
    verify.add_argument("source", type=Path, help="the export's directory or its zip")
    trust = verify.add_mutually_exclusive_group()
    trust.add_argument(
        "--public-key", type=Path, help="the gateway key to trust (PEM); without it: integrity only"
    )
    trust.add_argument(
        "--keys",
        type=Path,
        help="the gateway's published keys (the JSON GET /v1/keys answers); the manifest's "
        "key id picks one",
    )
    verify.add_argument("--date", help="the day asked for (YYYY-MM-DD): the export must be of it")
    verify.set_defaults(handler=_verify_export)

    verify_receipt = commands.add_parser(
        "verify-receipt",
        help="check a settlement receipt's signature, or a statement's seal (its QR code), "
        "with the gateway's published keys (no client key needed)",
    )
    verify_receipt.add_argument(
        "receipt",
        type=Path,
        nargs="?",
        help="the result as answered (JSON), or a file holding a statement's seal",
    )
    verify_receipt.add_argument(
        "--seal", help="a statement's seal: the text its QR code holds (onestop-statement:1|...)"
    )
    source = verify_receipt.add_mutually_exclusive_group()
    source.add_argument("--url", help="the gateway to ask GET /v1/keys (ONESTOP_URL; :8080)")
    source.add_argument("--data-dir", type=Path, help="a running onestop serve's directory")
    source.add_argument("--keys", type=Path, help="a saved GET /v1/keys answer (JSON)")
    verify_receipt.set_defaults(handler=_verify_receipt)

    gen = commands.add_parser(
        "gen",
        help="write a reproducible synthetic region: policies, catalog, clients and "
        "their keys, mappings, members",
    )
    gen.add_argument("--out", type=Path, required=True, help="directory to write")
    gen.add_argument("--members", type=int, default=1_000_000)
    gen.add_argument("--items", type=int, default=50_000, help="catalog items")
    gen.add_argument("--hospitals", type=int, default=50)
    gen.add_argument("--pharmacies", type=int, default=200)
    gen.add_argument("--mapping-rows", type=int, default=20_000, help="rows per client")
    gen.add_argument("--seed", type=int, default=2026)
    gen.set_defaults(handler=_gen)

    gen_members = commands.add_parser("gen-members", help="only a members JSON Lines file")
    gen_members.add_argument("--count", type=int, default=1_000_000)
    gen_members.add_argument("--seed", type=int, default=2026)
    gen_members.add_argument("--out", type=Path, required=True)
    gen_members.set_defaults(handler=_gen_members)

    load_all = commands.add_parser("load-dataset", help="load a directory written by gen")
    load_all.add_argument("directory", type=Path)
    _add_connection(load_all)
    load_all.set_defaults(handler=_load_dataset)

    bench = commands.add_parser("bench", help="measure settlement speed and memory")
    bench.add_argument(
        "target",
        nargs="?",
        default="stack",
        choices=["stack", "engine", "memory", "export", "archive"],
        help="stack (default): settlement throughput against the baseline; engine; memory; "
        "export; archive (Redis memory before and after archiving a generated month)",
    )
    bench.add_argument("--seconds", type=float, default=20.0, help="per phase (stack)")
    bench.add_argument("--members-loaded", type=int, default=20_000, help="members (stack)")
    bench.add_argument(
        "--appendfsync",
        choices=["always", "everysec"],
        default="always",
        help="Redis durability of the measured stack (always, as onestop serve runs)",
    )
    bench.add_argument("--gateway-workers", type=int, help="gateway processes (stack)")
    bench.add_argument("--adjudicator-workers", type=int, help="adjudicator processes (stack)")
    bench.add_argument(
        "--redis-shards", type=int, default=1, help="Redis Cluster primaries; 1: one server (stack)"
    )
    bench.add_argument(
        "--redis-replicas",
        type=int,
        default=0,
        help="replicas of each primary, writes acknowledged once they hold them (stack)",
    )
    bench.add_argument(
        "--controls",
        action="store_true",
        help="also run the discharge and pharmacy phases with the controls across visits on "
        "(stack): their cost against the same baseline",
    )
    bench.add_argument(
        "--latency-rate",
        type=float,
        help="discharges a second of the latency phase (stack; default 70 %% of the peak): "
        "two versions' tails compared at the same load",
    )
    bench.add_argument(
        "--flamegraphs",
        type=Path,
        help="write py-spy flame graphs of both services during the discharge phase into this "
        "folder (stack; the sampling costs CPU, so that run's figures are not the reference)",
    )
    bench.add_argument("--settlements", type=int, default=1_000_000, help="settlements (export)")
    bench.add_argument("--lines", type=int, default=200, help="bill lines (engine)")
    bench.add_argument("--iterations", type=int, default=2000, help="runs (engine)")
    bench.add_argument("--members", type=int, default=100_000, help="members (memory)")
    bench.add_argument("--days", type=int, default=30, help="days generated (archive)")
    bench.add_argument(
        "--per-day", type=int, default=500, help="settlements generated a day (archive)"
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(handler=_bench)

    soak = commands.add_parser(
        "soak",
        help="mixed load while Redis and adjudicators are killed, then reconcile every fen",
    )
    soak.add_argument("--minutes", type=float, default=10.0)
    soak.add_argument("--members", type=int, default=5_000)
    soak.add_argument("--terminals", type=int, default=12, help="concurrent terminals")
    soak.add_argument(
        "--fault-every",
        type=float,
        nargs=2,
        default=(15.0, 45.0),
        metavar=("MIN", "MAX"),
        help="seconds between faults, drawn uniformly (15 45)",
    )
    soak.add_argument("--seed", type=int, default=2026)
    soak.add_argument(
        "--failover",
        action="store_true",
        help="a 3-primary Redis Cluster with a replica each; the faults kill primaries",
    )
    soak.add_argument("--json", action="store_true", help="one line of JSON")
    soak.set_defaults(handler=_soak)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``onestop`` command."""
    args = build_parser().parse_args(argv)
    if getattr(args, "what", None) == "mapping" and not args.mapping_client:
        build_parser().error("load mapping needs --for CLIENT_ID")
    if getattr(args, "what", None) in ("catalog", "mapping") and len(args.files) > 1:
        # Each upload replaces the whole catalog or mapping: a second file would undo the first.
        build_parser().error(f"load {args.what} takes one file (each upload replaces it whole)")
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        print("onestop: interrupted", file=sys.stderr)
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
