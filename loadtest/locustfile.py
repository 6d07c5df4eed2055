"""Locust file: gRPC users calling Vitrine through the typed client, with a traffic mix.

Headless through ``vitrine loadtest``, or with Locust's web UI::

    locust -f "$(python -c 'import vitrine.loadtest.locustfile as m; print(m.__file__)')" \\
        --host 127.0.0.1:8001 --vitrine-mix loadtest/mixes/storefront.toml

``--host`` is the gRPC address. One Locust task per ``[[call]]`` of the mix, weighted by it;
every call has a deadline (``--vitrine-timeout``) and is reported with its measured latency
and its failure under the name of the Triton model it reaches.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

# gRPC must run on gevent before any grpc-using module (the client) is imported; Locust has
# already monkey-patched the standard library by the time it loads this file.
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

from locust import User, constant, events  # noqa: E402
from locust.env import Environment  # noqa: E402

from vitrine.client import VitrineClient  # noqa: E402
from vitrine.loadtest.mix import DEFAULT_MIX, load_mix  # noqa: E402
from vitrine.loadtest.payloads import PreparedCall, prepare  # noqa: E402

REQUEST_TYPE = "grpc"


# locust's EventHook.add_listener has no annotations.
@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--vitrine-mix",
        default=str(DEFAULT_MIX),
        include_in_web_ui=True,
        help="traffic-mix TOML file (default: the storefront mix)",
    )
    parser.add_argument(
        "--vitrine-timeout",
        type=float,
        default=10.0,
        include_in_web_ui=True,
        help="deadline of every call, seconds",
    )
    parser.add_argument(
        "--vitrine-retries",
        type=int,
        default=0,
        include_in_web_ui=True,
        help="client retries on UNAVAILABLE (0: every failure is reported)",
    )


def _task(prepared: PreparedCall) -> Any:
    def call(user: VitrineUser) -> None:
        user.send(prepared)

    call.__name__ = prepared.name
    return call


def _configure(environment: Environment) -> None:
    """(Re)build the tasks from the mix named in the current options."""
    options = environment.parsed_options
    path = Path(options.vitrine_mix) if options is not None else DEFAULT_MIX
    tasks = []
    for mix_call in load_mix(path).calls:
        task = _task(prepare(mix_call))
        tasks.extend([task] * mix_call.weight)
    VitrineUser.tasks = tasks


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Environment, **kwargs: Any) -> None:
    _configure(environment)


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _on_test_start(environment: Environment, **kwargs: Any) -> None:
    _configure(environment)  # the web UI may have changed the mix


class VitrineUser(User):
    """One storefront caller with its own gRPC channel, calling back to back."""

    wait_time = constant(0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.timeout = float(options.vitrine_timeout) if options is not None else 10.0
        retries = int(options.vitrine_retries) if options is not None else 0
        assert self.host is not None, "locust runs with --host, the Triton gRPC address"
        self.vitrine = VitrineClient(self.host, timeout=self.timeout, retries=retries)

    def on_stop(self) -> None:
        self.vitrine.close()

    def send(self, prepared: PreparedCall) -> None:
        invoke = prepared.next_invoke()
        error: BaseException | None = None
        length = 0
        start = time.perf_counter()
        try:
            length = invoke(self.vitrine, self.timeout)
        except Exception as exc:  # every failure is reported, none stops the user
            error = exc
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=prepared.name,
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=length,
            exception=error,
            context={},
        )
