"""Row 9 of the fault matrix at process level: zero-byte, truncated, non-UTF-8, hostile
(deeply nested) and oversized files. Each goes to the error folder with a sidecar saying
why; the service keeps running and a good file still flows. (Each converter's own
corpus is in ``tests/converters/``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop, wait_for

pytestmark = pytest.mark.slow

BAD = {
    "empty.json": b"",
    "truncated.json": b'{"id": "8f0c", "type": "T", "pn": ',
    "latin1.json": '{"sn": "Prüfling"}'.encode("latin-1"),
    "nested.json": b"[" * 200_000 + b"]" * 200_000,
    "not-json.json": b"\x00\x01\x02 binary junk \xff\xfe",
}


def test_bad_files_go_to_the_error_folder_and_the_service_keeps_going(tmp_path: Path) -> None:
    with oracle.receiving(tmp_path / "rx.db") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url)
        for name, data in BAD.items():
            (inst.watch / name).write_bytes(data)
        ids = set(inst.drop(5))
        with running(inst.serve()) as proc:
            inst.wait_ready()
            wait_for(
                lambda: all((inst.error / f"{n}.error.txt").exists() for n in BAD),
                timeout=60,
                what="a sidecar for every bad file",
            )
            oracle.drained(inst, rx, ids, timeout=60)
            ids |= oracle.fresh_file_flows(inst, rx, start=100)
            assert proc.poll() is None
            assert stop(proc) == 0
        oracle.check(inst, rx, ids)
        log = inst.log()
    for name, data in BAD.items():
        assert (inst.error / name).read_bytes() == data  # kept as it was, for a person
        sidecar = (inst.error / f"{name}.error.txt").read_text()
        assert "wsjf" in sidecar, sidecar
    assert "Traceback" not in log
