"""The GPU check: one command on a GPU node, from the carried bundle to the benchmark.

    scripts/gpu_check.sh OUT             # on the node; build/gpu-bundle/ carried (make gpu-bundle)
    scripts/gpu_check.sh --stage         # a call that only carries an earlier part of the bundle
    scripts/gpu_check.sh OUT --smoke     # here on CPU: the same steps, a CPU build, small sizes

Phases, each timed and logged to ``OUT/check.log``; a failed phase is reported and the later
ones that do not need it still run:

1. environment: the GPU (``nvidia-smi``), driver, CUDA, torch, Python, cores;
2. unpack: the bundle's parts (checked against SHA256SUMS) into the work folder: the
   stripped Triton server, numpy 1.26 for the python-backend stubs, the gRPC client;
3. environments: ``site/`` (Vitrine linked to this checkout, the client) for the node's
   Python, and ``stub-env/`` for the stubs (numpy 1.26 first, then ``site/`` and the
   node's packages: the stubs ignore PYTHONPATH and need numpy < 2);
4. build: ``vitrine build --target gpu-torch`` (artifacts traced and gated on this GPU);
5. serve: ``vitrine serve --target gpu-torch`` on that repository, in the background;
6. tests: ``pytest -m gpu tests/gpu`` against it;
7. bench: ``vitrine bench --target gpu-torch`` against it;
8. stop: the server, its log kept.

Writes at most 8 files to OUT: system.json (environment, phases, seconds), manifests.json
(every artifact's manifest: precision, FP16 gate, parity), pytest.txt, gpu_torch_bench.json
and .png, tritonserver.log, serve.log and check.log. Exit status 0 when every phase passed.
Uses the standard library only: Vitrine itself runs in the subprocesses.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SMOKE_MODELS = ("superres_x2", "denoise", "dcgan")
SMOKE_BENCH = ["--models", "superres_x2", "--sizes", "64", "--duration", "1", "--processes", "2"]
LOG_TAIL_BYTES = 4 << 20
BUDGET_S = 450.0  # the 8 minutes, with room to copy the results back


class Check:
    """The run: its folders, its log and the record of its phases."""

    def __init__(self, out: Path, work: Path, smoke: bool) -> None:
        self.out, self.work, self.smoke = out, work, smoke
        self.started = time.monotonic()
        self.phases: dict[str, dict[str, Any]] = {}
        self.system: dict[str, Any] = {"mode": "smoke" if smoke else "gpu"}
        out.mkdir(parents=True, exist_ok=True)
        self.log = (out / "check.log").open("a", encoding="utf-8")

    def say(self, text: str) -> None:
        line = f"[{time.monotonic() - self.started:6.1f} s] {text}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def remaining(self) -> float:
        return BUDGET_S - (time.monotonic() - self.started)

    def run(
        self,
        phase: str,
        command: Sequence[str],
        *,
        env: dict[str, str],
        timeout: float,
        output: Path | None = None,
    ) -> bool:
        """Run ``command`` as ``phase``, its output to the log (and ``output``)."""
        self.say(f"{phase}: {' '.join(command)} (at most {timeout:.0f} s)")
        started = time.monotonic()
        sink = (output or self.out / "check.log").open("a", encoding="utf-8")
        try:
            result = subprocess.run(  # not from the checkout: its vitrine/ is not the package
                command,
                cwd=self.work,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            status: int | str = result.returncode
        except subprocess.TimeoutExpired:
            status = "timed out"
        finally:
            sink.close()
        return self.record(phase, started, status == 0, status)

    def record(self, phase: str, started: float, ok: bool, status: object = None) -> bool:
        seconds = round(time.monotonic() - started, 1)
        self.phases[phase] = {"ok": ok, "seconds": seconds, "status": status}
        self.say(f"{phase}: {'ok' if ok else f'FAILED ({status})'} in {seconds} s")
        self.write()  # a call cut short at its limit still brings back what was done
        return ok

    def passed(self) -> bool:
        return all(phase["ok"] for phase in self.phases.values())

    def write(self) -> None:
        seconds = round(time.monotonic() - self.started, 1)
        self.system |= {"phases": self.phases, "seconds": seconds, "passed": self.passed()}
        (self.out / "system.json").write_text(json.dumps(self.system, indent=2) + "\n")


# -- 1. environment --------------------------------------------------------------------------------


def _output(command: Sequence[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def environment() -> dict[str, Any]:
    """What the figures are measured on."""
    query = "name,driver_version,memory.total,compute_cap,clocks.max.sm"
    gpus = _output(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"])
    probe = (
        "import json, torch; print(json.dumps({'torch': torch.__version__, "
        "'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(), "
        "'gpus_torch_sees': torch.cuda.device_count()}))"
    )
    versions = _output([sys.executable, "-c", probe])
    return {
        "gpus": gpus.splitlines() if gpus else [],
        "nvidia_smi": _output(["nvidia-smi"]),
        "python": platform.python_version(),
        "interpreter": sys.executable,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        **(json.loads(versions) if versions else {"torch": None}),
        "commit": _output(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
    }


# -- 2. unpack -------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def bundle_parts(bundle: Path) -> tuple[list[Path], list[str]]:
    """The parts SHA256SUMS lists, in order, and what is wrong with them (missing, altered)."""
    sums = sorted(bundle.glob("*/SHA256SUMS"))
    if not sums:
        return [], [f"no part of the bundle in {bundle} (make gpu-bundle, then carry its parts)"]
    expected = [line.split() for line in sums[0].read_text().splitlines() if line.strip()]
    parts, problems = [], []
    for digest, name in expected:
        found = next(iter(bundle.glob(f"*/{name}")), None)
        if found is None:
            problems.append(f"{name} is missing: carry it (a machine that went back loses it)")
        elif _sha256(found) != digest:
            problems.append(f"{found} differs from SHA256SUMS")
        else:
            parts.append(found)
    return parts, problems


def unpack(parts: Sequence[Path], target: Path) -> dict[str, Any]:
    """Join the parts and unpack the bundle into ``target``; returns its BUNDLE.json."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    joined = target / "bundle.tar.xz"
    with joined.open("wb") as handle:
        for part in parts:
            handle.write(part.read_bytes())
    with tarfile.open(joined, "r:xz") as archive:
        archive.extractall(target, filter="tar")
    joined.unlink()
    about: dict[str, Any] = json.loads((target / "BUNDLE.json").read_text())
    return about


