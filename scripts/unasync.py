"""Write the blocking client (``client/_sync.py``) from the asyncio one (``client/_async.py``).

The two clients differ only in ``async``/``await`` and the tritonclient module they drive,
so the blocking one is generated (as httpcore and urllib3 generate theirs) and never edited
by hand. ``--check`` exits 1 when the committed file is stale; a test runs it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parent.parent / "client"
SOURCE, TARGET = CLIENT / "_async.py", CLIENT / "_sync.py"
HEADER = "# Generated from _async.py by scripts/unasync.py (make client): do not edit.\n"

SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    (r'"""The asyncio client\."""', '"""The blocking client."""'),
    (r"Asyncio client of", "Blocking client of"),
    (r"from collections\.abc import Awaitable\n", ""),
    (r"tritonclient\.grpc\.aio\b", "tritonclient.grpc"),
    (r"\bAsyncVitrineClient\b", "VitrineClient"),
    (r"TimedCall\[Awaitable\[Any\]\]", "TimedCall[Any]"),
    (r"\basync_call_with_retry\b", "call_with_retry"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\basync def\b", "def"),
    (r"\bawait ", ""),
)


def blocking_source(source: str) -> str:
    """``source`` of the asyncio client turned into the blocking client, ruff-formatted."""
    for pattern, replacement in SUBSTITUTIONS:
        source = re.sub(pattern, replacement, source)
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(TARGET), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return HEADER + formatted.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the target is stale")
    parser.add_argument("--target", type=Path, default=TARGET, help="default: %(default)s")
    args = parser.parse_args()
    expected = blocking_source(SOURCE.read_text())
    if not args.check:
        args.target.write_text(expected)
        return 0
    if args.target.read_text() == expected:
        return 0
    print(f"{args.target} is stale: run `make client`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
