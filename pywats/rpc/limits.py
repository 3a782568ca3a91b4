"""The control protocol's limits, which both ends apply (the server and
:class:`pywats.rpc.client.RpcClient`): here so that a client needs none of the server."""

from __future__ import annotations

__all__ = ["CLOSE_TIMEOUT_S", "HANDSHAKE_TIMEOUT_S", "MAX_MESSAGE_SIZE"]

HANDSHAKE_TIMEOUT_S = 5.0
"""Longest a connection may take to finish the WebSocket opening handshake."""
CLOSE_TIMEOUT_S = 1.0
"""Longest the closing handshake may take before the stream is cut."""
MAX_MESSAGE_SIZE = 1 << 20
"""Largest message accepted (1 MiB, as ``len()`` of the text); larger closes with 1009."""
