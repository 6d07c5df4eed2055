"""The embedded repository, built from the shipped weights into a content-keyed cache."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path

import vitrine
from vitrine import paths
from vitrine.registry import SPECS
from vitrine.serving.embedded import EXIT_TIMEOUT_SECONDS, EmbeddedTriton, ServerTls, serve_forever
from vitrine.serving.watchdog import Watchdog

__all__ = ["cache_key", "embedded_repository", "serve"]

_EXPORT_SOURCES = Path(__file__).resolve().parent.parent / "export"


def cache_key(*context: str) -> str:
    """Changes whenever the weights, the specs, the export code or ``context`` change."""
    digest = hashlib.sha256("\n".join((vitrine.__version__, repr(SPECS), *context)).encode())
    sources = sorted(_EXPORT_SOURCES.rglob("*.py"))
    checkpoints = sorted({paths.weights_path(spec.weights_name) for spec in SPECS.values()})
    for path in (*sources, *checkpoints, *(c.with_suffix(".json") for c in checkpoints)):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def embedded_repository() -> Path:
    """The embedded-target repository of every spec, exported from the shipped weights once."""
    from vitrine.export.build import build_target
    from vitrine.export.repository import MARKER
    from vitrine.export.triton_config import Target

    out = paths.cache_dir() / "repositories" / f"embedded-{cache_key()}"
    if not (out / MARKER).is_file():
        logging.getLogger(__name__).info("building the embedded repository in %s", out)
        build_target(Target.EMBEDDED, out)
    return out


def serve(
    *,
    host: str,
    grpc_port: int,
    http_port: int,
    metrics_port: int,
    repository: Path | None = None,
    tls: ServerTls | None = None,
    probe_interval: float | None = 2.0,
    exit_timeout: int = EXIT_TIMEOUT_SECONDS,
    extra_args: Sequence[str] = (),
) -> int:
    """`vitrine serve`: the embedded repository (or ``repository``) on a real Triton server
    until stopped; ``extra_args`` go to ``tritonserver``.

    With ``probe_interval`` (seconds) a watchdog probes every pipeline and heals broken
    steps through a model-control API keyed by a secret only this process knows; with
    None, model control is off entirely and nothing heals. On SIGTERM, requests in flight
    get ``exit_timeout`` seconds to finish (Triton's own default, and the Helm chart's).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = EmbeddedTriton(
        repository or embedded_repository(),
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        tls=tls,
        exit_timeout=exit_timeout,
        admin_key=None if probe_interval is None else secrets.token_urlsafe(32),
        extra_args=extra_args,
    )
    watchdog = None if probe_interval is None else Watchdog(server, interval=probe_interval)
    return serve_forever(server, watchdog)
