"""``pywats serve`` runs the cyclic garbage collector less often than Python would
(:mod:`pywats.collector`): a converter's report objects are freed by reference counting."""

from __future__ import annotations

import gc

from pywats.collector import tune_collector
from pywats.defaults import GC_THRESHOLDS


def test_the_service_raises_the_collector_thresholds_and_still_collects() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > 700  # Python's young-generation threshold
        assert gc.isenabled()  # cycles are still collected
    finally:
        gc.set_threshold(*before)
