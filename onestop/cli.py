"""The ``onestop`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _bench(args: argparse.Namespace) -> int:
    if args.target == "memory":
        from onestop.bench.memory import measure_member_memory

        figures = measure_member_memory(members=args.members)
        if args.json:
            print(json.dumps(figures.as_dict()))
        else:
            print(
                f"memory: {figures.members} members in Redis {figures.redis_version}\n"
                f"  record (profile, sealed identity, balance, index)  "
                f"{figures.record_bytes:6.0f} bytes/member\n"
                f"  record and one year of state                       "
                f"{figures.with_year_bytes:6.0f} bytes/member"
            )
        return 0

    from onestop.bench.engine import time_engine

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


def _demo(args: argparse.Namespace) -> int:
    from onestop.demo.walkthrough import run_in_process

    settled = run_in_process()
    print(f"\n{settled} visits settled.")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from onestop.logs import configure
    from onestop.serve import ServeSettings, run

    overrides = {
        name: value
        for name, value in (
            ("data_dir", args.data_dir),
            ("port", args.port),
            ("adjudicator_port", args.adjudicator_port),
            ("appendfsync", args.appendfsync),
        )
        if value is not None
    }
    settings = ServeSettings(**overrides)
    configure(settings.log_level)
    return run(settings)


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per task."""
    parser = argparse.ArgumentParser(
        prog="onestop",
        description="One-stop settlement gateway for public medical insurance.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bench = commands.add_parser("bench", help="measure settlement speed")
    bench.add_argument("target", choices=["engine", "memory"], help="what to measure")
    bench.add_argument("--members", type=int, default=100_000, help="members (memory)")
    bench.add_argument("--lines", type=int, default=200, help="bill lines (default 200)")
    bench.add_argument("--iterations", type=int, default=2000, help="runs (default 2000)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(handler=_bench)

    serve = commands.add_parser(
        "serve", help="run Redis and the services on this machine until SIGTERM or SIGINT"
    )
    serve.add_argument("--data-dir", type=Path, help="where data and keys live (var/onestop)")
    serve.add_argument("--port", type=int, help="HTTP gateway port on 127.0.0.1 (8080)")
    serve.add_argument("--adjudicator-port", type=int, help="gRPC port (default: a free one)")
    serve.add_argument(
        "--appendfsync",
        choices=["always", "everysec"],
        help="always (default): no acknowledged settlement is ever lost; everysec: faster, a "
        "power cut may lose up to one second of acknowledged settlements",
    )
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser("demo", help="settle the demo region's sample visits")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``onestop`` command."""
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
