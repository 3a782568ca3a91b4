"""Every default of the service, written once.

The configuration layer (``pywats.config``) and the components' own configurations
(uploader, pipeline, watcher) take their defaults from here, so a default changed here is
changed everywhere, and ``docs/configuration.md`` documents these values.
"""

from __future__ import annotations

MiB = 1024 * 1024

# [station]
STATION_LOCATION = "unknown"
STATION_PURPOSE = "Production"

# [server]
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
WRITE_TIMEOUT_S = 60.0
POOL_TIMEOUT_S = 10.0
VERIFY_TLS = True

# [upload]
UPLOAD_WORKERS = 5
UPLOAD_WORKERS_MAX = 64
RETRY_BASE_S = 1.0
"""Upper bound of the first retry delay; it doubles per failed attempt."""
RETRY_MAX_S = 300.0
"""Cap of a report's retry delay bound (full jitter: the delay is uniform below it)."""
RETRY_AFTER_MAX_S = 3600.0
"""Longest ``Retry-After`` obeyed; larger values are clamped to this."""
PROBE_MAX_S = 60.0
"""Cap of the health probe's backoff while the server cannot be reached."""
HEALTH_INTERVAL_S = 60.0
"""How often an online server is probed (version, latency)."""
PAUSED_PROBE_MAX_S = 300.0
"""Cap of the backoff of the probe that asks a server which refused the token (or whose
URL looked wrong) again, so that uploads resume by themselves once it is fixed."""
SHUTDOWN_DEADLINE_S = 10.0
"""How long uploads in flight may take to finish at a stop or reconfiguration."""

# [convert]
CONVERT_WORKERS = 4
CONVERT_WORKERS_MAX = 64

# [queue]
RETENTION_DAYS = 7.0

# [[converters]]
SETTLE_S = 2.0
"""A rescan takes a file once its size and mtime have been unchanged this long."""
RESCAN_S = 30.0
"""Time between rescans of a watch folder."""
MAX_FILE_BYTES = 50 * MiB
"""Larger files go to the error folder unread."""
