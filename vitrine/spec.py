"""The model spec: one frozen, torch-free description per model.

Every other stage (training, ONNX export, Triton configs, client, load test) derives its
names, shapes and settings from a :class:`ModelSpec`; nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from vitrine.tasks import TASKS, Family, Task

__all__ = [
    "BatchingPolicy",
    "Conditioning",
    "ImageLimits",
    "LargeImages",
    "ModelSpec",
    "Option",
    "OptionKind",
    "PrecisionPolicy",
    "ShapeProfile",
    "Task",
    "TensorSpec",
    "Tiling",
]


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a model, without the batch axis.

    ``dims`` uses -1 for dynamic axes; ``axis_names`` names each axis (used as ONNX
    dynamic-axis names, ``None`` for static axes).
    """

    name: str
    dtype: str  # Triton dtype name: "UINT8", "INT32", "INT64", "FP32", "BYTES"
    dims: tuple[int, ...]
    axis_names: tuple[str | None, ...]

    def __post_init__(self) -> None:
        if len(self.dims) != len(self.axis_names):
            raise ValueError(f"tensor {self.name!r}: dims and axis_names differ in length")
        for dim, axis in zip(self.dims, self.axis_names, strict=True):
            if (dim == -1) != (axis is not None):
                raise ValueError(f"tensor {self.name!r}: name exactly the dynamic (-1) axes")

    @property
    def numpy_dtype(self) -> str:
        """The numpy dtype string matching :attr:`dtype`."""
        return _NUMPY_DTYPES[self.dtype]


_NUMPY_DTYPES = {
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "FP32": "float32",
    "BYTES": "object",
}


class OptionKind(str, Enum):
    """How an option travels and what it becomes for the core model."""

    STRENGTH = "strength"  # FP32 in [0, 1] -> FP32 (1,)
    MASK = "mask"  # grey PNG bytes, 0 or 255 per pixel -> uint8 (H, W, 1)
    BACKGROUND = "background"  # "white" | "transparent" | "#rrggbb" -> uint8 (r, g, b, opaque)
    IMAGE = "image"  # a second image, same size as the first -> uint8 (H, W, 3)
    LABEL = "label"  # one of ``choices`` by name -> its index, int32 (1,)
    SEED = "seed"  # int64 seed -> float32 (size,) standard-normal noise drawn from it


_WIRE_DTYPES = {OptionKind.STRENGTH: "FP32", OptionKind.SEED: "INT64"}  # the rest: BYTES


@dataclass(frozen=True)
class Option:
    """One request option: ``name`` is the client keyword and the pipeline input name.

    ``choices`` are a LABEL's names (index ``i`` is label ``i``); ``size`` is the length of
    a SEED's noise vector; ``auto`` lets a client pass a STRENGTH as ``"auto"`` (full
    strength), for a model that finds the right amount itself.
    """

    name: str
    kind: OptionKind
    choices: tuple[str, ...] = ()
    size: int = 0
    auto: bool = False

    def __post_init__(self) -> None:
        if (self.kind is OptionKind.LABEL) != bool(self.choices):
            raise ValueError(f"option {self.name!r}: exactly the labels have choices")
        if (self.kind is OptionKind.SEED) != (self.size > 0):
            raise ValueError(f"option {self.name!r}: exactly the seeds have a noise size")
        if self.auto and self.kind is not OptionKind.STRENGTH:
            raise ValueError(f"option {self.name!r}: only a strength can be 'auto'")

    @property
    def wire(self) -> TensorSpec:
        """The pipeline input the client sends."""
        dtype = _WIRE_DTYPES.get(self.kind, "BYTES")
        return TensorSpec(name=self.name, dtype=dtype, dims=(1,), axis_names=(None,))

    @property
    def core(self) -> TensorSpec:
        """The core-model input it becomes."""
        if self.kind is OptionKind.MASK:
            return TensorSpec(self.name, "UINT8", (-1, -1, 1), ("height", "width", None))
        if self.kind is OptionKind.IMAGE:
            return TensorSpec(self.name, "UINT8", (-1, -1, 3), ("height", "width", None))
        if self.kind is OptionKind.BACKGROUND:
            return TensorSpec(self.name, "UINT8", (4,), (None,))
        if self.kind is OptionKind.LABEL:
            return TensorSpec(self.name, "INT32", (1,), (None,))
        if self.kind is OptionKind.SEED:
            return TensorSpec(self.name, "FP32", (self.size,), (None,))
        return TensorSpec(self.name, "FP32", (1,), (None,))

    @property
    def decoded(self) -> TensorSpec:
        """The decode step's output for it: the core input's tensor, checked, renamed."""
        core = self.core
        return TensorSpec(f"{self.name}_decoded", core.dtype, core.dims, core.axis_names)


