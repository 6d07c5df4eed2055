"""Traffic-mix files: which calls a load test sends, in what proportions, at which sizes.

A mix is a TOML file with a ``description`` and one ``[[call]]`` table per Locust task
(see ``mixes/storefront.toml``, the default). Every call names a spec of the registry and a
path; the request name Locust reports is the Triton model the call reaches (the pipeline
ensemble or the core model), so thresholds and Triton's metrics use the same names.

A generator's call takes no upload: ``count`` (images per request, default 1) replaces
``batch`` on the raw path, ``input_format`` does not apply, and ``sizes`` may only be
omitted or name the one side it generates. A latent edit's call (``variations`` of a
catalog image) takes an upload and ``count`` too, on the pipeline path only: a spec whose
client method has no ``_array`` twin has no raw path.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from vitrine.client import VitrineClient
from vitrine.errors import ConfigError
from vitrine.pipeline import OUTPUT_FORMATS
from vitrine.registry import SPECS
from vitrine.spec import ModelSpec
from vitrine.tasks import Family

__all__ = [
    "DEFAULT_MIX",
    "INPUT_FORMATS",
    "MixCall",
    "MixError",
    "TrafficMix",
    "load_mix",
    "parse_mix",
]

DEFAULT_MIX = Path(__file__).resolve().parent / "mixes" / "storefront.toml"
"""The storefront-like mix used when none is given."""

INPUT_FORMATS = ("jpeg", "png", "webp")
"""Encodings an upload may arrive in (pipeline path)."""

Path_ = Literal["pipeline", "raw"]
_CALL_KEYS = {"model", "path", "weight", "sizes"}
_PATH_KEYS = {"pipeline": {"input_format", "output_format", "quality"}, "raw": {"batch"}}
_GENERATOR_PATH_KEYS = {"pipeline": {"count", "output_format", "quality"}, "raw": {"count"}}


class MixError(ConfigError):
    """A traffic-mix file that cannot be used; the message says which call and why."""


@dataclass(frozen=True)
class MixCall:
    """One Locust task: ``weight`` shares of calls to ``spec`` on ``path`` at ``sizes``."""

    spec: ModelSpec
    path: Path_
    weight: int
    sizes: tuple[tuple[int, int], ...]  # (height, width) of the inputs, cycled
    input_format: str = "jpeg"  # pipeline path only
    output_format: str = "png"  # pipeline path only
    quality: int = 90  # pipeline path only
    batch: int = 1  # raw path of editors only
    count: int = 1  # generators and latent edits only: images per request

    @property
    def name(self) -> str:
        """The request name reported to Locust: the Triton model this call reaches."""
        return self.spec.pipeline if self.path == "pipeline" else self.spec.core_model


@dataclass(frozen=True)
class TrafficMix:
    """A parsed mix; ``calls`` keep the file's order."""

    description: str
    calls: tuple[MixCall, ...]

    def shares(self) -> dict[str, float]:
        """Fraction of calls per request name (calls with the same name are added up)."""
        total = sum(call.weight for call in self.calls)
        shares: dict[str, float] = {}
        for call in self.calls:
            shares[call.name] = shares.get(call.name, 0.0) + call.weight / total
        return shares


def load_mix(path: Path | str | None = None) -> TrafficMix:
    """Read and validate the mix file at ``path`` (default :data:`DEFAULT_MIX`)."""
    path = Path(path) if path is not None else DEFAULT_MIX
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise MixError(f"{path}: not valid TOML: {error}") from error
    return parse_mix(document, source=str(path))


def parse_mix(document: Mapping[str, Any], *, source: str = "mix") -> TrafficMix:
    """Validate a mix already read from TOML (or built in code)."""
    unknown = set(document) - {"description", "call"}
    if unknown:
        raise MixError(f"{source}: unknown keys {sorted(unknown)}; use description and [[call]]")
    tables = document.get("call")
    if not isinstance(tables, list) or not tables:
        raise MixError(f"{source}: needs at least one [[call]] table")
    calls = tuple(_call(table, f"{source}: call {index + 1}") for index, table in enumerate(tables))
    return TrafficMix(description=str(document.get("description", "")), calls=calls)


