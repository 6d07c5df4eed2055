"""Pipeline health by real requests: Triton's own readiness stays true while a step is dead.

``python -m vitrine.serving.probe --url 127.0.0.1:8001`` sends one small real request
through every public pipeline and exits 0 only if all answer with a decodable image; use
it as a Kubernetes exec readiness probe. A generator's probe asks for one image from a seed
no earlier probe used, so the pipeline's response cache cannot answer for its steps. The
watchdog of ``vitrine serve`` uses the same functions, and :func:`probe_steps` to find
which step of a failing pipeline is broken.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient
from PIL import Image
from tritonclient.utils import InferenceServerException

from vitrine.channel import channel_args
from vitrine.options import core_value, example_options, wire_value
from vitrine.pipeline import (
    DECODED_OUTPUT,
    ENCODED_INPUT,
    ENCODED_OUTPUT,
    FORMAT_INPUT,
    QUALITY_INPUT,
    generator_pipeline_inputs,
    pipeline_steps,
    sampled_outputs,
)
from vitrine.registry import SPECS
from vitrine.sampling import example_labels, sample, unseen_seeds
from vitrine.spec import ModelSpec

__all__ = ["Probe", "ProbeResult", "main", "probe_pipelines", "probe_steps", "step_probes"]


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe request."""

    model: str
    ok: bool
    seconds: float
    error: str | None = None


def _tensor(name: str, value: npt.NDArray[Any], dtype: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, list(value.shape), dtype)
    tensor.set_data_from_numpy(value)
    return tensor


def _probe_image(spec: ModelSpec) -> npt.NDArray[np.uint8]:
    side = spec.limits.min_side
    ramp = np.linspace(0, 255, side * side * 3).astype(np.uint8)
    return ramp.reshape(side, side, 3)


