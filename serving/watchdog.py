"""The watchdog of ``vitrine serve``: probe every pipeline, heal what is broken.

This Triton build never restarts a dead python-backend stub, and its readiness flag stays
true meanwhile. The watchdog sends a real request through every pipeline each
``interval`` seconds. On a failure it finds the broken steps (one request per step) and
reloads them through the model-repository API, which only it can reach (``admin_key``).
If that does not heal the pipeline, or the server process is gone, it restarts the server.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from vitrine.catalog import SPECS
from vitrine.channel import channel_args
from vitrine.serving.probe import probe_pipelines, probe_steps, step_probes
from vitrine.serving.triton import ADMIN_HEADER, EmbeddedTriton
from vitrine.spec import ModelSpec

__all__ = ["HealEvent", "Watchdog"]

logger = logging.getLogger("vitrine.serving.watchdog")


@dataclass(frozen=True)
class HealEvent:
    """One detected failure and what healed it."""

    detected_at: float  # time.time() of the failing probe
    failing: tuple[str, ...]  # pipelines whose probe failed
    action: str  # "reload" or "restart"
    models: tuple[str, ...]  # models reloaded (empty for a restart)
    seconds: float  # from detection until every pipeline answered again
    healed: bool


@dataclass
class Watchdog:
    """Probes ``server``'s pipelines in a background thread and heals failures."""

    server: EmbeddedTriton
    interval: float = 2.0
    timeout: float = 5.0
    events: list[HealEvent] = field(default_factory=list)
    healthy: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Probe in a daemon thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vitrine-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check_once()
            except Exception:  # the watchdog itself must never die
                logger.exception("watchdog check failed")

    def _client(self) -> grpcclient.InferenceServerClient:
        tls = self.server.tls
        if tls is None:
            return grpcclient.InferenceServerClient(
                self.server.grpc_url, channel_args=channel_args()
            )
        mutual = tls.client_ca is not None  # present the server's own certificate
        return grpcclient.InferenceServerClient(
            self.server.grpc_url,
            ssl=True,
            root_certificates=str(tls.client_ca or tls.cert),
            private_key=str(tls.key) if mutual else None,
            certificate_chain=str(tls.cert) if mutual else None,
            channel_args=channel_args(),
        )

    def check_once(self) -> bool:
        """Probe every pipeline once; heal if one fails. Returns pipeline health after."""
        client = self._client()
        try:
            failing = self._failing(client)
            self.healthy = not failing or self._heal(client, failing)
        finally:
            client.close()
        return self.healthy

    def _failing(self, client: grpcclient.InferenceServerClient) -> dict[str, str]:
        """Specs (by name) whose pipeline probe failed, with the error each one got."""
        results = probe_pipelines(client, self.timeout)
        return {
            spec.name: result.error or "failed"
            for spec, result in zip(SPECS.values(), results, strict=True)
            if not result.ok
        }

    def _heal(self, client: grpcclient.InferenceServerClient, failing: dict[str, str]) -> bool:
        """Reload the broken steps, else restart; True when every pipeline answers again."""
        detected_at, started = time.time(), time.monotonic()
        names = tuple(SPECS[name].pipeline for name in failing)
        errors = list(failing.values())
        broken: tuple[str, ...] = ()
        if self.server.is_running() and self.server.admin_key is not None:
            broken = _dead_stubs(errors) or self._broken_steps(client, [SPECS[n] for n in failing])
            logger.warning("pipelines %s failing; reloading %s", names, broken)
            if broken and self._reload(client, broken, names) and not self._failing(client):
                self._record(detected_at, names, "reload", broken, started, healed=True)
                return True
        logger.warning("pipelines %s failing; restarting the server", names)
        self.server.restart()
        fresh = self._client()  # the old channel is still backing off from the dead server
        try:
            healed = not self._failing(fresh)
        finally:
            fresh.close()
        self._record(detected_at, names, "restart", (), started, healed=healed)
        return healed

    def _broken_steps(
        self, client: grpcclient.InferenceServerClient, failing: list[ModelSpec]
    ) -> tuple[str, ...]:
        """The steps of the failing pipelines that fail a request of their own."""
        probes = {model: probe for spec in failing for model, probe in step_probes(spec).items()}
        results = probe_steps(client, probes, self.timeout)
        return tuple(sorted(result.model for result in results if not result.ok))

    def _reload(
        self,
        client: grpcclient.InferenceServerClient,
        models: tuple[str, ...],
        pipelines: tuple[str, ...],
    ) -> bool:
        headers: dict[str, Any] = {ADMIN_HEADER: self.server.admin_key}
        try:
            for model in models:
                client.unload_model(model, headers=headers)
                client.load_model(model, headers=headers)
            for pipeline in pipelines:  # an ensemble whose step went away is reloaded too
                client.load_model(pipeline, headers=headers)
        except InferenceServerException as error:
            logger.error("reload of %s failed: %s", models, error)
            return False
        return True

    def _record(
        self,
        detected_at: float,
        failing: tuple[str, ...],
        action: str,
        models: tuple[str, ...],
        started: float,
        *,
        healed: bool,
    ) -> None:
        event = HealEvent(detected_at, failing, action, models, time.monotonic() - started, healed)
        self.events.append(event)
        logger.warning("heal: %s", event)


_DEAD_STUB = re.compile(r"Stub process '(?P<model>.+?)_\d+_\d+' is not healthy")


def _dead_stubs(errors: list[str]) -> tuple[str, ...]:
    """Models whose python-backend stub the errors name as dead (saves a probe per step)."""
    return tuple(sorted({m.group("model") for e in errors for m in _DEAD_STUB.finditer(e)}))
