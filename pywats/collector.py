"""How ``pywats serve`` runs Python's garbage collector: :func:`tune_collector`.

Reports are trees of frozen objects that reference counting frees; the cyclic collector
finds nothing in them but, at Python's thresholds, walks them again and again while a
converter builds them. The service raises the thresholds once at start-up
(:data:`pywats.defaults.GC_THRESHOLDS`); ``bench/convert.py`` does the same, so that it
measures what the service does.
"""

from __future__ import annotations

import gc

from pywats.defaults import GC_THRESHOLDS

__all__ = ["tune_collector"]


def tune_collector() -> None:
    """Set the collector's thresholds for a converting process (process-wide)."""
    gc.set_threshold(*GC_THRESHOLDS)
