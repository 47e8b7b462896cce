#!/usr/bin/env python3
"""Refresh the repository's copy of the shared spec, cases and seeds from ``../shared``.

The project keeps a copy so that a clone stands alone: ``docs/spec`` (the rules and the
contract), ``docs/cases`` (the acceptance cases) and ``docs/seeds`` (the source documents).
``--check`` compares instead of copying and exits 1, listing every difference, when the copy
is stale (``tests/test_repository.py`` runs it whenever ``../shared`` exists). After a copy,
read the difference (``git diff docs/``) and record what changed in ``CHANGELOG.md``.

Usage: python scripts/sync_shared.py [--check]
"""

from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
COPIES = {"spec": "docs/spec", "cases": "docs/cases", "seeds": "docs/seeds"}
"""Folder of ``../shared`` -> its copy in the repository."""


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def differences() -> list[str]:
    """Every file that is only on one side or differs, for every copied folder."""
    found = []
    for source, target in COPIES.items():
        shared, copy = SHARED / source, REPO_ROOT / target
        theirs, ours = _files(shared), _files(copy) if copy.is_dir() else set()
        found += [f"only in ../shared/{source}: {name}" for name in sorted(theirs - ours)]
        found += [f"only in {target}: {name}" for name in sorted(ours - theirs)]
        found += [
            f"{target}/{name} differs from ../shared/{source}/{name}"
            for name in sorted(theirs & ours)
            if not filecmp.cmp(shared / name, copy / name, shallow=False)
        ]
    return found


def copy() -> None:
    """Replace each copy with the shared folder's current content."""
    for source, target in COPIES.items():
        destination = REPO_ROOT / target
        shutil.rmtree(destination, ignore_errors=True)
        shutil.copytree(SHARED / source, destination, copy_function=shutil.copyfile)
        print(f"../shared/{source} -> {target}")


def main(argv: list[str]) -> int:
    """Copy, or with ``--check`` compare."""
    if not SHARED.is_dir():
        print(f"sync-shared: there is no {SHARED} beside this clone", file=sys.stderr)
        return 2
    if "--check" in argv:
        stale = differences()
        for line in stale:
            print(line, file=sys.stderr)
        if stale:
            print("the copy is stale: run `make sync-shared`", file=sys.stderr)
        return 1 if stale else 0
    copy()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
