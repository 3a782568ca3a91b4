"""The control protocol: JSON-RPC 2.0 over WebSocket on the instance's Unix socket.

- :mod:`pywats.rpc.codec`: JSON-RPC messages as data (sans-IO).
- :mod:`pywats.rpc.methods`: the registry (params, results, errors of each method).
- :mod:`pywats.rpc.dispatch`: one message in, the text of its answer out (sans-IO).
- :mod:`pywats.rpc.api`: the pywats methods, all through the ServiceView.
- :mod:`pywats.rpc.wire`: the one cattrs converter for the wire format.
- :mod:`pywats.rpc.server`: the socket, the peer check, WebSocket framing.
- :mod:`pywats.rpc.client`: :class:`RpcClient`, for the CLI, the TUI and tests.
- :mod:`pywats.rpc.errors`: error codes and exceptions.

``docs/ipc.md`` describes the protocol.
"""
