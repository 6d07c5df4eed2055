"""The naive peer of the benchmark: what a team writes first to serve a PyTorch model.

A FastAPI app, one uvicorn worker, the PyTorch module run eagerly per request (no batching,
no ONNX, torch's default threads) behind plain ``def`` endpoints (FastAPI's thread pool):

* editors: ``POST /v1/models/<name>`` with encoded image bytes answers PNG/JPEG/WebP bytes,
  run with :func:`vitrine.options.example_options`, as the benchmark sends them;
* generators: ``POST /v1/models/<name>/generate?category=&color=&seed=&count=`` answers
  JSON ``{"images": [base64 PNG/JPEG/WebP, ...]}``, its latents drawn by
  :func:`vitrine.sampling.sample` exactly as the pipeline's sample step draws them.

Only the benchmark starts it, on loopback::

    python -m vitrine.loadtest.peer --port 8100 --models superres_x2,superres_x4
"""

from __future__ import annotations

import argparse
import base64
import io
from collections.abc import Sequence
from typing import Any

__all__ = ["create_app", "main"]


def create_app(models: Sequence[str]) -> Any:
    """The FastAPI app serving ``models`` (spec names) from the shipped weights."""
    import numpy as np
    import numpy.typing as npt
    import torch
    from fastapi import Body, FastAPI, HTTPException, Response
    from PIL import Image

    from vitrine import paths
    from vitrine.loadtest.payloads import encode
    from vitrine.options import core_value, example_options
    from vitrine.registry import get_spec
    from vitrine.sampling import InvalidGeneration, sample
    from vitrine.spec import ModelSpec
    from vitrine.training.checkpoint import load_checkpoint
    from vitrine.training.uint8_wrapper import Uint8ImageModel

    specs = {name: get_spec(name) for name in models}
    modules = {
        name: Uint8ImageModel(
            load_checkpoint(paths.weights_path(spec.weights_name)).model, spec.task
        ).eval()
        for name, spec in specs.items()
    }
    app = FastAPI(title="naive peer")

    def served(name: str, generator: bool) -> tuple[ModelSpec, Any]:
        spec = specs.get(name)
        if spec is None or spec.is_generator != generator:
            kind = "generator" if generator else "editor"
            raise HTTPException(status_code=404, detail=f"no {kind} {name!r}")
        return spec, modules[name]

    def run(module: Any, *arrays: npt.NDArray[Any]) -> npt.NDArray[Any]:
        with torch.inference_mode():
            tensors = (torch.from_numpy(array) for array in arrays)
            output: npt.NDArray[Any] = module(*tensors).numpy()
        return output

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/models/{name}")
    def infer(
        name: str,
        image: bytes = Body(..., media_type="application/octet-stream"),
        output_format: str = "png",
        quality: int = 90,
    ) -> Response:
        spec, module = served(name, generator=False)
        try:
            pixels = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
        except OSError as error:
            raise HTTPException(status_code=400, detail=f"not an image: {error}") from error
        batch = pixels[None].copy()
        values = example_options(spec, *pixels.shape[:2]).values()
        options = [core_value(o, v, batch) for o, v in zip(spec.options, values, strict=True)]
        result = run(module, batch, *options)[0]
        return Response(
            content=encode(result, output_format, quality), media_type=f"image/{output_format}"
        )

    @app.post("/v1/models/{name}/generate")
    def generate(
        name: str,
        category: str,
        color: str,
        seed: int = 0,
        count: int = 1,
        truncation: float = 1.0,
        output_format: str = "png",
        quality: int = 90,
    ) -> dict[str, list[str]]:
        spec, module = served(name, generator=True)
        assert spec.conditioning is not None
        try:
            feeds = sample(
                spec.conditioning,
                seed=seed,
                count=count,
                category=category,
                colour=color,
                truncation=truncation,
            )
        except InvalidGeneration as error:
            raise HTTPException(status_code=400, detail=str(error)) from error
        images = run(module, *feeds)
        return {
            "images": [
                base64.b64encode(encode(image, output_format, quality)).decode() for image in images
            ]
        }

    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--models", required=True, help="comma-separated spec names")
    args = parser.parse_args(argv)
    app = create_app([name for name in args.models.split(",") if name])
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
