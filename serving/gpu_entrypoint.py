"""Serving-image entrypoint: build missing TensorRT engines for the local GPU, then exec Triton.

Engines are cached on a volume keyed by TensorRT version and GPU compute capability
(``<cache>/trt-<version>_sm<cc>/<model>/<onnx sha256[:16]>/``), so a restart, another
replica on the same GPU type or a new pod reuses them, and a new TensorRT, GPU type or ONNX
file builds fresh ones. Every engine comes from :func:`vitrine.export.tensorrt.build_gated_engine`
(the same plan, builder and precision gate as ``vitrine export --format trt``). The baked
repository is copied to a writable folder and each engine is linked in under its
``cc_model_filenames`` name before ``tritonserver`` replaces this process. Every spec's core
model gets one, a generator's as an editor's; the python steps (decode, a generator's
sample step, encode) need none and are copied as baked.

    python -m vitrine.serving.gpu_entrypoint [--build-only] [-- TRITONSERVER ARGS...]

``--build-only`` builds and installs the engines into the runtime repository and exits (the
Helm chart's init container); ``VITRINE_MODELS`` (space separated) limits the models to
those a release serves.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vitrine.export.tensorrt import (
    ENGINE_FILE,
    MANIFEST_FILE,
    EngineBuildError,
    GateFailed,
    GpuInfo,
    TensorRTUnavailable,
    Toolchain,
    build_gated_engine,
    require_tensorrt,
    sha256_file,
)
from vitrine.export.triton_config import (
    ENGINE_ARCHITECTURES,
    RESPONSE_CACHE_ARGUMENT,
    engine_filename,
)
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec

__all__ = [
    "EngineJob",
    "EngineKey",
    "build_engines",
    "install_engines",
    "main",
    "plan_jobs",
    "runtime_mismatch",
    "served_specs",
    "tritonserver_command",
]

logger = logging.getLogger("vitrine.serving.gpu_entrypoint")

DEFAULTS = {
    "VITRINE_MODEL_REPOSITORY": "/opt/vitrine/model_repository",
    "VITRINE_ONNX_DIR": "/opt/vitrine/onnx",
    "VITRINE_ENGINE_CACHE": "/cache",
    "VITRINE_RUNTIME_REPOSITORY": "/tmp/vitrine/model_repository",
}


@dataclass(frozen=True)
class EngineKey:
    """What makes an engine reusable: the TensorRT that built it and the GPU architecture."""

    tensorrt: str
    compute_capability: str

    @property
    def folder(self) -> str:
        major, minor = self.compute_capability.split(".")
        return f"trt-{self.tensorrt}_sm{int(major)}{int(minor)}"


@dataclass(frozen=True)
class EngineJob:
    """One core model's engine: where it is cached and whether it must be built."""

    model: str
    onnx: Path
    onnx_sha256: str
    folder: Path
    build: bool
    reason: str

    @property
    def engine(self) -> Path:
        return self.folder / ENGINE_FILE


def _reuse_reason(folder: Path, key: EngineKey, onnx_sha256: str) -> str | None:
    """None when the cached engine in ``folder`` can be served, else why not."""
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file() or not (folder / ENGINE_FILE).is_file():
        return "no cached engine"
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return "unreadable manifest"
    expected = {
        "tensorrt": key.tensorrt,
        "compute_capability": key.compute_capability,
        "onnx_sha256": onnx_sha256,
    }
    found = {
        "tensorrt": manifest.get("tensorrt"),
        "compute_capability": manifest.get("gpu", {}).get("compute_capability"),
        "onnx_sha256": manifest.get("onnx_sha256"),
    }
    if found != expected:
        return f"manifest {found} does not match {expected}"
    if not manifest.get("gate", {}).get("passed"):
        return "cached engine did not pass its precision gate"
    if sha256_file(folder / ENGINE_FILE) != manifest.get("engine_sha256"):
        return "cached engine file differs from its manifest (partial write?)"
    return None


def plan_jobs(
    specs: Iterable[ModelSpec], onnx_dir: Path, cache: Path, key: EngineKey
) -> list[EngineJob]:
    """Which engines to reuse and which to build, for ``key``'s TensorRT and GPU."""
    jobs = []
    for spec in specs:
        onnx = onnx_dir / spec.name / "model.onnx"
        if not onnx.is_file():
            raise FileNotFoundError(f"{spec.name}: no ONNX at {onnx}; the image is incomplete")
        digest = sha256_file(onnx)
        folder = cache / key.folder / spec.name / digest[:16]
        reason = _reuse_reason(folder, key, digest)
        jobs.append(
            EngineJob(spec.name, onnx, digest, folder, reason is not None, reason or "cached")
        )
    return jobs


