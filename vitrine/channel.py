"""gRPC channel options shared by the client SDK and the server's own probes."""

from __future__ import annotations

__all__ = ["MAX_MESSAGE_BYTES", "channel_args"]

MAX_MESSAGE_BYTES = 1 << 30
"""Fits the largest upload (25 MP: about 75 MB as PNG) and the largest result (64 MP RGBA:
up to 256 MB as PNG), with room; Triton's own gRPC limit is 2 GB."""


def channel_args(max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """Message-size limits, and reconnects that find a restarted server within a second.

    gRPC shares subchannels between channels and backs off reconnects for up to two
    minutes; a private subchannel pool and a 1 s backoff cap make recovery fast.
    """
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
