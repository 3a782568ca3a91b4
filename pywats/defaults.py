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

# Choosing a converter by content (pywats.converters.sniffing)
SNIFF_BYTES = 64 * 1024
"""How much of a file's start a converter's ``sniff`` is shown (root element, markers)."""

# [[converters]] with a command (process converters, pywats.converters.process)
PROCESS_TIMEOUT_S = 60.0
"""``timeout_s``: how long a converter program may run on one file before it is killed."""
PROCESS_MAX_OUTPUT_BYTES = 64 * MiB
"""``max_output_bytes``: the most a converter program may print on stdout for one file."""
PROCESS_STDERR_TAIL_BYTES = 8 * 1024
"""How much of the end of a converter program's stderr is kept for the error sidecar."""
PROCESS_KILL_GRACE_S = 2.0
"""After SIGTERM (at the timeout), how long the program's process group has before SIGKILL."""

# Companions: the files or folders a converter names as belonging with a file (Klippel's
# result folder beside its header), read and filed together with it.
COMPANION_MAX_MEMBERS = 1000
"""Most files and folders the companions of one file may hold; more is a rejection."""
COMPANION_MAX_BYTES = 50 * MiB
"""Most bytes the files of one file's companions may hold together; more is a rejection."""
COMPANION_WAIT_S = 60.0
"""How long a file waits for companions that are missing or still changing (looking
again every ``settle_s``) before it goes to the error folder."""

# Messages (issue 12 item 8)
OUTAGE_QUIET_S = 60.0
"""After an outage's end line, how long going offline again counts as the same outage
(logged at DEBUG, counted in the next line): at most one offline/online pair of lines per
this long when a server or proxy keeps losing answers."""
NOTIFY_SEND_TIMEOUT_S = 1.0
"""Longest wait for a stuck ``$NOTIFY_SOCKET`` (its queue full) per message; once one
message timed out, later ones are tried once without waiting until one gets through."""

STATUS_CACHE_S = 0.01
"""Longest a ``service.status`` answer is reused when nothing happened in between (s):
see :mod:`pywats.rpc.snapshots`."""

# A failing queue database (disk full, I/O errors) and a done folder that cannot be
# written: how soon what failed is tried again. Short on purpose: a try is one local call
# or one file, and reports must flow within seconds of space coming back.
STORE_RETRY_FIRST_S = 0.5
"""First delay before a converter or uploader tries a failing queue database again."""
STORE_RETRY_MAX_S = 2.0
"""Longest delay between two tries of a failing queue database (doubling up to it); a
write that works again wakes every waiter at once."""
FILE_AWAY_RETRY_S = 1.0
"""Least time between two tries to move (or delete) a queued file whose post-action
failed (a full done folder); it stays in its watch folder and is tried again."""
CHECKPOINT_INTERVAL_S = 60.0
"""How often the queue's write-ahead log is copied into the database file and the time
noted outside it; after an unclean stop, files filed since then are checked."""

# [convert] memory budget (pywats.pipeline.budget)
CONVERT_MEMORY_BUDGET_MB = 160
"""``memory_budget_mb``: the memory the converter workers may take together, estimated
per file before it is read (its size times its converter's factor). A file that needs
more than all of it goes to the error folder unread. With it, ``pywats serve`` stays
under 300 MiB of RSS (``docs/performance.md``, "Memory per format")."""
CONVERT_MEMORY_FACTOR = 40.0
"""The memory factor of a converter that has none measured (plugins, process converters):
a file of S bytes is expected to take 40 x S while it is converted."""

# The garbage collector (pywats.collector)
GC_THRESHOLDS = (50_000, 20, 20)
"""``gc.set_threshold`` of ``pywats serve`` (Python's own: 700, 10, 10). A converter makes
hundreds of thousands of report objects, none of them in a cycle; with the default, a
young-generation pass ran every 700 of them and older passes over all the ones kept so
far. 5-13 % of a conversion's time (``bench/convert.py``); cycles are still collected."""
