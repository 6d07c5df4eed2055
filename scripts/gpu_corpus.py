"""`make gpu-corpus`: the photo corpus, and what training needs besides torch, for a GPU node.

The node has torch but not the Debian packages the ``photos`` corpus comes from, and cannot
download. This packs, from this machine:

* ``corpus/<name><suffix>``: every packaged photo of ``training/corpus.py``, the installed
  file's bytes unchanged (10.3 MiB of JPEGs: re-encoding would only add loss and bytes, and
  the node then decodes exactly what this machine decodes);
* ``site/``: pure-Python or binary wheels for the node's Python that training imports and a
  bare node may lack (``tqdm``; ``PyWavelets``, which the denoiser's baseline evaluation
  uses), unpacked, tests dropped and symbols stripped;
* ``BUNDLE.json``: each photo's package, source path and SHA-256.

into parts that each travel with one device call (the mechanism of ``scripts/gpu_bundle.py``:
``<out>/<n>/bundle.tar.xz.<n>`` with ``SHA256SUMS``), and prints the device calls.

    python scripts/gpu_corpus.py [--out build/gpu-corpus] [--python 3.12]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from gpu_bundle import (
    download_wheels,
    pack,
    room_per_call,
    strip_symbols,
    travelling_bytes,
    unpack_wheel,
)

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ("tqdm==4.67.1", "PyWavelets==1.8.0")


def stage_photos(target: Path) -> dict[str, Any]:
    """Copy every packaged photo to ``target`` as ``<name><suffix>``; their record."""
    corpus = importlib.import_module("vitrine.training.corpus")
    target.mkdir(parents=True, exist_ok=True)
    record = {}
    for photo in corpus.PACKAGED_PHOTOS:
        source = photo.installed_file()  # MissingFile naming the package and `make setup`
        copy = target / f"{photo.name}{source.suffix.lower()}"
        shutil.copyfile(source, copy)
        record[photo.name] = {
            "package": photo.package,
            "source": str(source),
            "sha256": hashlib.sha256(copy.read_bytes()).hexdigest(),
        }
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/gpu-corpus"))
    parser.add_argument("--python", default="3.12", help="the node's Python (default 3.12)")
    parser.add_argument(
        "--downloads", type=Path, default=Path("build/gpu-downloads"), help="wheel cache"
    )
    parser.add_argument("--part-mib", type=float, help="part size (default: what a call fits)")
    args = parser.parse_args(argv)
    checkout = travelling_bytes(ROOT)
    part_bytes = room_per_call(checkout, int(args.part_mib * 2**20) if args.part_mib else None)
    with tempfile.TemporaryDirectory(prefix="vitrine-gpu-corpus-") as work:
        stage = Path(work)
        photos = stage_photos(stage / "corpus")
        wheels = download_wheels(args.python, args.downloads / f"py{args.python}", WHEELS)
        for wheel in wheels:
            unpack_wheel(wheel, stage / "site", ("tests",))
        strip_symbols(stage / "site")
        about = {"python": args.python, "photos": photos, "wheels": [w.name for w in wheels]}
        (stage / "BUNDLE.json").write_text(json.dumps(about, indent=2) + "\n")
        parts = pack(stage, args.out, part_bytes)
    total = sum(part.stat().st_size for part in parts)
    print(
        f"wrote {len(parts)} part(s), {total / 2**20:.1f} MiB in all, to {args.out}; the "
        f"checkout travels as {checkout / 2**20:.1f} MiB, so each call carries one part"
    )
    where = "" if args.out == Path("build/gpu-corpus") else f" --corpus {args.out}"
    for index, part in enumerate(parts, start=1):
        final = index == len(parts)
        command = "scripts/gpu_train.sh $OUT MODEL..." if final else "scripts/gpu_train.sh --stage"
        print(f"  call {index}: carry [{str(part.parent)!r}]  command: {command}{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