def _call(table: object, where: str) -> MixCall:
    if not isinstance(table, Mapping):
        raise MixError(f"{where}: must be a table")
    model = table.get("model")
    if model not in SPECS:
        raise MixError(f"{where}: model must be one of {sorted(SPECS)}; got {model!r}")
    spec = SPECS[cast(str, model)]
    path = table.get("path", "pipeline")
    if path not in ("pipeline", "raw"):
        raise MixError(f"{where}: path must be 'pipeline' or 'raw'; got {path!r}")
    raw_method = f"{spec.client_method}_array"
    if path == "raw" and not hasattr(VitrineClient, raw_method):
        raise MixError(
            f"{where}: {spec.name} has no raw path (the client has no {raw_method}); "
            "use path = 'pipeline'"
        )
    unknown = set(table) - _CALL_KEYS - _path_keys(spec, path)
    if unknown:
        kind = f" of generator {spec.name}" if spec.is_generator else ""
        raise MixError(f"{where}: keys {sorted(unknown)} do not apply to the {path} path{kind}")
    fields: dict[str, Any] = {
        "weight": _positive_int(table.get("weight", 1), f"{where}: weight"),
        "sizes": _sizes(table.get("sizes", [spec.loadtest_side]), spec, path, where),
    }
    if "count" in _path_keys(spec, path):
        fields["count"] = _count(table.get("count", 1), spec, where)
    if path == "raw":
        if not spec.is_generator:
            fields["batch"] = _batch(table.get("batch", 1), spec, where)
        return MixCall(spec=spec, path="raw", **fields)
    return MixCall(spec=spec, path="pipeline", **fields, **_pipeline_fields(table, where))


def _path_keys(spec: ModelSpec, path: str) -> set[str]:
    """The keys a call of ``spec`` on ``path`` takes besides :data:`_CALL_KEYS`."""
    if spec.is_generator:
        return _GENERATOR_PATH_KEYS[path]
    if spec.family is Family.LATENT_EDIT:  # an upload in, ``count`` variations out
        return _PATH_KEYS[path] | {"count"}
    return _PATH_KEYS[path]


def _pipeline_fields(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Upload encoding and what is asked back, of a pipeline call."""
    quality = _positive_int(table.get("quality", 90), f"{where}: quality")
    if quality > 100:
        raise MixError(f"{where}: quality must be in 1..100; got {quality}")
    return {
        "input_format": _choice(
            table.get("input_format", "jpeg"), INPUT_FORMATS, f"{where}: input_format"
        ),
        "output_format": _choice(
            table.get("output_format", "png"), OUTPUT_FORMATS, f"{where}: output_format"
        ),
        "quality": quality,
    }


def _batch(value: object, spec: ModelSpec, where: str) -> int:
    batch = _positive_int(value, f"{where}: batch")
    if batch > spec.batching.max_batch_size:
        raise MixError(
            f"{where}: batch {batch} exceeds {spec.name}'s max_batch_size "
            f"{spec.batching.max_batch_size}"
        )
    return batch


def _count(value: object, spec: ModelSpec, where: str) -> int:
    """Images per request: up to a generator's max_count, else the core's max batch."""
    count = _positive_int(value, f"{where}: count")
    if spec.conditioning is not None:
        limit, most = "max_count", spec.conditioning.max_count
    else:
        limit, most = "max_batch_size", spec.batching.max_batch_size
    if count > most:
        raise MixError(f"{where}: count {count} exceeds {spec.name}'s {limit} {most}")
    return count


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MixError(f"{what} must be a positive integer; got {value!r}")
    return value


def _choice(value: object, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise MixError(f"{what} must be one of {list(choices)}; got {value!r}")
    return cast(str, value)


def _sizes(value: object, spec: ModelSpec, path: str, where: str) -> tuple[tuple[int, int], ...]:
    """The sizes a call sends: within the pipeline's limits, or the core model's (raw)."""
    if not isinstance(value, list) or not value:
        raise MixError(f"{where}: sizes must be a non-empty list of sides or [height, width]")
    sizes = []
    limits = spec.core_limits if path == "raw" else spec.limits
    low, high = limits.min_side, limits.max_side
    for item in value:
        pair = [item, item] if isinstance(item, int) and not isinstance(item, bool) else item
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(side, int) and not isinstance(side, bool) for side in pair)
        ):
            raise MixError(f"{where}: size {item!r} is not a side or [height, width]")
        if not all(low <= side <= high for side in pair) or limits.problem(pair[1], pair[0]):
            raise MixError(f"{where}: size {item!r} {_outside(spec, low, high)}")
        sizes.append((pair[0], pair[1]))
    return tuple(sizes)


def _outside(spec: ModelSpec, low: int, high: int) -> str:
    """Why a size is refused: outside an editor's limits (``low``..``high`` a side), or not
    a generator's (or a fixed-size editor's) one side."""
    if spec.is_generator:  # its limits are the side it generates: min_side == max_side
        return f"does not apply: {spec.name} generates {high}x{high} images; omit sizes"
    if low == high:
        return f"does not apply: {spec.name} takes {high}x{high} images only; omit sizes"
    return f"is outside {spec.name}'s limits {low}..{high}"
