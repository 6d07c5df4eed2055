"""`make gpu-bundle`: what a GPU node lacks for `scripts/gpu_check.sh`, as small as it goes.

The node cannot download anything, and each device call carries the checkout plus at most
64 MiB in all. This packs, from this machine:

* the Triton server of the installed ``nvidia-pytriton`` wheel, stripped to what serving
  needs (the binary, the python backend, the stub for the node's Python, the local response
  cache and the shared libraries without ``libpython3.*``), symbols stripped, and ICU's
  29 MB data table replaced by an empty one: only libxml2's conversions of non-UTF-8
  encodings read it, which Triton uses for cloud storage (the stripped server serves every
  pipeline here: `scripts/gpu_check.sh --smoke`);
* every shared library and extension module without its symbol tables;
* numpy 1.26.4 for the python-backend stubs (its tests and f2py dropped): with numpy 2 this
  server's stubs return empty tensors;
* the gRPC client (``tritonclient`` and ``python-rapidjson``) for the node's Python.

into ``bundle.tar.xz``, split into parts that each fit one call beside the checkout:
``<out>/<n>/bundle.tar.xz.<n>`` with ``SHA256SUMS`` (of every part) beside each. Prints the
device calls that carry them.

    python scripts/gpu_bundle.py [--out build/gpu-bundle] [--python 3.12]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import lzma
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

LIMIT_BYTES = 64 << 20  # what one device call carries: the checkout and the carried paths
MARGIN_BYTES = 1 << 20  # for files the checkout gains before the call
WHEELS = ("numpy==1.26.4", "tritonclient==2.73.0", "python-rapidjson==1.25")
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
NUMPY_UNUSED = ("f2py", "distutils", "tests", "_pyinstaller", "array_api")
ICU_STUB_SOURCE = """\
/* Stands in for ICU's data table: only libxml2's non-UTF-8 conversions read it. */
const unsigned char {symbol}[64] __attribute__((aligned(16))) = {{0}};
"""


def _pytriton() -> tuple[Path, Path]:
    """The installed wheel's ``pytriton/tritonserver`` and ``nvidia_pytriton.libs``."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nvidia-pytriton is not installed here: run `make setup` first")
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "tritonserver", package.parent / "nvidia_pytriton.libs"


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def strip_symbols(root: Path) -> None:
    strip = shutil.which("strip")
    if strip is None:
        print("warning: no `strip` here; the server keeps its symbols (a larger bundle)")
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and _is_elf(path):
            subprocess.run([strip, "--strip-unneeded", str(path)], check=True)


def _stub_icu_data(libs: Path) -> None:
    """Replace ICU's data library by one exporting the same (empty) table."""
    compiler, nm = shutil.which("cc"), shutil.which("nm")
    (data,) = libs.glob("libicudata*")
    if compiler is None or nm is None:
        print("warning: no `cc`/`nm` here; ICU's 29 MB data table stays in the bundle")
        return
    symbols = subprocess.run(
        [nm, "-D", "--defined-only", str(data)], capture_output=True, text=True, check=True
    ).stdout.split()
    (symbol,) = [name for name in symbols if name.startswith("icudt") and name.endswith("_dat")]
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "icudata.c"
        source.write_text(ICU_STUB_SOURCE.format(symbol=symbol))
        stub = Path(work) / data.name
        subprocess.run(
            [
                compiler,
                "-shared",
                "-fPIC",
                "-o",
                str(stub),
                f"-Wl,-soname,{data.name}",
                str(source),
            ],
            check=True,
        )
        shutil.copy2(stub, data)


def stage_server(target: Path, python: str) -> None:
    """The stripped server under ``target`` (laid out as the wheel's site-packages)."""
    server, libs = _pytriton()
    root = target / "pytriton" / "tritonserver"
    _copy(server / "bin" / "tritonserver", root / "bin" / "tritonserver")
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        _copy(server / "backends" / "python" / name, root / "backends" / "python" / name)
    stub = Path("python_backend_stubs") / python / "triton_python_backend_stub"
    if not (server / stub).is_file():
        raise SystemExit(f"nvidia-pytriton has no python backend stub for Python {python}")
    _copy(server / stub, root / stub)
    for path in (server / "caches").rglob("*.so"):
        _copy(path, root / path.relative_to(server))
    for path in sorted(libs.iterdir()):
        if not path.name.startswith("libpython3"):  # the stub uses the node's libpython
            _copy(path, target / "nvidia_pytriton.libs" / path.name)
    _stub_icu_data(target / "nvidia_pytriton.libs")