def build_engines(
    jobs: Sequence[EngineJob], cache_folder: Path, toolchain: Toolchain, gpu: GpuInfo
) -> list[str]:
    """Build every job's engine that is not cached; returns the models left without one.

    A model whose FP16 engine fails (TensorRT cannot build it, e.g. a layer named in the
    precision policy is not in TensorRT's network, or no engine passes the precision gate)
    is built in FP32 instead, with the reason logged and recorded in its manifest; a model
    whose FP32 engine fails too is logged and left out. Either way the other models are
    built, so a restart rebuilds nothing that worked.
    """
    failed = []
    for job in jobs:
        print(f"{job.model}: {'build' if job.build else 'reuse'} ({job.reason})", flush=True)
        if not job.build:
            continue
        build = functools.partial(
            build_gated_engine,
            SPECS[job.model],
            job.onnx,
            job.folder,
            timing_cache=cache_folder / "timing.cache",
            toolchain=toolchain,
            gpu=gpu,
        )
        try:
            build()
            continue
        except (EngineBuildError, GateFailed) as error:
            reason = f"{type(error).__name__}: {error}"
            logger.warning("%s: no FP16 engine (%s); building it in FP32", job.model, reason)
        try:
            build(fp16_failure=reason)
        except (EngineBuildError, GateFailed) as error:
            logger.error(
                "%s: no FP32 engine either (%s: %s)", job.model, type(error).__name__, error
            )
            failed.append(job.model)
    return failed


def install_engines(
    source: Path, runtime: Path, jobs: Sequence[EngineJob], key: EngineKey
) -> dict[str, list[Path]]:
    """Copy the baked repository to ``runtime`` and link each engine in; returns the links.

    The engine is linked as ``model.sm<cc>.plan`` (the ``cc_model_filenames`` entry); on a
    GPU architecture the config does not list, also as ``model.plan`` (the default file).
    """
    if runtime.exists():
        shutil.rmtree(runtime)
    shutil.copytree(source, runtime, symlinks=True)
    names = [engine_filename(key.compute_capability)]
    if key.compute_capability not in ENGINE_ARCHITECTURES:
        names.append(ENGINE_FILE)
    links: dict[str, list[Path]] = {}
    for job in jobs:
        version = runtime / job.model / "1"
        if not version.is_dir():
            raise FileNotFoundError(f"{job.model}: no model folder in {source}")
        (version / ".gitkeep").unlink(missing_ok=True)
        links[job.model] = []
        for name in names:
            (version / name).symlink_to(job.engine.resolve())
            links[job.model].append(version / name)
    return links


def runtime_mismatch(builder_version: str, server_version: str | None) -> str | None:
    """Why engines from ``builder_version`` would not load in the server's TensorRT, or None.

    A serialized engine only loads in the TensorRT release that built it; the image's
    Triton reports its own as ``TRT_VERSION``.
    """
    if not server_version:
        return None
    if builder_version.split(".")[:3] != server_version.split(".")[:3]:
        return (
            f"engines would be built with TensorRT {builder_version} but Triton runs "
            f"{server_version}; install the matching `tensorrt` (docker/Dockerfile TENSORRT_PIP)"
        )
    return None


def tritonserver_command(runtime: Path, extra: Sequence[str]) -> list[str]:
    """The server command; model control stays ``none`` (loading models is code execution)."""
    return ["tritonserver", f"--model-repository={runtime}", RESPONSE_CACHE_ARGUMENT, *extra]


def served_specs() -> list[ModelSpec]:
    """The specs named in ``VITRINE_MODELS`` (space separated), else the whole catalog."""
    names = os.environ.get("VITRINE_MODELS", "").split()
    unknown = sorted(set(names) - set(SPECS))
    if unknown:
        raise ValueError(f"VITRINE_MODELS names unknown models {unknown}; known: {sorted(SPECS)}")
    return [SPECS[name] for name in names] if names else list(SPECS.values())


def _settings() -> dict[str, Path]:
    return {name: Path(os.environ.get(name, default)) for name, default in DEFAULTS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_entrypoint", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--build-only", action="store_true", help="build and install engines, do not serve"
    )
    parser.add_argument("server_args", nargs="*", help="arguments passed on to tritonserver")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = _settings()
    try:
        toolchain, gpu = require_tensorrt()
    except TensorRTUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    problem = runtime_mismatch(toolchain.version, os.environ.get("TRT_VERSION"))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    key = EngineKey(toolchain.version, gpu.compute_capability)
    cache = settings["VITRINE_ENGINE_CACHE"]
    (cache / key.folder).mkdir(parents=True, exist_ok=True)
    with (cache / key.folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # replicas sharing the volume build each engine once
        jobs = plan_jobs(served_specs(), settings["VITRINE_ONNX_DIR"], cache, key)
        failed = build_engines(jobs, cache / key.folder, toolchain, gpu)
    if failed:
        print(f"error: no engine for {', '.join(failed)}; see the log above", file=sys.stderr)
        return 1
    runtime = settings["VITRINE_RUNTIME_REPOSITORY"]
    install_engines(settings["VITRINE_MODEL_REPOSITORY"], runtime, jobs, key)
    if args.build_only:
        return 0
    command = tritonserver_command(runtime, args.server_args)
    print(" ".join(command), flush=True)
    os.execvp(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