# -- 3. environments -------------------------------------------------------------------------------


def link_vitrine(site: Path) -> Path:
    """``site/vitrine``: the package as setuptools maps it (pyproject's package-dir), linked
    to this checkout, so the code run is the code carried."""
    mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["package-dir"]
    package = site / "vitrine"
    shutil.rmtree(package, ignore_errors=True)
    package.mkdir(parents=True)
    for child in (ROOT / mapping["vitrine"]).iterdir():
        if child.name != "__pycache__":
            (package / child.name).symlink_to(child)
    subpackages = sorted((n for n in mapping if n != "vitrine"), key=lambda n: n.count("."))
    for name in subpackages:
        folder, path = mapping[name], site.joinpath(*name.split("."))
        if not path.exists():
            path.symlink_to(ROOT / folder)
        elif path.resolve() != (ROOT / folder).resolve():
            raise SystemExit(f"{name} maps to {folder}, but {path} is {path.resolve()}")
    return package


def stub_environment(work: Path) -> Path:
    """A venv whose ``python3`` the stubs use: numpy 1.26 first, then the client and Vitrine,
    then the node's own packages (torch)."""
    venv = work / "stub-env"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True
    )
    python = venv / "bin" / "python3"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copytree(work / "bundle" / "stub-site", purelib, dirs_exist_ok=True)
    node_packages = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    lines = [str(work / "site"), *node_packages]
    (Path(purelib) / "vitrine-node.pth").write_text("\n".join(lines) + "\n")
    return python


# -- 5. serve --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> str | None:
    """None once ``url`` answers 200, else why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"vitrine serve exited with status {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return None
        except OSError:
            pass
        time.sleep(1)
    return f"not ready after {timeout:.0f} s"


def stop(process: subprocess.Popen[bytes], log: Path) -> int | None:
    """SIGTERM (vitrine serve stops Triton and its stubs), then SIGKILL what is left: the
    serve process's group, and Triton's own (it runs in a session of its own)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
    match = re.search(r"tritonserver \(pid (\d+)\)", log.read_text(errors="replace"))
    groups = [process.pid] + ([int(match.group(1))] if match else [])
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    return process.wait()


def keep_tail(source: Path, target: Path) -> None:
    if not source.is_file():
        return
    with source.open("rb") as handle:
        handle.seek(max(0, source.stat().st_size - LOG_TAIL_BYTES))
        target.write_bytes(handle.read())


# -- the run ---------------------------------------------------------------------------------------


