"""The ``gpu-torch`` target: the ``gpu`` repository with TorchScript core models, for GPU
nodes without TensorRT.

It is the ``gpu`` target's repository (same models, tensors, ensembles, python steps and
warm-ups) with two differences:

* each core model is a python-backend model (``torch_runner.py``) running the model's
  TorchScript artifact (:mod:`vitrine.export.torchscript`, traced and gated where it is
  served) on ``KIND_GPU`` instances, in FP16 where the gate allows;
* the codec steps scale with the machine's cores: on a GPU the image codecs, not the
  network, bound a pipeline, so each decode step and the shared encode step get instances
  in proportion to the pixels they handle (:func:`decode_instances`, :func:`encode_instances`).

Built for ``device="cpu"`` (machines without a GPU, the tests) the same repository runs its
core models on ``KIND_CPU`` instances with FP32 artifacts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tritonclient.grpc import model_config_pb2 as pb

from vitrine.export.triton_config import (
    CPU_CORE_INSTANCES,
    CPU_CORE_THREADS,
    PYTHON_STEP_INSTANCES,
    Target,
    core_config,
)
from vitrine.pipeline import ENCODE_MODEL
from vitrine.spec import ModelSpec, OptionKind

if TYPE_CHECKING:
    from vitrine.export.repository import RepositoryModel

__all__ = [
    "GPU_CORE_INSTANCES",
    "TRACED_ON",
    "Placement",
    "available_cpus",
    "decode_instances",
    "encode_instances",
    "label_counts",
    "torch_core_config",
    "torch_repository_models",
]

GPU_CORE_INSTANCES = 2
"""Instances of each core model per GPU: each is a process with its own CUDA context (0.5 to
0.65 GB on an H200), and two let one batch's host work overlap another's GPU work."""


TRACED_ON = (0,)
"""The GPU the artifacts are traced on, and so the one the core models run on: a trace may
hold its device as a constant (remove_background's area resize makes its weights there)."""


def available_cpus() -> int:
    """The cores this process may run on (a container's share, not the host's)."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Placement:
    """Where a gpu-torch repository is served: its device (``cuda`` or ``cpu``), the cores
    its codec steps share and, if set, the core models' instance count (default
    :data:`GPU_CORE_INSTANCES` on CUDA, the CPU targets' count on the CPU)."""

    device: str = "cuda"
    cpus: int = field(default_factory=available_cpus)
    core_instances: int | None = None

    def __post_init__(self) -> None:
        if self.device not in ("cuda", "cpu"):
            raise ValueError(f"device must be cuda or cpu, got {self.device!r}")
        if self.cpus < 1 or (self.core_instances is not None and self.core_instances < 1):
            raise ValueError("cpus and core_instances must be positive")


def decode_instances(spec: ModelSpec, cpus: int) -> int:
    """Instances of ``spec``'s decode step: its share of a request's codec pixels (the input's,
    against the input's and the output's, ``output_scale`` squared times as many) of the
    cores, and never fewer than the other targets' count."""
    share = 1.0 / (1.0 + spec.output_scale**2)
    return max(PYTHON_STEP_INSTANCES, round(cpus * share))


def encode_instances(cpus: int) -> int:
    """Instances of the encode step every pipeline shares: one per core, since it handles
    the most pixels (a super-resolution's output)."""
    return max(PYTHON_STEP_INSTANCES, cpus)


def label_counts(spec: ModelSpec) -> dict[str, int]:
    """Each label input of the core model and its number of labels."""
    if spec.conditioning is not None:
        category, colour = spec.inputs[1:3]
        return {
            category.name: len(spec.conditioning.categories),
            colour.name: len(spec.conditioning.colours),
        }
    return {o.core.name: len(o.choices) for o in spec.options if o.kind is OptionKind.LABEL}


def _instances(kind: int, count: int, gpus: tuple[int, ...] = ()) -> pb.ModelInstanceGroup:
    return pb.ModelInstanceGroup(kind=kind, count=count, gpus=gpus)


def torch_core_config(spec: ModelSpec, placement: Placement | None = None) -> pb.ModelConfig:
    """The core model: the gpu target's (tensors, batching, warm-up), run by torch_runner.py."""
    placement = placement or Placement()
    config = core_config(spec, Target.GPU)
    for engine_only in ("platform", "default_model_filename", "cc_model_filenames"):
        config.ClearField(engine_only)
    config.backend = "python"
    del config.instance_group[:]
    limits = spec.core_limits  # the raw path's, as the embedded core has them
    settings: dict[str, object] = {
        "min_side": limits.min_side,
        "max_side": limits.max_side,
        "max_pixels": limits.max_pixels,
        "labels": json.dumps(label_counts(spec), sort_keys=True),
    }
    if placement.device == "cuda":
        count = placement.core_instances or GPU_CORE_INSTANCES
        kind = pb.ModelInstanceGroup.KIND_GPU
        config.instance_group.append(_instances(kind, count, gpus=TRACED_ON))
    else:
        count = placement.core_instances or CPU_CORE_INSTANCES
        config.instance_group.append(_instances(pb.ModelInstanceGroup.KIND_CPU, count))
        settings["intra_op_threads"] = CPU_CORE_THREADS
    for key, value in settings.items():
        config.parameters[key].string_value = str(value)
    return config


def torch_repository_models(
    specs: Iterable[ModelSpec], placement: Placement | None = None
) -> list[RepositoryModel]:
    """Every model folder of the gpu-torch repository for ``specs`` (repository models)."""
    from vitrine.export.repository import RepositoryModel, repository_models

    placement = placement or Placement()
    specs = list(specs)
    cores = {spec.core_model: spec for spec in specs}
    decodes = {spec.decode_model: spec for spec in specs if not spec.is_generator}
    models = []
    for model in repository_models(Target.GPU, specs):
        name = model.config.name
        if name in cores:
            spec = cores[name]
            model = RepositoryModel(
                torch_core_config(spec, placement), "torch_runner.py", artifacts_of=spec.name
            )
        elif name in decodes:
            model.config.instance_group[0].count = decode_instances(decodes[name], placement.cpus)
        elif name == ENCODE_MODEL:
            model.config.instance_group[0].count = encode_instances(placement.cpus)
        models.append(model)
    return models
