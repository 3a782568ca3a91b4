"""The conversion pipeline: watch folders, convert ready files, queue reports, file them away.

::

    Watcher (one per watch folder) --paths--> [one bounded channel] --> N converter workers
    worker, per batch of files: read + sha256 (thread) -> already queued? (store)
                      -> convert (thread) -> one store transaction: reports + source hashes
                      -> post-action (thread): move to done | delete | archive | keep
                      (or: error folder with <name>.error.txt)

Ordering is the safety argument. A file is moved or deleted only after the store has
committed its reports together with the file's content hash. A crash (or cancellation)
between the commit and the post-action leaves the file where it was; the next time it is
seen, its hash is found in the store, so it is filed away without being queued again. A
file that fails goes to the error folder with a sidecar that says why; nothing is ever
deleted unconverted.

Every file takes one path (a file that arrives alone is a batch of one) and ends in one
outcome, recorded once: counters, a log line on ``pywats.pipeline`` and events on the
pipeline's :class:`~pywats.events.EventHub` (:mod:`pywats.pipeline.outcomes`).

Several entries (:class:`FolderConfig`) may share a watch folder: one watcher serves them
all. A file whose name one entry's patterns take goes to that entry; when several take
it, the entry whose converter recognises the file's head (read on a worker thread) takes
it, and a file none of them claims goes to the first one's error folder with every
candidate's answer (:mod:`pywats.pipeline.folders`, :mod:`pywats.converters.sniffing`).
Entries can be disabled and enabled while the pipeline runs; each watch folder's watcher
runs in a cancel scope of its own.

Backpressure: the workers are fed by one bounded channel from every watcher. When the
workers are busy the channel fills, the watchers wait in ``send``, and files stay in their
watch folders. When the store fails (disk full, database locked) the worker holding the
file retries with backoff and the same thing happens.

Modules: :mod:`~pywats.pipeline.folders` (entries and which sets fit),
:mod:`~pywats.pipeline.entries` (their running state), :mod:`~pywats.pipeline.steps`
(the worker-thread steps), :mod:`~pywats.pipeline.outcomes` (how a file ends),
:mod:`~pywats.pipeline.pipeline` (the trio side), :mod:`~pywats.pipeline.statistics`.
"""

from __future__ import annotations

from pywats.config import PostAction as PostAction
from pywats.pipeline.folders import FolderConfig as FolderConfig
from pywats.pipeline.folders import check_folders as check_folders
from pywats.pipeline.pipeline import Pipeline as Pipeline
from pywats.pipeline.statistics import FolderStatistics as FolderStatistics
from pywats.pipeline.statistics import PipelineStatistics as PipelineStatistics

__all__ = [
    "FolderConfig",
    "FolderStatistics",
    "Pipeline",
    "PipelineStatistics",
    "PostAction",
    "check_folders",
]
