"""One real Triton server for the integration tests: the embedded repository of the shipped weights."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tritonclient.grpc as grpcclient

from vitrine.client import VitrineClient
from vitrine.serving.embedded import EmbeddedTriton, free_port
from vitrine.serving.serve import embedded_repository


@pytest.fixture(scope="session")
def vitrine_server(_isolated_cache: None) -> Iterator[EmbeddedTriton]:
    """The embedded target of every spec, served on free loopback ports."""
    ports = {name: free_port() for name in ("grpc_port", "http_port", "metrics_port")}
    with EmbeddedTriton(embedded_repository(), **ports) as server:
        yield server


@pytest.fixture()
def client(vitrine_server: EmbeddedTriton) -> Iterator[VitrineClient]:
    """The typed client, connected to the session's server."""
    with VitrineClient(vitrine_server.grpc_url, timeout=60.0) as typed_client:
        yield typed_client


@pytest.fixture()
def triton(vitrine_server: EmbeddedTriton) -> Iterator[grpcclient.InferenceServerClient]:
    """A plain tritonclient, for requests the typed client would refuse to send."""
    raw = grpcclient.InferenceServerClient(vitrine_server.grpc_url)
    yield raw
    raw.close()
