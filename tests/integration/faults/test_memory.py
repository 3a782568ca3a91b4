"""Memory: ``pywats serve`` with the default config stays under 300 MiB of RSS, whatever
its folder holds (issue 12, item 3).

A folder of big valid WSJF files: the ones the conversion memory budget can hold are
converted one after another (not four at once) and uploaded to a real ``pywats
receiver``; the one that needs more than the whole budget goes to the error folder with
the reason in its sidecar. The peak RSS of the serve process (``VmHWM``) is read from
``/proc`` at the end.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Instance, ReceiverProcess, running, stop, wait_for

MiB = 1024 * 1024
DATA = Path(__file__).resolve().parents[2] / "data"
RSS_LIMIT = 300 * MiB
"""The issue's target: peak RSS of ``pywats serve`` with the default config."""


def big_wsjf(size: int, *, seed: int = 0, compact: bool = False) -> bytes:
    """A valid WSJF report of about ``size`` bytes: the WATS export with its steps
    repeated (fresh step ids), a fresh report id and a serial number from ``seed``."""
    doc: dict[str, Any] = json.loads((DATA / "uut-wsjf-export.json").read_bytes())
    base = doc["root"]["steps"]
    one = len(json.dumps(base))
    next_id = [1]

    def renumber(step: dict[str, Any]) -> None:
        next_id[0] += 1
        step["id"] = next_id[0]
        for child in step.get("steps") or []:
            renumber(child)

    steps: list[dict[str, Any]] = []
    for _ in range(max(1, size // one)):
        for step in copy.deepcopy(base):
            renumber(step)
            steps.append(step)
    doc["root"]["steps"] = steps
    doc["id"] = str(uuid.uuid4())
    doc["sn"] = f"MEM-{seed:05d}"
    separators = (",", ":") if compact else None
    return json.dumps(doc, separators=separators).encode()


def vm_hwm(pid: int) -> int:
    """The peak resident set size of process ``pid`` so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def _drop(instance: Instance, name: str, data: bytes) -> None:
    """Write a file into the watch folder atomically (by rename), as equipment does."""
    tmp = instance.watch / f".{name}.tmp"
    tmp.write_bytes(data)
    tmp.rename(instance.watch / name)


def _run(tmp_path: Path, fitting: list[int], too_big: int, *, timeout: float) -> int:
    """Serve (default config) a folder of big WSJF files of sizes ``fitting`` (each within
    the default budget) and one of ``too_big`` bytes (more than the budget allows);
    return the serve process's peak RSS."""
    receiver = ReceiverProcess(tmp_path / "receiver.db")
    try:
        instance = Instance(tmp_path, "mem", server_url=receiver.url)
        proc = instance.serve()
        with running(proc):
            instance.wait_ready()
            expected: set[str] = set()
            for index, size in enumerate(fitting):
                data = big_wsjf(size, seed=index)
                expected.add(json.loads(data)["id"])
                _drop(instance, f"fits{index}.json", data)
                del data
            _drop(instance, "huge.json", big_wsjf(too_big, seed=99))
            sidecar = instance.error / "huge.json.error.txt"

            def settled() -> bool:
                huge_done = sidecar.exists() or not (instance.watch / "huge.json").exists()
                return huge_done and receiver.ids() >= expected

            wait_for(settled, timeout=timeout, what="every file uploaded or rejected")
            peak = vm_hwm(proc.pid)
            assert stop(proc) == 0
        assert peak < RSS_LIMIT, f"peak RSS {peak / MiB:.0f} MiB"
        assert receiver.ids() == expected
        assert (instance.error / "huge.json").exists()
        reason = sidecar.read_text()
        assert "more than the conversion memory budget of 160 MiB" in reason
        assert "[convert] memory_budget_mb" in reason
        assert not instance.files_left()
    finally:
        receiver.stop()
    return peak


def test_serve_stays_under_300_mib_and_rejects_what_cannot_fit(tmp_path: Path) -> None:
    # Four files that each take about 90 MiB to convert: four workers at once would take
    # about 400 MiB; the budget has them wait for each other instead.
    _run(tmp_path, [8_000_000] * 4, 14_500_000, timeout=120)


@pytest.mark.long
def test_serve_stays_under_300_mib_with_files_at_the_size_limit(tmp_path: Path) -> None:
    # Files as big as the budget allows, and one just under max_file_bytes (50 MiB).
    _run(tmp_path, [13_000_000] * 6, 50_000_000, timeout=600)
