"""The watchdog of ``vitrine serve``: find broken pipeline steps and give them new instances.

This Triton build never restarts a dead python-backend stub, and its readiness flag stays
true meanwhile. Every ``census_interval`` seconds the watchdog counts each python step's
stub processes (a step with a dead or stopped stub is broken), and every ``interval``
seconds it also sends a real request through every pipeline (a failure names its dead step,
else one request per step finds it), for faults that leave the processes be.

A broken step gets new instances inside the loaded model: the watchdog loads the step's own
config, with its instance groups' rate-limiter priority switched between 0 and 1, through the
model-repository API that only it can reach (``admin_key``). Measured on this Triton build:

- unloading and loading the step takes its ensembles away for about two seconds, and callers
  get NOT_FOUND ("unknown model"), which no client should retry;
- loading it with any other config change, or after its files changed, is a full reload:
  the ensembles stay up, but when a stub of the old model had died Triton never retires the
  old model, so its other stubs and threads live on beside the new ones (hence
  :func:`~vitrine.serving.embedded.compile_models`: the stubs would write ``__pycache__``);
- a change to the instance groups alone (Triton compares them without name and count)
  replaces the instances in place: the new stubs start while the old ones serve, the
  ensembles stay loaded, and the old stubs, a dead or stopped one included, are finalized
  before the load returns. The rate limiter reads priority 0 as 1, so the switch changes
  which processes serve and nothing else.

Callers meanwhile get answers from the healthy instances, or INTERNAL "Stub process ... is
not healthy" from a dead or stopped one, which the client maps to the retryable
``Unavailable``. Old-generation stubs still alive ``grace`` seconds after the load are ended
with SIGKILL. If the step still fails, or the server process is gone, the server is killed
and started again: a graceful stop would answer NOT_FOUND while it unloads the models, a
killed server only drops its connections (the retryable UNAVAILABLE).

The same replacement returns the memory a large photo leaves behind: a python step's
shared-memory pool grows to the largest tensor it has held and never shrinks, so once every
stub of a step has been idle for a while well above its fresh size, the step gets new
instances too (``recycling``; an event with the action "recycle").
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from vitrine.channel import channel_args
from vitrine.pipeline import pipeline_steps
from vitrine.registry import SPECS
from vitrine.serving.embedded import ADMIN_HEADER, EmbeddedTriton
from vitrine.serving.probe import probe_pipelines, probe_steps, step_probes
from vitrine.serving.recycling import GrowthTracker
from vitrine.serving.stubs import configured_stubs, end, stubs, unhealthy_models
from vitrine.spec import ModelSpec

__all__ = ["HealEvent", "Watchdog", "next_generation", "served_specs"]

logger = logging.getLogger("vitrine.serving.watchdog")


@dataclass(frozen=True)
class HealEvent:
    """One detected failure and what healed it."""

    detected_at: float  # time.time() when the broken check began healing
    failing: tuple[str, ...]  # pipelines that failed their probe or use a broken step
    action: str  # "reload" (new instances of the broken steps), "restart", or "recycle"
    # (new instances of idle steps a large photo left holding memory; nothing was broken)
    models: tuple[str, ...]  # steps given new instances (empty for a restart)
    seconds: float  # from detection until every pipeline answered again
    healed: bool
    ended: tuple[int, ...] = ()  # old-generation stubs the watchdog had to kill


@dataclass
class Watchdog:
    """Watches ``server``'s pipelines and stubs in a background thread and heals failures.

    ``specs`` defaults to every spec whose pipeline is in the server's repository.
    """

    server: EmbeddedTriton
    interval: float = 2.0  # seconds between pipeline probes
    census_interval: float = 0.25  # seconds between stub counts (a scan of /proc)
    timeout: float = 5.0  # per probe request
    reload_timeout: float = 15.0  # per instance replacement (3 s typical); longer: a restart
    grace: float = 3.0  # how long Triton may take to finalize the replaced stubs
    specs: Sequence[ModelSpec] = ()
    growth: GrowthTracker | None = field(default_factory=GrowthTracker)  # None: no recycling
    events: list[HealEvent] = field(default_factory=list)
    healthy: bool = False
    configured: dict[str, int] = field(init=False)  # stubs per python step, from the configs
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.specs = tuple(self.specs) or served_specs(self.server.repository)
        self.configured = configured_stubs(self.server.repository)

    def start(self) -> None:
        """Check in a daemon thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vitrine-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        next_probe = time.monotonic() + self.interval
        while not self._stop.wait(self.census_interval):
            probe = time.monotonic() >= next_probe
            try:
                self.check_once(probe=probe)
            except Exception:  # the watchdog itself must never die
                logger.exception("watchdog check failed")
            if probe:
                next_probe = time.monotonic() + self.interval

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

    def check_once(self, *, probe: bool = True) -> bool:
        """Count the stubs and, with ``probe``, probe every pipeline; heal what is broken.
        Returns the pipelines' health after."""
        running = self.server.is_running()
        if running and not probe and not self._broken_stubs():
            self._recycle_grown()
            return self.healthy
        client = self._client()
        try:
            failing = self._failing(client, census=running)
            self.healthy = not failing or self._heal(client, failing)
        finally:
            client.close()
        return self.healthy

    def _recycle_grown(self) -> None:
        """New instances for the idle steps a large photo left grown (see ``recycling``)."""
        if self.growth is None or self.server.admin_key is None:
            return
        due = self.growth.observe(stubs(self.server.pid or 0), time.monotonic())
        if not due:
            return
        detected_at, started = time.time(), time.monotonic()
        client = self._client()
        try:
            old = self._replace(client, due)
        finally:
            client.close()
        if old is None:
            return  # the next probe finds out whether the steps still serve
        ended = self._end_survivors(old)
        for model in due:
            self.growth.forget(model)
        self._record(detected_at, (), "recycle", due, time.monotonic() - started, True, ended)

    def _broken_stubs(self, old: Collection[int] = ()) -> tuple[str, ...]:
        """Steps with a dead or stopped stub process, the ``old`` generation's left out."""
        running = [stub for stub in stubs(self.server.pid or 0) if stub.pid not in old]
        return unhealthy_models(running, self.configured)

    def _failing(
        self, client: grpcclient.InferenceServerClient, *, census: bool = False
    ) -> dict[str, str]:
        """Specs (by name) whose pipeline fails, with why. With ``census`` the stubs are
        counted before each probe, and a broken step ends the round at once: a probe that
        meets a dead stub takes a second to fail, and a round of them would delay the heal."""
        failing: dict[str, str] = {}
        for spec in self.specs:
            broken = self._broken_stubs() if census else ()
            if broken:
                return failing | {using.name: "broken stub" for using in self._using(broken)}
            (result,) = probe_pipelines(client, self.timeout, [spec])
            if not result.ok:
                failing[spec.name] = result.error or "failed"
        return failing

    def _using(self, models: Iterable[str]) -> list[ModelSpec]:
        models = set(models)
        return [spec for spec in self.specs if models & set(pipeline_steps(spec))]

    def _heal(self, client: grpcclient.InferenceServerClient, failing: dict[str, str]) -> bool:
        """Replace the broken steps' instances, else restart; True when all is well again."""
        detected_at, started = time.time(), time.monotonic()
        names = tuple(SPECS[name].pipeline for name in failing)
        if self.server.is_running() and self.server.admin_key is not None:
            models = (
                self._broken_stubs()
                or _dead_stubs(list(failing.values()))
                or self._broken_steps(client, [SPECS[name] for name in failing])
            )
            logger.warning("pipelines %s failing; replacing the instances of %s", names, models)
            old = self._replace(client, models) if models else None
            if old is not None and not self._broken_stubs(old) and not self._failing(client):
                seconds = time.monotonic() - started
                ended = self._end_survivors(old)
                self._record(detected_at, names, "reload", models, seconds, True, ended)
                return True
        logger.warning("pipelines %s failing; restarting the server", names)
        self.server.restart(graceful=False)
        fresh = self._client()  # the old channel is still backing off from the dead server
        try:
            healed = not self._failing(fresh)
        finally:
            fresh.close()
        self._record(detected_at, names, "restart", (), time.monotonic() - started, healed)
        return healed

    def _broken_steps(
        self, client: grpcclient.InferenceServerClient, failing: list[ModelSpec]
    ) -> tuple[str, ...]:
        """The steps of the failing pipelines that fail a request of their own."""
        probes = {model: probe for spec in failing for model, probe in step_probes(spec).items()}
        results = probe_steps(client, probes, self.timeout)
        return tuple(sorted(result.model for result in results if not result.ok))

    def _replace(
        self, client: grpcclient.InferenceServerClient, models: tuple[str, ...]
    ) -> set[int] | None:
        """New instances for each model; the old generation's stub pids, or None when
        Triton refused or timed out."""
        headers: dict[str, Any] = {ADMIN_HEADER: self.server.admin_key}
        old: set[int] = set()
        for model in models:
            old |= {stub.pid for stub in stubs(self.server.pid or 0) if stub.model == model}
            try:
                served = client.get_model_config(model, as_json=True, client_timeout=self.timeout)
                config = json.dumps(next_generation(served["config"]))
                client.load_model(
                    model, headers=headers, config=config, client_timeout=self.reload_timeout
                )
            except (InferenceServerException, ValueError) as error:
                logger.error("replacing the instances of %s failed: %s", model, error)
                return None  # the old instances may still be serving: the restart ends them
        return old

    def _end_survivors(self, old: set[int]) -> tuple[int, ...]:
        """Give Triton ``grace`` seconds to finalize the ``old`` stubs, then kill the rest."""
        deadline = time.monotonic() + self.grace
        while True:
            alive = tuple(stub.pid for stub in stubs(self.server.pid or 0) if stub.pid in old)
            if not alive or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if alive:
            logger.warning("ending old-generation stubs %s", alive)
            end(alive)
        return alive

    def _record(
        self,
        detected_at: float,
        failing: tuple[str, ...],
        action: str,
        models: tuple[str, ...],
        seconds: float,
        healed: bool,
        ended: tuple[int, ...] = (),
    ) -> None:
        event = HealEvent(detected_at, failing, action, models, seconds, healed, ended)
        self.events.append(event)
        logger.warning("heal: %s", event)