def check(out: Path, bundle: Path, work: Path, smoke: bool) -> int:
    run = Check(out, work, smoke)
    run.say(f"GPU check ({'smoke, CPU' if smoke else 'GPU'}) of {ROOT} into {out}")
    started = time.monotonic()
    run.system["environment"] = environment()
    run.record("environment", started, True)

    started = time.monotonic()
    parts, problems = bundle_parts(bundle)
    if problems:
        run.say("bundle: " + "; ".join(problems))
        run.record("unpack", started, False, "incomplete bundle")
        return finish(run)
    work.mkdir(parents=True, exist_ok=True)
    run.system["bundle"] = unpack(parts, work / "bundle")
    run.record("unpack", started, True)

    started = time.monotonic()
    site = work / "site"
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(work / "bundle" / "site", site)
    link_vitrine(site)
    stub_python = stub_environment(work)
    env = dict(os.environ)
    env |= {
        "PYTHONPATH": str(site),
        "PYTHONUNBUFFERED": "1",
        "VITRINE_CACHE_DIR": str(work / "cache"),
        "VITRINE_TRITON_ROOT": str(work / "bundle" / "triton"),
        "VITRINE_STUB_PYTHON": str(stub_python),
        "TMPDIR": str(work / "tmp"),
    }
    (work / "tmp").mkdir(exist_ok=True)
    imports = (  # what the stubs import, from the linked package and with numpy < 2
        "import numpy, torch, vitrine.export.torchscript, vitrine.imaging; "
        f"assert numpy.__version__ < '2', numpy.__version__; "
        f"assert vitrine.__file__.startswith({str(site)!r}), vitrine.__file__"
    )
    if not run.run("environments", [str(stub_python), "-c", imports], env=env, timeout=120):
        return finish(run)

    vitrine = [sys.executable, "-m", "vitrine.cli"]
    repository = work / "repository"
    build = [*vitrine, "build", "--target", "gpu-torch", "--out", str(repository)]
    if smoke:
        build += ["--device", "cpu", "--models", *SMOKE_MODELS]
    built = run.run("build", build, env=env, timeout=min(240.0, run.remaining()))
    manifests = {
        folder.parent.name: json.loads((folder / "manifest.json").read_text())
        for folder in sorted(repository.glob("*/1"))
        if (folder / "manifest.json").is_file()
    }
    (out / "manifests.json").write_text(json.dumps(manifests, indent=2) + "\n")
    if not built:
        return finish(run)

    started = time.monotonic()
    ports = {name: free_port() for name in ("grpc", "http", "metrics")}
    serve = [*vitrine, "serve", "--repository", str(repository), "--no-watchdog"]
    serve += ["--grpc-port", str(ports["grpc"]), "--http-port", str(ports["http"])]
    serve += ["--metrics-port", str(ports["metrics"])]
    if not smoke:
        serve += ["--target", "gpu-torch"]
    run.say(f"serve: {' '.join(serve)}")
    with (out / "serve.log").open("ab") as log:
        server = subprocess.Popen(  # the stubs import from their cwd first: not the checkout
            serve, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        problem = wait_ready(
            f"http://127.0.0.1:{ports['http']}/v2/health/ready", server, min(240.0, run.remaining())
        )
        if not run.record("serve", started, problem is None, problem):
            return finish(run)
        url = f"127.0.0.1:{ports['grpc']}"
        served = env | {"VITRINE_GPU_TRITON_URL": url, "VITRINE_GPU_REPOSITORY": str(repository)}
        tests = [sys.executable, "-m", "pytest", "-m", "gpu", str(ROOT / "tests" / "gpu")]
        tests += ["--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")]
        tests += ["-p", "no:cacheprovider", "-q", "-rA", "--timeout=300"]
        bench_reserve = 60.0 if smoke else 200.0
        run.run(
            "tests",
            tests,
            env=served,
            timeout=max(60.0, min(240.0, run.remaining() - bench_reserve)),
            output=out / "pytest.txt",
        )
        bench = [*vitrine, "bench", "--target", "gpu-torch", "--address", url]
        bench += ["--repository", str(repository), "--out", str(out), "--label", "gpu_check"]
        bench += SMOKE_BENCH if smoke else ["--duration", "2"]  # 27 cells within the 8 minutes
        run.run("bench", bench, env=served, timeout=max(60.0, run.remaining()))
    finally:
        started = time.monotonic()
        status = stop(server, out / "serve.log")
        run.record("stop", started, True, status)
        logs = sorted((work / "tmp").glob("vitrine-triton-*/tritonserver.log"))
        if logs:
            keep_tail(logs[-1], out / "tritonserver.log")
    return finish(run)


def finish(run: Check) -> int:
    run.write()
    verdict = "passed" if run.passed() else "FAILED"
    run.say(f"{verdict} in {run.system['seconds']} s; results in {run.out}")
    return 0 if run.passed() else 1


def stage(bundle: Path) -> int:
    """A call that only carries parts: say what is here and what is still to come."""
    parts, problems = bundle_parts(bundle)
    for part in parts:
        print(f"present: {part} ({part.stat().st_size / 2**20:.1f} MiB, checksum ok)")
    for problem in problems:
        print(problem)
    print("the next call carries the next part; keep calls within the machine's warm time")
    return 0 if parts else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, help="results folder (at most 8 files)")
    parser.add_argument("--stage", action="store_true", help="only check carried parts")
    parser.add_argument("--smoke", action="store_true", help="on CPU: CPU build, small sizes")
    parser.add_argument("--bundle", type=Path, default=ROOT / "build" / "gpu-bundle")
    parser.add_argument("--work", type=Path, default=Path("/tmp/vitrine-gpu-check"))
    args = parser.parse_args(argv)
    if args.stage:
        return stage(args.bundle)
    if args.out is None:
        parser.error("name the results folder (OUT), or pass --stage")
    return check(args.out.resolve(), args.bundle.resolve(), args.work.resolve(), args.smoke)


if __name__ == "__main__":
    raise SystemExit(main())
