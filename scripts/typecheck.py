"""`make lint`'s type check: ``mypy --strict`` over every package and over ``scripts/``.

pyproject.toml maps the ``vitrine`` packages onto top-level folders (``package-dir``:
``vitrine.client`` is ``client/``, and so on), which mypy cannot import by path. This lays
them out as they import, as symlinks under ``build/typed/``, checks ``-p vitrine`` from
there (the Triton python models included, as ``vitrine.export.python_models``) and then
``scripts/``, and prints mypy's report with the files' paths in the checkout.

    python scripts/typecheck.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typed"
LINKED_PATH = re.compile(r"^(build/typed/[^:]+)(?=:)", re.MULTILINE)


def link_tree(root: Path, tree: Path) -> None:
    """Rebuild ``tree`` as the installed packages lay out: one folder per package, its
    entries (modules, data and plain folders, not its subpackages) linked to the checkout."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    package_dir: dict[str, str] = pyproject["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(tree, ignore_errors=True)
    for package, folder in package_dir.items():
        target = tree.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        subpackages = {p.rsplit(".", 1)[1] for p in package_dir if p.rpartition(".")[0] == package}
        for entry in sorted((root / folder).iterdir()):
            if entry.name not in subpackages and entry.name != "__pycache__":
                (target / entry.name).symlink_to(entry)


def mypy(*args: str, mypy_path: Path | None = None) -> int:
    """Run ``mypy --strict`` and print its report, linked paths shown as checkout paths."""
    env = dict(os.environ, MYPYPATH=str(mypy_path)) if mypy_path else None
    command = [sys.executable, "-m", "mypy", "--strict", *args]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    print(
        LINKED_PATH.sub(lambda m: str((ROOT / m[1]).resolve().relative_to(ROOT)), run.stdout),
        end="",
    )
    print(run.stderr, end="", file=sys.stderr)
    return run.returncode


def main() -> int:
    link_tree(ROOT, TREE)
    packages = mypy("-p", "vitrine", mypy_path=TREE.relative_to(ROOT))
    scripts = mypy("scripts")
    return packages or scripts


if __name__ == "__main__":
    sys.exit(main())