def served_specs(repository: Path) -> tuple[ModelSpec, ...]:
    """The specs whose pipeline ``repository`` holds."""
    return tuple(spec for spec in SPECS.values() if (repository / spec.pipeline).is_dir())


def next_generation(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (Triton's JSON form) with every instance group's rate-limiter priority
    switched between 0 and 1: the same config to Triton's scheduler, which reads 0 as 1, but
    new instances to its model lifecycle. Other priorities are refused (vitrine sets none)."""
    groups = config.get("instance_group") or []
    if not groups:
        raise ValueError(f"model {config.get('name')!r} has no instance group to replace")
    replaced = []
    for group in groups:
        limiter = dict(group.get("rate_limiter") or {})
        priority = int(limiter.get("priority", 0))
        if priority not in (0, 1):
            raise ValueError(f"rate-limiter priority {priority} would change scheduling")
        replaced.append({**group, "rate_limiter": {**limiter, "priority": 1 - priority}})
    return {**config, "instance_group": replaced}


_DEAD_STUB = re.compile(r"Stub process '(?P<model>.+?)_\d+_\d+' is not healthy")


def _dead_stubs(errors: list[str]) -> tuple[str, ...]:
    """Models whose python-backend stub the errors name as dead (saves a probe per step)."""
    return tuple(sorted({m.group("model") for e in errors for m in _DEAD_STUB.finditer(e)}))