def _png(pixels: npt.NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


_FORMAT, _QUALITY = b"png", 90  # what every probe asks back


def _encode_inputs(pixels: npt.NDArray[np.uint8]) -> list[grpcclient.InferInput]:
    return [
        _tensor(DECODED_OUTPUT, pixels[None], "UINT8"),
        _tensor(FORMAT_INPUT, np.array([[_FORMAT]], dtype=object), "BYTES"),
        _tensor(QUALITY_INPUT, np.array([[_QUALITY]], dtype=np.int32), "INT32"),
    ]


def _decode_inputs(spec: ModelSpec) -> list[grpcclient.InferInput]:
    """The probe image and its example options, as the pipeline (and decode step) take them."""
    pixels = _probe_image(spec)
    values = example_options(spec, *pixels.shape[:2])
    options = []
    for option in spec.options:
        wire = np.array([[wire_value(option, values[option.name])]], dtype=option.wire.numpy_dtype)
        options.append(_tensor(option.name, wire, option.wire.dtype))
    payload = np.array([[_png(pixels)]], dtype=object)
    return [_tensor(ENCODED_INPUT, payload, "BYTES"), *options]


_SEEDS = unseen_seeds()


def _generate_request(spec: ModelSpec) -> dict[str, Any]:
    """A generator probe's request: one image of the example labels from a seed no earlier
    probe used, so that the pipeline's response cache cannot answer for its steps."""
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    request = {"seed": next(_SEEDS), "count": 1, **example_labels(spec.conditioning)}
    mixing = {"mix_seed": next(_SEEDS)} if spec.conditioning.style_mixing else {}
    return request | {"truncation": 1.0} | mixing


def _generate_inputs(spec: ModelSpec) -> list[grpcclient.InferInput]:
    """The probe's request as a generator's pipeline (and its sample step) take it."""
    values = _generate_request(spec) | {FORMAT_INPUT: _FORMAT, QUALITY_INPUT: _QUALITY}
    return [
        _tensor(
            tensor.name, np.array([values[tensor.name]], dtype=tensor.numpy_dtype), tensor.dtype
        )
        for tensor in generator_pipeline_inputs(spec)
    ]


def _sampled_core_inputs(spec: ModelSpec) -> list[grpcclient.InferInput]:
    """What the sample step makes of the probe's request: the generator's core inputs."""
    assert spec.conditioning is not None, f"{spec.name} is no generator"
    request = _generate_request(spec)
    feeds = sample(
        spec.conditioning,
        seed=request["seed"],
        count=request["count"],
        category=request["category"],
        colour=request["color"],
        truncation=request["truncation"],
        mix_seed=request.get("mix_seed"),
    )
    return [
        _tensor(tensor.name, feed, tensor.dtype)
        for tensor, feed in zip(spec.inputs, feeds, strict=True)
    ]


def _core_inputs(spec: ModelSpec) -> list[grpcclient.InferInput]:
    if spec.is_generator:
        return _sampled_core_inputs(spec)
    batch = _probe_image(spec)[None]
    values = example_options(spec, *batch.shape[1:3])
    options = [
        _tensor(o.core.name, core_value(o, values[o.name], batch), o.core.dtype)
        for o in spec.options
    ]
    return [_tensor(spec.input.name, batch, "UINT8"), *options]


def _pipeline_inputs(spec: ModelSpec) -> list[grpcclient.InferInput]:
    if spec.is_generator:
        return _generate_inputs(spec)
    return [*_decode_inputs(spec), *_encode_inputs(_probe_image(spec))[1:]]


def _decodes_to_image(result: Any, output: str) -> None:
    Image.open(io.BytesIO(result.as_numpy(output)[0, 0])).load()


def _run(
    client: grpcclient.InferenceServerClient,
    model: str,
    inputs: list[grpcclient.InferInput],
    check: Callable[[Any], object],
    timeout: float,
) -> ProbeResult:
    started = time.perf_counter()
    try:
        check(client.infer(model, inputs, client_timeout=timeout))
    except (InferenceServerException, OSError, ValueError) as error:
        return ProbeResult(model, False, time.perf_counter() - started, str(error))
    return ProbeResult(model, True, time.perf_counter() - started)


def probe_pipelines(
    client: grpcclient.InferenceServerClient,
    timeout: float = 5.0,
    specs: Sequence[ModelSpec] | None = None,
) -> list[ProbeResult]:
    """One real request through each public pipeline."""
    return [
        _run(
            client,
            spec.pipeline,
            _pipeline_inputs(spec),
            lambda result: _decodes_to_image(result, ENCODED_OUTPUT),
            timeout,
        )
        for spec in specs or SPECS.values()
    ]


Probe = tuple[list[grpcclient.InferInput], Callable[[Any], object]]


def _first_step_probe(spec: ModelSpec) -> Probe:
    """The sample step's probe (generators) or the decode step's (editors)."""
    if spec.is_generator:
        latents = sampled_outputs(spec)[0].name
        return _generate_inputs(spec), lambda result: result.as_numpy(latents).shape
    return _decode_inputs(spec), lambda result: result.as_numpy(DECODED_OUTPUT).shape


def step_probes(spec: ModelSpec) -> dict[str, Probe]:
    """A real request (inputs, output check) for each step of ``spec``'s pipeline: an
    editor's full-size step takes what its core model takes."""
    first, *middle, encode = pipeline_steps(spec)
    image_out: Probe = (
        _core_inputs(spec),
        lambda result: result.as_numpy(spec.output.name).shape,
    )
    return {
        first: _first_step_probe(spec),
        **{step: image_out for step in middle},
        encode: (
            _encode_inputs(_probe_image(spec)),
            lambda result: _decodes_to_image(result, ENCODED_OUTPUT),
        ),
    }


def probe_steps(
    client: grpcclient.InferenceServerClient, probes: dict[str, Probe], timeout: float = 5.0
) -> list[ProbeResult]:
    """Send each step probe once (steps shared by pipelines are probed once)."""
    return [
        _run(client, model, inputs, check, timeout) for model, (inputs, check) in probes.items()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Exec-probe entry point: exit 0 when every pipeline answers, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="python -m vitrine.serving.probe", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--url", default="127.0.0.1:8001", help="gRPC address")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--ssl", action="store_true", help="use TLS")
    parser.add_argument("--root-certificates", help="PEM file of the CA that signed the server")
    parser.add_argument(
        "--pipelines",
        default=os.environ.get("VITRINE_PIPELINES", ""),
        help="pipelines to probe, space or comma separated (default: $VITRINE_PIPELINES, "
        "else every pipeline of the catalog)",
    )
    args = parser.parse_args(argv)
    by_pipeline = {spec.pipeline: spec for spec in SPECS.values()}
    wanted = args.pipelines.replace(",", " ").split()
    unknown = sorted(set(wanted) - set(by_pipeline))
    if unknown:
        parser.error(f"unknown pipelines {unknown}; known: {sorted(by_pipeline)}")
    specs = [by_pipeline[name] for name in wanted] or list(SPECS.values())
    client = grpcclient.InferenceServerClient(
        args.url,
        ssl=args.ssl,
        root_certificates=args.root_certificates,
        channel_args=channel_args(),
    )
    try:
        results = probe_pipelines(client, args.timeout, specs)
    finally:
        client.close()
    print(json.dumps([asdict(result) for result in results]))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
