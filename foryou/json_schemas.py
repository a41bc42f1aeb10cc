"""`foryou json-schemas [--check] [--out DIR]`: write (or check) the published JSON Schema of every public topic.

The files are generated from the wire contract's record types (`topics.json_schema`); the checked-in copies
live in topics/json-schemas/ and ship with the package, so non-Python clients validate against the contract
the worker decodes with.
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

from topics.json_schema import schema_files

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "topics" / "json-schemas"


def stale_files(directory: Path) -> list[str]:
    """The schema files under `directory` that are missing or differ from the generated ones."""
    return [name for name, text in schema_files().items() if _read(directory / name) != text]


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foryou json-schemas", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SCHEMA_DIR, help=f"the directory (default {SCHEMA_DIR})")
    parser.add_argument("--check", action="store_true", help="only check the files are current (exit 1 if not)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        for name in stale:
            print(f"{args.out / name}: missing or stale; run `foryou json-schemas`")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in schema_files().items():
        (args.out / name).write_bytes(text)
        print(args.out / name)
    return 0
