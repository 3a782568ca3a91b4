"""Row 10 of the fault matrix at process level: a file still being written is never
converted half-written. The tester writes 1 KB every 100 ms under the file's final name,
once holding the file open and once closing it between sessions (as some testers log:
open, append, close; the folder has ``settle_after_close = true`` for that); the service
makes exactly one report of each, from the whole file.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop
from tests.report.minimal import uut

pytestmark = pytest.mark.slow

CHUNK = 1024
PAUSE_S = 0.1  # half the instance's settle_s (0.2 s): a writer that never looks idle
INFOS = 60


def big_report(sn: str) -> tuple[str, bytes]:
    """A valid report of about 6 KB: six chunks, each with a part of the misc infos."""
    doc = uut()
    doc["id"] = str(uuid.uuid4())
    doc["sn"] = sn
    doc["miscInfos"] = [{"description": f"info {n}", "text": "x" * 80} for n in range(INFOS)]
    return str(doc["id"]), json.dumps(doc).encode()


def test_a_slowly_written_file_becomes_one_whole_report(tmp_path: Path) -> None:
    with oracle.receiving(tmp_path / "rx.db") as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url)
        inst.config.write_text(inst.config.read_text() + "settle_after_close = true\n")
        held_id, held = big_report("SN-HELD")
        sessions_id, sessions = big_report("SN-SESSIONS")
        assert len(held) > 5 * CHUNK
        with running(inst.serve()) as proc:
            inst.wait_ready()
            # One open handle, written slowly (inotify's close comes at the end).
            with (inst.watch / "held.json").open("wb") as out:
                for at in range(0, len(held), CHUNK):
                    out.write(held[at : at + CHUNK])
                    out.flush()
                    time.sleep(PAUSE_S)
            # Many sessions: every chunk its own open/append/close (a close each time).
            target = inst.watch / "sessions.json"
            for at in range(0, len(sessions), CHUNK):
                with target.open("ab") as out:
                    out.write(sessions[at : at + CHUNK])
                time.sleep(PAUSE_S)
            oracle.drained(inst, rx, {held_id, sessions_id}, timeout=60)
            assert stop(proc) == 0
        verdict = oracle.check(inst, rx, {held_id, sessions_id})
        assert verdict.duplicates == 0
        stored = oracle.received(rx)
        for report_id in (held_id, sessions_id):
            body, _ = stored[report_id]
            infos = json.loads(body)["miscInfos"]
            assert len(infos) == INFOS  # the whole file, not a part of it
        assert not list(inst.error.glob("*")), "nothing half-written went to the error folder"
