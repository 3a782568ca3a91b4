"""Two ``pywats serve`` processes on one watch folder (issue 12, item 1a).

A second process with another state directory (so another instance lock) must not take
files from a folder the first one watches: it exits 1 naming the folder and the first
one's pid, and every file dropped is converted and uploaded once. Real processes: two
``pywats serve`` and a ``pywats receiver`` on 127.0.0.1. The files carry no report id, as
in the issue: a file converted twice would reach the server as two reports.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.integration.harness import (
    Instance,
    ReceiverProcess,
    report_bytes,
    running,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow

FILES = 30


def watching(inst: Instance, folder: Path) -> None:
    """Point ``inst``'s config at another watch folder (its own done and error folders)."""
    text = inst.config.read_text().replace(f'watch = "{inst.watch}"', f'watch = "{folder}"')
    inst.config.write_text(text)


def drop_without_ids(folder: Path, count: int, start: int = 0) -> set[str]:
    """``count`` reports with no id (the converter gives each one); their serial numbers."""
    serials = set()
    for index in range(start, start + count):
        _, data = report_bytes(index)
        doc = json.loads(data)
        del doc["id"]
        tmp = folder / f".r{index}.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.rename(folder / f"r{index:04d}.json")
        serials.add(doc["sn"])
    return serials


def serials_received(receiver: ReceiverProcess) -> list[str]:
    with contextlib.closing(sqlite3.connect(receiver.db)) as conn:
        return [json.loads(body)["sn"] for (body,) in conn.execute("select body from reports")]


def refused(second: Instance, proc: subprocess.Popen[str], folder: Path, pid: int) -> str:
    code = proc.wait(timeout=60)
    log = second.log()
    assert code == 1, log
    line = f"watch folder {folder} is already taken by another pywats process (pid {pid}"
    matching = [entry for entry in log.splitlines() if line in entry]
    assert matching, log
    assert "Traceback" not in log
    return log


@pytest.mark.parametrize("second_name", ["ict", "other"], ids=["same-instance", "other-instance"])
def test_a_second_process_on_a_watched_folder_refuses_to_start(
    tmp_path: Path, receiver: ReceiverProcess, second_name: str
) -> None:
    first = Instance(tmp_path / "one", "ict", server_url=receiver.url)
    # Another state directory (a hand-started `serve` without STATE_DIRECTORY, or another
    # instance whose config names the same folder), so the instance lock does not help.
    second = Instance(tmp_path / "two", second_name, server_url=receiver.url)
    watching(second, first.watch)
    with running(first.serve()) as one:
        first.wait_ready()
        with running(second.serve()) as two:
            # Files arrive while the second one starts: on the old code both took them.
            serials = drop_without_ids(first.watch, FILES)
            refused(second, two, first.watch, one.pid)
        wait_for(
            lambda: len(serials_received(receiver)) >= FILES,
            timeout=60,
            what=f"{FILES} reports at the receiver",
        )
        wait_for(lambda: not first.files_left(), timeout=30, what="the watch folder emptied")
        assert sorted(serials_received(receiver)) == sorted(serials)  # each file once
        assert receiver.stats()["received"] == FILES
        assert not list(second.root.glob("done/*"))
        assert stop(one) == 0
    # Once the first one is gone, the folder is free for the other.
    with running(second.serve()) as two:
        second.wait_ready()
        assert stop(two) == 0


def test_the_second_process_is_refused_even_before_the_first_has_files(tmp_path: Path) -> None:
    first = Instance(tmp_path / "one", "ict", server_url=None)
    second = Instance(tmp_path / "two", "ict", server_url=None)
    link = tmp_path / "alias"
    link.symlink_to(first.watch)  # another path to the same folder meets the same lock
    watching(second, link)
    with running(first.serve()) as one:
        first.wait_ready()
        with running(second.serve()) as two:
            refused(second, two, link, one.pid)
        assert stop(one) == 0


def test_a_folder_enabled_by_a_reload_is_refused_while_another_process_has_it(
    tmp_path: Path, receiver: ReceiverProcess
) -> None:
    first = Instance(tmp_path / "one", "ict", server_url=receiver.url)
    second = Instance(tmp_path / "two", "other", server_url=receiver.url)
    # The second one has its own folder and an entry on the first one's folder.
    base = second.config.read_text()

    def shared(enabled: bool) -> str:
        return (
            f'[[converters]]\nname = "wsjf"\nwatch = "{first.watch}"\n'
            f"enabled = {str(enabled).lower()}\n"
            f'done_dir = "{second.done}"\nerror_dir = "{second.error}"\n'
            "settle_s = 0.2\nrescan_s = 1\n"
        )

    def reload(proc: subprocess.Popen[str], enabled: bool, seen: str) -> None:
        second.config.write_text(base + shared(enabled))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: seen in second.log(), timeout=30, what=f"{seen!r} in the log")

    second.config.write_text(base + shared(True))
    with running(second.serve()) as two:
        second.wait_ready()
        # Switched off by a reload: the folder is free for the first one to start on.
        reload(two, False, "converters[1].enabled changed, applied")
        with running(first.serve()) as one:
            first.wait_ready()
            # Switched on again while the first one watches it: refused, the service goes on.
            refusal = (
                f"watch folder {first.watch} is already taken by another pywats process "
                f"(pid {one.pid}"
            )
            reload(two, True, refusal)
            serials = drop_without_ids(first.watch, 10)
            own = drop_without_ids(second.watch, 5, start=100)
            wait_for(lambda: len(serials_received(receiver)) >= 15, timeout=60, what="15 reports")
            assert two.poll() is None
            assert sorted(serials_received(receiver)) == sorted([*serials, *own])
            assert stop(one) == 0
        # The first one is gone: the second one takes the folder at its next try.
        drop_without_ids(first.watch, 1, start=200)
        wait_for(lambda: not first.files_left(), timeout=30, what="the second one taking over")
        wait_for(lambda: len(serials_received(receiver)) == 16, timeout=60, what="the late report")
        assert stop(two) == 0
    log = second.log()
    assert "Traceback" not in log
    # Said once, though it was tried again every second until the folder was free.
    assert len([line for line in log.splitlines() if refusal in line]) == 1, log
