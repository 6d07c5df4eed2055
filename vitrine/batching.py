"""Pure helpers behind the python-backend models: parameters, tensor checks, request grouping.

Kept free of ``triton_python_backend_utils`` so they are unit-tested without a server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from vitrine.imaging import InvalidImage
from vitrine.spec import ImageLimits

__all__ = [
    "TensorConfig",
    "bytes_column",
    "check_tensor",
    "checked_requests",
    "group_by_shape",
    "int_parameter",
    "is_invalid_argument_error",
    "limits_from_parameters",
    "object_column",
    "parse_parameters",
    "request_arrays",
    "split_rows",
    "stack_images",
    "tensor_configs",
    "text_column",
]

# Triton config data types -> numpy dtypes (TYPE_STRING is Triton's BYTES).
_TRITON_DTYPES: dict[str, Any] = {
    "TYPE_BOOL": np.bool_,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}


@dataclass(frozen=True)
class TensorConfig:
    """One input or output of a model config, without the batch axis (-1 = dynamic)."""

    name: str
    dtype: np.dtype[Any]
    dims: tuple[int, ...]


def parse_parameters(model_config: Mapping[str, Any]) -> dict[str, str]:
    """``parameters`` of a model config JSON (``{"k": {"string_value": "v"}}``) as ``{k: v}``."""
    raw = model_config.get("parameters") or {}
    params: dict[str, str] = {}
    for key, value in raw.items():
        params[key] = value.get("string_value", "") if isinstance(value, Mapping) else str(value)
    return params


def int_parameter(
    params: Mapping[str, str], key: str, default: int | None = None, *, minimum: int | None = None
) -> int:
    """Integer parameter ``key``; ``default`` when absent (required when ``default`` is None)."""
    text = params.get(key, "").strip()
    if not text:
        if default is None:
            raise ValueError(f"model config parameter {key!r} is required")
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"model config parameter {key!r} must be an integer, got {text!r}"
        ) from None
    if minimum is not None and value < minimum:
        raise ValueError(f"model config parameter {key!r} must be >= {minimum}, got {value}")
    return value


@overload
def limits_from_parameters(
    params: Mapping[str, str], *, required: Literal[True] = True
) -> ImageLimits: ...
@overload
def limits_from_parameters(params: Mapping[str, str], *, required: bool) -> ImageLimits | None: ...
def limits_from_parameters(
    params: Mapping[str, str], *, required: bool = True
) -> ImageLimits | None:
    """``ImageLimits`` from the ``min_side``/``max_side`` (and optional ``max_pixels``)
    parameters.

    With ``required=False`` both may be absent (None is returned); one without the other is
    always an error.
    """
    present = [key for key in ("min_side", "max_side") if params.get(key, "").strip()]
    if not present and not required:
        return None
    min_side = int_parameter(params, "min_side", minimum=1)
    max_side = int_parameter(params, "max_side", minimum=1)
    if min_side > max_side:
        raise ValueError(f"min_side ({min_side}) exceeds max_side ({max_side})")
    max_pixels = int_parameter(params, "max_pixels", 0, minimum=0)
    return ImageLimits(min_side=min_side, max_side=max_side, max_pixels=max_pixels)


def tensor_configs(model_config: Mapping[str, Any], key: str) -> tuple[TensorConfig, ...]:
    """The ``input`` or ``output`` entries of a model config JSON."""
    entries = model_config.get(key) or []
    configs = []
    for entry in entries:
        data_type = entry["data_type"]
        if data_type not in _TRITON_DTYPES:
            raise ValueError(f"{key} {entry['name']!r}: unsupported data type {data_type}")
        configs.append(
            TensorConfig(
                name=entry["name"],
                dtype=np.dtype(_TRITON_DTYPES[data_type]),
                dims=tuple(int(dim) for dim in entry.get("dims", ())),
            )
        )
    return tuple(configs)


def check_tensor(
    array: npt.NDArray[Any], config: TensorConfig, limits: ImageLimits | None = None
) -> str | None:
    """Why ``array`` (batch first) does not fit ``config``, or None when it does.

    ``limits`` bounds every dynamic (-1) axis (the spatial sides of an image tensor) and,
    for an image, its pixel count.
    """
    if array.dtype != config.dtype:
        return f"input {config.name!r} must be {config.dtype}, got {array.dtype}"
    expected = ("B", *(("?" if dim == -1 else str(dim)) for dim in config.dims))
    if array.ndim != len(config.dims) + 1 or any(
        dim not in (-1, size) for dim, size in zip(config.dims, array.shape[1:], strict=True)
    ):
        return (
            f"input {config.name!r} must have shape ({', '.join(expected)}), "
            f"got {tuple(array.shape)}"
        )
    if limits is not None:
        sides = [size for dim, size in zip(config.dims, array.shape[1:], strict=True) if dim == -1]
        if any(not limits.min_side <= side <= limits.max_side for side in sides):
            return (
                f"input {config.name!r} has sides {'x'.join(map(str, sides))}; each must be "
                f"within [{limits.min_side}, {limits.max_side}]"
            )
        if len(sides) == 2 and sides[0] * sides[1] > limits.max_pixels:
            return (
                f"input {config.name!r} is {sides[1]}x{sides[0]} "
                f"({sides[0] * sides[1] / 1e6:.1f} MP): exceeds {limits.max_pixels / 1e6:.1f} MP"
            )
    return None


def request_arrays(
    request: Any,
    get_tensor: Callable[[Any, str], Any],
    configs: Sequence[TensorConfig],
    limits: ImageLimits | None = None,
    labels: Mapping[str, int] | None = None,
) -> list[npt.NDArray[Any]]:
    """One request's input arrays, in ``configs`` order, each checked by :func:`check_tensor`.

    ``get_tensor`` is ``pb_utils.get_input_tensor_by_name`` (None for a missing input);
    ``labels`` holds each label input's number of labels. Raises ValueError saying what is
    wrong.
    """
    arrays = []
    for config in configs:
        tensor = get_tensor(request, config.name)
        if tensor is None:
            raise ValueError(f"missing input {config.name!r}")
        array: npt.NDArray[Any] = tensor.as_numpy()
        problem = check_tensor(array, config, limits)
        if problem is not None:
            raise ValueError(problem)
        count = (labels or {}).get(config.name)
        if count is not None and array.size and not 0 <= array.min() <= array.max() < count:
            raise ValueError(f"input {config.name!r} must hold label indices in [0, {count})")
        arrays.append(array)
    if len({len(array) for array in arrays}) > 1:
        raise ValueError("inputs disagree in batch size")
    return arrays


def checked_requests(
    requests: Sequence[Any], inputs: Callable[[Any], list[npt.NDArray[Any]]]
) -> tuple[dict[int, str], list[int], list[list[npt.NDArray[Any]]]]:
    """Each request's ``inputs``: the problems of those that raise ValueError (by index),
    and the indices and arrays of the others."""
    problems: dict[int, str] = {}
    valid: list[int] = []
    arrays: list[list[npt.NDArray[Any]]] = []
    for index, request in enumerate(requests):
        try:
            arrays.append(inputs(request))
        except ValueError as exc:
            problems[index] = str(exc)
            continue
        valid.append(index)
    return problems, valid, arrays


def group_by_shape(requests: Sequence[Sequence[npt.NDArray[Any]]]) -> list[list[int]]:
    """Indices of requests whose inputs agree in shape (batch axis excluded) and dtype.

    Groups keep first-seen order and request order inside each group, so each group can be
    concatenated along the batch axis into one run.
    """
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, arrays in enumerate(requests):
        key = tuple((array.shape[1:], array.dtype.str) for array in arrays)
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def split_rows(
    outputs: Sequence[npt.NDArray[Any]], batch_sizes: Sequence[int]
) -> list[list[npt.NDArray[Any]]]:
    """Split batched ``outputs`` back into per-request slices of ``batch_sizes`` rows."""
    total = sum(batch_sizes)
    for output in outputs:
        if output.shape[:1] != (total,):
            raise ValueError(f"output has batch {output.shape[:1]}, expected {total}")
    pieces: list[list[npt.NDArray[Any]]] = []
    start = 0
    for size in batch_sizes:
        pieces.append([output[start : start + size] for output in outputs])
        start += size
    return pieces


def stack_images(images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
    """``(B, H, W, 3)`` from same-sized ``(H, W, 3)`` images of one request."""
    if not images:
        raise InvalidImage("request holds no images")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        sizes = ", ".join(f"{shape[1]}x{shape[0]}" for shape in (image.shape for image in images))
        raise InvalidImage(
            "images batched in one request must all have the same size, got " + sizes
        )
    return np.stack(images)


def bytes_column(array: npt.NDArray[np.object_], name: str) -> list[bytes]:
    """Items of a ``(B, 1)`` Triton BYTES tensor (numpy object array) as ``bytes``."""
    if array.ndim != 2 or array.shape[1] != 1:
        raise InvalidImage(f"input {name!r} must have shape (B, 1), got {tuple(array.shape)}")
    items = []
    for item in array[:, 0]:
        if isinstance(item, (bytes, bytearray, memoryview)):
            items.append(bytes(item))
        elif isinstance(item, str):
            items.append(item.encode("utf-8"))
        else:
            raise InvalidImage(f"input {name!r} must hold bytes, got {type(item).__name__}")
    return items


def text_column(array: npt.NDArray[np.object_], name: str) -> list[str]:
    """Items of a ``(B, 1)`` BYTES tensor decoded as UTF-8 text."""
    texts = []
    for item in bytes_column(array, name):
        try:
            texts.append(item.decode("utf-8").strip())
        except UnicodeDecodeError:
            raise InvalidImage(f"input {name!r} must be UTF-8 text") from None
    return texts


def object_column(items: Sequence[bytes]) -> npt.NDArray[np.object_]:
    """``(B, 1)`` numpy object array of ``items``: the layout of a Triton BYTES output."""
    column = np.empty((len(items), 1), dtype=np.object_)
    for row, item in enumerate(items):
        column[row, 0] = item
    return column


def is_invalid_argument_error(exc: BaseException) -> bool:
    """Whether an onnxruntime failure blames the input (INVALID_ARGUMENT) rather than the model."""
    return type(exc).__name__ == "InvalidArgument" or "INVALID_ARGUMENT" in str(exc)