@dataclass(frozen=True)
class Conditioning:
    """What a generator is asked for: labels, latent size, image side and how many at once.

    Label ``i`` of ``categories`` (``colours``) is the integer ``i`` the core model takes.
    With ``style_mixing`` (StyleGAN) the core also takes ``mix_latent``, the latent of the
    fine styles, and applies ``truncation`` itself, in its style space; otherwise the
    sample step scales the latent by it.
    """

    categories: tuple[str, ...]
    colours: tuple[str, ...]
    latent_dim: int
    side: int
    max_count: int  # images per request; also the core model's max batch
    style_mixing: bool = False


@dataclass(frozen=True)
class ShapeProfile:
    """Full input shapes (batch first) the core model is optimised and checked at."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def items(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """``(label, shape)`` pairs in min, opt, max order."""
        return (("min", self.min), ("opt", self.opt), ("max", self.max))


@dataclass(frozen=True)
class ImageLimits:
    """Image sizes accepted: each side within ``[min_side, max_side]`` and at most
    ``max_pixels`` in all (default ``max_side`` squared). Checked from an upload's header,
    before any pixel is decoded."""

    min_side: int
    max_side: int
    max_pixels: int = 0  # 0: max_side ** 2

    def __post_init__(self) -> None:
        if not 1 <= self.min_side <= self.max_side:
            raise ValueError(f"limits: need 1 <= min_side <= max_side, got {self}")
        if not self.max_pixels:
            object.__setattr__(self, "max_pixels", self.max_side * self.max_side)
        if not self.min_side**2 <= self.max_pixels <= self.max_side**2:
            raise ValueError(f"limits: max_pixels outside [min_side², max_side²], got {self}")

    def problem(self, width: int, height: int) -> str | None:
        """Which limit a ``width`` x ``height`` image exceeds, in words; None if it fits."""
        megapixels = width * height / 1e6
        if max(width, height) > self.max_side:
            return (
                f"image is {width}x{height}: its long side {max(width, height)} px exceeds the "
                f"limit of {self.max_side} px"
            )
        if min(width, height) < self.min_side:
            return (
                f"image is {width}x{height}: its short side {min(width, height)} px is below "
                f"the minimum of {self.min_side} px"
            )
        if width * height > self.max_pixels:
            return (
                f"image is {width}x{height} ({megapixels:.1f} MP): exceeds the limit of "
                f"{self.max_pixels / 1e6:.1f} MP"
            )
        return None


class Tiling(str, Enum):
    """How an editor's pipeline runs an image larger than its core model takes at once."""

    TILES = "tiles"  # overlapping tiles as batches; each keeps its centre (margin: context)
    CURVES = "curves"  # global curves measured once on a probe image, applied per channel
    HOLES = "holes"  # only the mask's holes, each cropped with a margin of context
    MATTE = "matte"  # alpha at a working size, upsampled by a guided filter on the photo


@dataclass(frozen=True)
class LargeImages:
    """An editor's plan for photos up to its upload limits (``vitrine.tiling``).

    ``tile`` is the side of the core-model calls (tiles, holes, the matte's working side);
    ``margin`` the context each tile or hole carries on every side, at least the network's
    receptive field where it has a finite one (a contract test measures it). A network whose
    output depends on statistics of the whole image (instance norm) cannot be tiled exactly:
    ``blend`` feathers its tiles together instead.
    """

    tiling: Tiling
    tile: int
    margin: int = 0
    blend: bool = False  # TILES: the network has global statistics; feather the margins


@dataclass(frozen=True)
class PrecisionPolicy:
    """FP16 export/engine policy; ``fp32_layers`` are ONNX node-name substrings kept in FP32."""

    fp16: bool = True
    fp32_layers: tuple[str, ...] = ()
    max_abs_error_uint8: int = 1  # parity gate for FP32 ONNX vs PyTorch
    fp16_min_psnr_db: float = 40.0  # accuracy gate for FP16 vs FP32
    fp16_max_abs_error_uint8: int = 8  # FP16 precision gate: no pixel further off than this


@dataclass(frozen=True)
class BatchingPolicy:
    """Triton dynamic batching settings of the core model."""

    max_batch_size: int = 8
    preferred_batch_sizes: tuple[int, ...] = (4, 8)
    max_queue_delay_us: int = 500  # bench: 2000 us cost ~2.4 ms of p50 at concurrency 1
    max_queue_size: int = 64


