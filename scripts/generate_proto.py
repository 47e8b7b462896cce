#!/usr/bin/env python3
"""Generate the Python code for proto/ (messages, gRPC stubs and their type stubs).

The one way the checked-in generated code is made. ``--check`` regenerates into a temporary
directory and exits non-zero when the result differs from what is checked in.

Usage: python scripts/generate_proto.py [--check]
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
PACKAGE = Path("onestop/settlement/v1")
GENERATED_ROOT = Path("onestop/settlement")  # everything below is generated


def generate(out: Path) -> list[Path]:
    """Run protoc for every .proto under proto/ into ``out``; return the files written."""
    protos = sorted(PROTO_ROOT.rglob("*.proto"))
    # protoc finds the mypy plugins beside this interpreter (the virtualenv's bin/).
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(path.relative_to(PROTO_ROOT)) for path in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    package = out / PACKAGE
    for directory in (package, *package.parents):
        if out / GENERATED_ROOT in (directory, *directory.parents):
            (directory / "__init__.py").write_text(
                '"""Generated from proto/ by scripts/generate_proto.py."""\n'
            )
    return sorted(path for path in (out / GENERATED_ROOT).rglob("*") if path.is_file())


def main() -> int:
    """Generate in place, or with ``--check`` compare a fresh generation with the tree."""
    check = "--check" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        written = generate(out)
        changed = []
        for path in written:
            relative = path.relative_to(out)
            target = ROOT / relative
            if check:
                if not target.exists() or not filecmp.cmp(path, target, shallow=False):
                    changed.append(str(relative))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        if check:
            expected = {str(path.relative_to(out)) for path in written}
            present = {
                str(path.relative_to(ROOT))
                for path in (ROOT / GENERATED_ROOT).rglob("*")
                if path.is_file() and "__pycache__" not in path.parts
            }
            changed.extend(sorted(present - expected))
            if changed:
                print("generated code is out of date: " + ", ".join(changed), file=sys.stderr)
                print("run: python scripts/generate_proto.py", file=sys.stderr)
                return 1
            print("generated code is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
