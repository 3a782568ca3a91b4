"""File names the kernel allows and UTF-8 does not, through a real service (issue 12, item 2).

A real ``pywats serve`` and ``pywats receiver``: reports under names that are not UTF-8,
hold a newline, start with ``-`` or a space, or are 255 bytes long are converted,
uploaded, and moved to the done folder under the very same bytes; a corrupt one lands
in the error folder with its ``.error.txt``; the control protocol answers valid text and
``files restore`` finds such a file by the name ``files list`` shows; the service stays
up, and a restart with such files present does not crash.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pywats import filenames
from tests.integration.harness import (
    PYWATS,
    Instance,
    ReceiverProcess,
    report_bytes,
    running,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow

GOOD_NAMES = [
    b"bad-\xff\xfe.json",
    b"caf\xe9.json",
    b"two\nlines.json",
    b"-leading dash.json",
    b" leading space .json",
    b"y" * 250 + b".json",  # 255 bytes
]
CORRUPT_NAME = b"broken-\xe9.json"


def put(folder: Path, raw: bytes, data: bytes) -> None:
    """Write ``data`` under the byte name ``raw``, atomically (a hidden name, then rename)."""
    base = os.fsencode(folder)
    tmp = os.path.join(base, b".incoming.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(base, raw))


def names(folder: Path) -> set[bytes]:
    return set(os.listdir(os.fsencode(folder))) if folder.is_dir() else set()


def cli(inst: Instance, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYWATS, *args, "--instance", inst.name],
        env=inst.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_any_file_name_is_converted_or_rejected_and_the_service_lives(
    tmp_path: Path, receiver: ReceiverProcess
) -> None:
    inst = Instance(tmp_path, "ict", server_url=receiver.url)
    ids: dict[str, bytes] = {}
    for index, raw in enumerate(GOOD_NAMES):
        report_id, data = report_bytes(index)
        ids[report_id] = raw
        put(inst.watch, raw, data)
    put(inst.watch, CORRUPT_NAME, b"{ this is not json")
    corrupt_shown = filenames.shown(os.fsdecode(CORRUPT_NAME))
    sidecar = CORRUPT_NAME + b".error.txt"

    # Present at start, as after the crash the issue describes: the first run takes them.
    with running(inst.serve()) as proc:
        inst.wait_ready()
        wait_for(lambda: set(ids) <= receiver.ids(), timeout=60, what="every report uploaded")
        wait_for(lambda: not inst.files_left(), timeout=30, what="the watch folder emptied")
        assert names(inst.done) == set(GOOD_NAMES)  # the very same bytes
        assert names(inst.error) == {CORRUPT_NAME, sidecar}
        text = (Path(os.fsdecode(os.fsencode(inst.error) + b"/" + sidecar))).read_bytes()
        assert corrupt_shown.encode() in text  # valid UTF-8, the byte shown as \xe9
        assert proc.poll() is None

        # The control protocol answers valid text, and finds the file by its shown name.
        listed = cli(inst, "files", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [entry] = json.loads(listed.stdout)["files"]
        assert entry["name"] == corrupt_shown
        report_id = next(i for i, raw in ids.items() if raw == b"bad-\xff\xfe.json")
        shown = cli(inst, "queue", "show", report_id, "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["source"].endswith("bad-\\xff\\xfe.json")
        moved = cli(inst, "files", "restore", "wsjf", corrupt_shown)
        assert moved.returncode == 0, moved.stderr
        # Back in the watch folder under its own bytes: rejected again, with a new sidecar.
        wait_for(
            lambda: names(inst.error) == {CORRUPT_NAME, sidecar} and not inst.files_left(),
            timeout=30,
            what="the restored file rejected again",
        )
        assert stop(proc) == 0
    log = inst.log()
    assert "Traceback" not in log
    assert "surrogates not allowed" not in log
    rejected = [line for line in log.splitlines() if "could not convert" in line]
    assert len(rejected) == 2  # once per try, one line each

    # A restart with such names waiting must not crash either.
    report_id, data = report_bytes(99)
    put(inst.watch, b"after-restart-\xfc.json", data)
    with running(inst.serve()) as proc:
        inst.wait_ready()
        wait_for(lambda: report_id in receiver.ids(), timeout=60, what="the new report")
        wait_for(lambda: not inst.files_left(), timeout=30, what="the watch folder emptied")
        assert b"after-restart-\xfc.json" in names(inst.done)
        assert stop(proc) == 0
    assert "Traceback" not in inst.log()
    assert receiver.stats()["received"] == len(GOOD_NAMES) + 1