def download_wheels(python: str, folder: Path, wheels: Sequence[str] = WHEELS) -> list[Path]:
    """Binary wheels of ``wheels`` (no dependencies) for the node's Python, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [argument for name in PLATFORMS for argument in ("--platform", name)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    subprocess.run([*command, *platforms, "--dest", str(folder), *wheels], check=True)
    names = {wheel.split("==")[0].lower().replace("-", "_") for wheel in wheels}
    return sorted(w for w in folder.glob("*.whl") if w.name.split("-")[0].lower() in names)


def unpack_wheel(wheel: Path, target: Path, dropped: tuple[str, ...] = ()) -> None:
    """``wheel``'s files into ``target`` (a site folder), less ``dropped`` folders."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            parts = Path(member).parts
            if any(part in dropped for part in parts) or member.endswith(".pyi"):
                continue
            if parts[-1].startswith("_simd."):
                continue  # numpy's SIMD test extension (3.5 MB; numpy imports the others)
            archive.extract(member, target)


def stage_wheels(target: Path, python: str, downloads: Path) -> dict[str, str]:
    """numpy for the stubs (``stub-site``) and the client (``site``); returns the wheels."""
    wheels = download_wheels(python, downloads / f"py{python}")
    for wheel in wheels:
        if wheel.name.startswith("numpy-"):
            unpack_wheel(wheel, target / "stub-site", NUMPY_UNUSED)
        else:
            unpack_wheel(wheel, target / "site")
    return {wheel.name.split("-")[0]: wheel.name for wheel in wheels}


def travelling_bytes(root: Path) -> int:
    """What the checkout adds to a device call: tracked and untracked-not-ignored files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    paths = {root / name.decode() for name in listed if name}
    return sum(path.stat().st_size for path in paths if path.is_file() and not path.is_symlink())


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def room_per_call(checkout: int, most: int | None = None) -> int:
    """The bytes of one part: what a device call carries beside ``checkout`` bytes of the
    checkout (at most ``most``); SystemExit when that leaves less than 2 MiB."""
    room = LIMIT_BYTES - checkout - MARGIN_BYTES
    if most is not None:
        room = min(room, most)
    if room < (2 << 20):
        raise SystemExit(f"the checkout alone is {checkout / 2**20:.1f} MiB of the 64 MiB a call")
    return room


def pack(stage: Path, out: Path, part_bytes: int) -> list[Path]:
    """``stage`` as ``bundle.tar.xz`` split into ``out/<n>/`` parts, with SHA256SUMS."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    archive = out / "bundle.tar.xz"
    with (
        lzma.open(archive, "wb", preset=9 | lzma.PRESET_EXTREME) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as tar,
    ):
        for path in sorted(stage.iterdir()):
            tar.add(path, arcname=path.name)
    data = archive.read_bytes()
    archive.unlink()
    parts = []
    for index, start in enumerate(range(0, len(data), part_bytes), start=1):
        part = out / str(index) / f"bundle.tar.xz.{index}"
        part.parent.mkdir()
        part.write_bytes(data[start : start + part_bytes])
        parts.append(part)
    sums = "".join(f"{_sha256(part)}  {part.name}\n" for part in parts)
    for part in parts:
        (part.parent / "SHA256SUMS").write_text(sums)
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/gpu-bundle"))
    parser.add_argument("--python", default="3.12", help="the node's Python (default 3.12)")
    parser.add_argument(
        "--downloads", type=Path, default=Path("build/gpu-downloads"), help="wheel cache"
    )
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    checkout = travelling_bytes(root)
    room = room_per_call(checkout)
    with tempfile.TemporaryDirectory(prefix="vitrine-gpu-bundle-") as work:
        stage = Path(work)
        stage_server(stage / "triton", args.python)
        wheels = stage_wheels(stage, args.python, args.downloads)
        strip_symbols(stage)  # the server's libraries and the wheels' extensions ship their symbols
        about = {"python": args.python, "wheels": wheels, "server": "nvidia-pytriton 0.7.0"}
        (stage / "BUNDLE.json").write_text(json.dumps(about, indent=2) + "\n")
        parts = pack(stage, args.out, room)
    total = sum(part.stat().st_size for part in parts)
    print(
        f"wrote {len(parts)} part(s), {total / 2**20:.1f} MiB in all, to {args.out}; the "
        f"checkout travels as {checkout / 2**20:.1f} MiB, so each call carries one part"
    )
    for index, part in enumerate(parts, start=1):
        final = index == len(parts)
        where = "" if args.out == Path("build/gpu-bundle") else f" --bundle {args.out}"
        command = "scripts/gpu_check.sh $OUT" if final else "scripts/gpu_check.sh --stage"
        print(f"  call {index}: carry [{str(part.parent)!r}]  command: {command}{where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
