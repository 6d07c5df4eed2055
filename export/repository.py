"""Triton model repository builder: one layout per target, all from the specs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tritonclient.grpc import model_config_pb2 as pb

from vitrine.export.triton_config import (
    Target,
    core_config,
    decode_config,
    encode_config,
    fullsize_config,
    pipeline_config,
    render,
    sample_config,
    sample_warmup_files,
    warmup_files,
)
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec

if TYPE_CHECKING:
    from vitrine.export.gpu_torch import Placement

__all__ = ["MARKER", "RepositoryModel", "build_repository", "repository_models"]

PYTHON_MODELS = Path(__file__).resolve().parent / "python_models"
MARKER = ".vitrine-repository"  # names the target; only marked folders are ever replaced
KEEP = ".gitkeep"


@dataclass(frozen=True)
class RepositoryModel:
    """One model folder: its config, its python-backend source and whether it needs ONNX."""

    config: pb.ModelConfig
    python_source: str | None = None  # file in export/python_models copied as 1/model.py
    onnx_of: str | None = None  # spec whose model.onnx goes into 1/
    artifacts_of: str | None = None  # spec whose artifact folder's files go into 1/ (gpu-torch)
    warmup: Mapping[str, bytes] | None = None  # files of warmup/ (model_warmup input data)


def repository_models(
    target: Target, specs: Iterable[ModelSpec], placement: Placement | None = None
) -> list[RepositoryModel]:
    """Every model folder of ``target``'s repository for ``specs`` (``placement``: where a
    gpu-torch repository is served)."""
    if target is Target.GPU_TORCH:
        from vitrine.export.gpu_torch import torch_repository_models

        return torch_repository_models(specs, placement)
    specs = list(specs)
    gpu = target is Target.GPU
    encode = encode_config(
        max(spec.batching.max_batch_size for spec in specs),
        target,
        max_queue_size=max(spec.batching.max_queue_size for spec in specs),
    )
    encode_warmup = warmup_files(encode.name) if gpu else None
    models = [RepositoryModel(encode, "encode.py", warmup=encode_warmup)]
    for spec in specs:
        embedded = target is Target.EMBEDDED
        models += [
            _first_step(spec, target),
            *(
                [RepositoryModel(fullsize_config(spec, target), "fullsize.py")]
                if spec.large
                else []
            ),
            RepositoryModel(
                core_config(spec, target),
                python_source="onnx_runner.py" if embedded else None,
                onnx_of=spec.name if target is not Target.GPU else None,
            ),
            RepositoryModel(pipeline_config(spec)),
        ]
    return models


def _first_step(spec: ModelSpec, target: Target) -> RepositoryModel:
    """The step before the core model: sample (generators) or decode (editors)."""
    gpu = target is Target.GPU
    if spec.is_generator:
        warmup = sample_warmup_files(spec) if gpu else None
        return RepositoryModel(sample_config(spec, target), "sample.py", warmup=warmup)
    decode = decode_config(spec, target)
    warmup = warmup_files(decode.name, spec.options) if gpu else None
    return RepositoryModel(decode, "decode.py", warmup=warmup)


def _write_model(
    root: Path,
    model: RepositoryModel,
    onnx_files: Mapping[str, Path],
    artifact_dirs: Mapping[str, Path],
) -> None:
    folder = root / model.config.name
    version = folder / "1"
    version.mkdir(parents=True)
    (folder / "config.pbtxt").write_text(render(model.config))
    if model.python_source:
        shutil.copyfile(PYTHON_MODELS / model.python_source, version / "model.py")
    if model.onnx_of:
        source = onnx_files.get(model.onnx_of)
        if source is None:
            raise ValueError(f"target needs model.onnx of {model.onnx_of!r}; none was given")
        shutil.copyfile(source, version / "model.onnx")
    if model.artifacts_of:
        folder = artifact_dirs.get(model.artifacts_of)
        if folder is None:
            raise ValueError(f"target needs the artifacts of {model.artifacts_of!r}; none given")
        for path in sorted(folder.iterdir()):
            shutil.copyfile(path, version / path.name)
    for name, data in (model.warmup or {}).items():
        (folder / "warmup").mkdir(exist_ok=True)
        (folder / "warmup" / name).write_bytes(data)
    if not any(version.iterdir()):
        (version / KEEP).touch()  # ensembles and engine-less cores: keep 1/ in git


def build_repository(
    target: Target,
    out: Path,
    *,
    specs: Iterable[ModelSpec] | None = None,
    onnx_files: Mapping[str, Path] | None = None,
    artifact_dirs: Mapping[str, Path] | None = None,
    placement: Placement | None = None,
) -> Path:
    """Write ``target``'s repository to ``out``, replacing an earlier build there.

    The gpu target holds configs and python files only (engines are built on the GPU
    node); cpu and embedded need ``onnx_files`` (spec name -> exported model.onnx);
    gpu-torch needs ``artifact_dirs`` (spec name -> TorchScript artifact folder) and is laid
    out for ``placement``.
    """
    out = out.resolve()
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise FileExistsError(
            f"{out} is not empty and is no Vitrine repository; refusing to replace it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=out.parent))
    try:
        for model in repository_models(target, specs or SPECS.values(), placement):
            _write_model(staging, model, onnx_files or {}, artifact_dirs or {})
        (staging / MARKER).write_text(f"{target.value}\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
