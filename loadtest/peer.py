"""The naive peer of the benchmark: what a team writes first to serve a PyTorch model.

A FastAPI app, one uvicorn worker, the PyTorch module run eagerly per request (no batching,
no ONNX, torch's default threads) behind a plain ``def`` endpoint (FastAPI's thread pool):
``POST /v1/models/<name>`` with encoded image bytes answers PNG/JPEG/WebP bytes. An editor
with options runs with :func:`vitrine.options.example_options`, as the benchmark sends them.
Only the benchmark starts it, on loopback::

    python -m vitrine.loadtest.peer --port 8100 --models superres_x2,superres_x4
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from typing import Any

__all__ = ["create_app", "main"]


def create_app(models: Sequence[str]) -> Any:
    """The FastAPI app serving ``models`` (spec names) from the shipped weights."""
    import numpy as np
    import torch
    from fastapi import Body, FastAPI, HTTPException, Response
    from PIL import Image

    from vitrine import paths
    from vitrine.catalog import get_spec
    from vitrine.options import core_value, example_options
    from vitrine.training.checkpoint import load_checkpoint
    from vitrine.training.uint8_wrapper import Uint8ImageModel

    specs = {name: get_spec(name) for name in models}
    modules = {
        name: Uint8ImageModel(load_checkpoint(paths.weights_path(name)).model, spec.task).eval()
        for name, spec in specs.items()
    }
    app = FastAPI(title="naive peer")

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
        module = modules.get(name)
        if module is None:
            raise HTTPException(status_code=404, detail=f"no model {name!r}")
        try:
            pixels = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
        except OSError as error:
            raise HTTPException(status_code=400, detail=f"not an image: {error}") from error
        batch = pixels[None].copy()
        spec = specs[name]
        values = example_options(spec, *pixels.shape[:2]).values()
        options = [core_value(o, v, batch) for o, v in zip(spec.options, values, strict=True)]
        with torch.inference_mode():
            tensors = (torch.from_numpy(array) for array in (batch, *options))
            result = module(*tensors)[0].numpy()
        buffer = io.BytesIO()
        settings = {} if output_format == "png" else {"quality": quality}
        Image.fromarray(result).save(buffer, format=output_format.upper(), **settings)
        return Response(content=buffer.getvalue(), media_type=f"image/{output_format}")

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
