"""`vitrine regenerate`: every committed file derived from the specs, rewritten in one go.

The derived files, each owned by one :class:`Derived` entry of :data:`DERIVED`:

* ``model_repository/``: the production (``gpu``) Triton repository, as ``vitrine build
  --target gpu`` writes it;
* ``client/_sync.py``: the blocking client, made from the asyncio one (``client/_async.py``)
  by :func:`blocking_client` (the two differ only in ``async``/``await``);
* the model lists of the Helm values files (:mod:`vitrine.helm_values`);
* each model's card ``reports/<model>/README.md`` and the README's results table
  (:mod:`vitrine.reporting`).

``--check`` writes nothing and lists what is stale; CI runs it, so a change to a spec, a
report or the asyncio client that is not regenerated fails the build.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from vitrine import paths

__all__ = ["DERIVED", "Derived", "blocking_client", "regenerate"]

Files = dict[Path, bytes]
"""File contents by path relative to the source root."""


@dataclass(frozen=True)
class Derived:
    """Files derived from the specs: ``render`` gives what they should hold; ``owned`` is the
    folder whose every file they are (a file there that ``render`` omits is stale), if any."""

    name: str
    render: Callable[[], Files]
    owned: Path | None = None


def _model_repository() -> Files:
    from vitrine.export.repository import build_repository
    from vitrine.export.triton_config import Target

    with tempfile.TemporaryDirectory(prefix="vitrine-repository-") as folder:
        root = build_repository(Target.GPU, Path(folder) / "model_repository")
        return {
            Path("model_repository") / path.relative_to(root): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }


_ASYNC_CLIENT, _SYNC_CLIENT = Path("client/_async.py"), Path("client/_sync.py")
_SYNC_HEADER = "# Generated from _async.py by `vitrine regenerate`: do not edit.\n"
_UNASYNC: tuple[tuple[str, str], ...] = (
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


def blocking_client(source: str) -> str:
    """The asyncio client's ``source`` turned into the blocking client, ruff-formatted (as
    httpcore and urllib3 generate theirs)."""
    for pattern, replacement in _UNASYNC:
        source = re.sub(pattern, replacement, source)
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(_SYNC_CLIENT), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return _SYNC_HEADER + formatted.stdout


def _sync_client() -> Files:
    source = (paths.source_root() / _ASYNC_CLIENT).read_text()
    return {_SYNC_CLIENT: blocking_client(source).encode()}


def _helm_values() -> Files:
    from vitrine.helm_values import VALUES_FILES, values_with_models

    root = paths.source_root()
    return {path: values_with_models((root / path).read_text()).encode() for path in VALUES_FILES}


def _reports() -> Files:
    from vitrine.reporting import rendered_reports

    root = paths.source_root()
    rendered = rendered_reports(root / "README.md")
    return {path.relative_to(root): text.encode() for path, text in rendered.items()}


DERIVED: tuple[Derived, ...] = (
    Derived("model repository", _model_repository, owned=Path("model_repository")),
    Derived("blocking client", _sync_client),
    Derived("Helm model lists", _helm_values),
    Derived("model cards and results table", _reports),
)


def _stale(entry: Derived, root: Path) -> tuple[Files, list[Path]]:
    """What ``entry`` should write, and the paths (relative) that differ or should go."""
    files = entry.render()
    stale = [
        path
        for path, content in files.items()
        if not (root / path).is_file() or (root / path).read_bytes() != content
    ]
    if entry.owned is not None:
        existing = {p.relative_to(root) for p in (root / entry.owned).rglob("*") if p.is_file()}
        stale += sorted(existing - set(files))
    return files, stale


def regenerate(
    *, check: bool = False, entries: Iterable[Derived] = DERIVED, root: Path | None = None
) -> list[Path]:
    """Bring every derived file up to date (``check``: only look); returns the stale paths,
    relative to the source root."""
    root = root or paths.source_root()
    stale: list[Path] = []
    for entry in entries:
        files, entry_stale = _stale(entry, root)
        stale += entry_stale
        if check:
            continue
        for path in entry_stale:
            target = root / path
            if path in files:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(files[path])
            else:
                target.unlink()
    return stale