@dataclass(frozen=True)
class ModelSpec:
    """Everything the project knows about one model, declared once.

    ``selector`` is the client keyword argument and value that route a call of
    ``client_method`` to this model, e.g. ``("scale", 2)``; ``output_scale`` is how many
    times larger than the input each output side is. ``limits`` are what a pipeline call
    accepts (an editor's reach real photos; ``large`` says how they run), ``core_limits``
    what the core model takes at once. ``quality_targets`` are the
    minimum margins ``vitrine eval`` must report for the shipped weights (a test holds them).
    """

    name: str
    task: Task
    description: str
    architecture: str
    arch_kwargs: Mapping[str, Any]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    profile: ShapeProfile
    limits: ImageLimits
    client_method: str
    selector: tuple[str, Any] | None  # None: the only model behind client_method
    precision: PrecisionPolicy = field(default_factory=PrecisionPolicy)
    batching: BatchingPolicy = field(default_factory=BatchingPolicy)
    output_scale: int = 1
    quality_targets: Mapping[str, float] = field(default_factory=dict)  # eval margin -> minimum
    loadtest_side: int = 128  # side of the square validation crop the load test sends
    response_cache: bool = False  # Triton response cache on the pipeline: deterministic only
    onnx_opset: int = 17
    options: tuple[Option, ...] = ()  # request inputs besides the image, in core-input order
    conditioning: Conditioning | None = None  # generators only: latent + labels -> images
    weights_from: str | None = None  # serves another spec's trained checkpoint (no own run)
    large: LargeImages | None = None  # editors: how uploads beyond the core's sides run

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch_kwargs", MappingProxyType(dict(self.arch_kwargs)))
        object.__setattr__(self, "quality_targets", MappingProxyType(dict(self.quality_targets)))
        if self.profile.max[0] > self.batching.max_batch_size:
            raise ValueError(f"{self.name}: profile batch exceeds max_batch_size")
        if (self.task is Task.GENERATE) != (self.conditioning is not None):
            raise ValueError(f"{self.name}: exactly the generators have a conditioning")
        if self.conditioning is None and self.inputs[1:] != tuple(o.core for o in self.options):
            raise ValueError(f"{self.name}: inputs must be the image, then each option's tensor")
        if self.large is not None and not self.is_editor:
            raise ValueError(f"{self.name}: only an editor has a large-image plan")
        if self.large is not None and self.large.tile > self.core_limits.max_side:
            raise ValueError(f"{self.name}: tile {self.large.tile} exceeds the core's sides")

    @property
    def family(self) -> Family:
        """The shape of this model's requests (its task's family)."""
        return TASKS[self.task].family

    @property
    def is_editor(self) -> bool:
        """Whether requests carry a photo to edit (the editor family)."""
        return self.family is Family.EDITOR

    @property
    def core_limits(self) -> ImageLimits:
        """The image sides the core model takes in one call (its profile's range): the raw
        path's limits, and the most a pipeline sends it at once. A generator's: its side."""
        if self.is_generator:
            return self.limits
        return ImageLimits(min_side=self.profile.min[1], max_side=self.profile.max[1])

    @property
    def is_generator(self) -> bool:
        """Whether requests carry labels and a seed instead of an image."""
        return self.conditioning is not None

    @property
    def weights_name(self) -> str:
        """The spec whose training run writes the checkpoint this model serves."""
        return self.weights_from or self.name

    @property
    def core_model(self) -> str:
        """Triton name of the core (raw uint8) model."""
        return self.name

    @property
    def pipeline(self) -> str:
        """Triton name of the public ensemble (encoded bytes in, encoded bytes out)."""
        return f"{self.name}_pipeline"

    @property
    def decode_model(self) -> str:
        """Triton name of this pipeline's decode step (it carries the size limits)."""
        return f"{self.name}_decode"

    @property
    def fullsize_model(self) -> str:
        """Triton name of an editor pipeline's step between decode and encode: the photo
        through the core model in pieces (``large``), whatever its size."""
        return f"{self.name}_fullsize"

    @property
    def sample_model(self) -> str:
        """Triton name of a generator pipeline's first step: request -> latents and labels."""
        return f"{self.name}_sample"

    @property
    def selector_kwargs(self) -> dict[str, Any]:
        """The keyword arguments that route ``client_method`` here (empty without a selector)."""
        return dict([self.selector]) if self.selector else {}

    @property
    def input(self) -> TensorSpec:
        """The image input of an editor's core model (the options' tensors follow it)."""
        return self.inputs[0]

    def input_shapes(self, image_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Full shape of every core input when the image input is ``image_shape`` (N, H, W, 3)."""
        sizes = dict(zip(self.input.axis_names, image_shape[1:], strict=True))
        return {
            tensor.name: (
                image_shape[0],
                *(
                    sizes[axis] if size == -1 else size
                    for size, axis in zip(tensor.dims, tensor.axis_names, strict=True)
                ),
            )
            for tensor in self.inputs
        }

    @property
    def output(self) -> TensorSpec:
        """The single image output of an editor's core model."""
        (tensor,) = self.outputs
        return tensor
