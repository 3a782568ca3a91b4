"""The same file converted twice is the same reports on the server (issue 12, item 1).

A SPEA log (a format with no report id) is dropped into a real ``pywats serve`` that
uploads to a real ``pywats receiver``. The service is stopped, its state directory is
cleared (so the queue has no memory of the file, as after a lost disk or a second
instance), and the same file is dropped again into a new process. The receiver must see
each report twice under the same id (overwrites), not a second set of ids.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pywats.converters import ConversionContext, Source, run_converter
from pywats.converters.spea import SpeaConverter
from tests.integration.harness import Instance, ReceiverProcess, running, stop, wait_for

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "equipment" / "spea"
SAMPLE_FILE = SAMPLE / "testdata_SN9871234012.csv"


def _spea_instance(root: Path, url: str) -> Instance:
    inst = Instance(root, "spea", server_url=url)
    text = inst.config.read_text()
    assert 'name = "wsjf"' in text
    inst.config.write_text(text.replace('name = "wsjf"', 'name = "spea"'))
    return inst


def _drop(inst: Instance) -> None:
    tmp = inst.watch / ".log.tmp"
    shutil.copyfile(SAMPLE_FILE, tmp)
    tmp.rename(inst.watch / SAMPLE_FILE.name)


def _run_once(inst: Instance, receiver: ReceiverProcess, received: int) -> None:
    _drop(inst)
    with running(inst.serve()) as proc:
        inst.wait_ready()
        wait_for(
            lambda: receiver.stats()["received"] >= received,
            timeout=30,
            what=f"{received} reports at the receiver",
        )
        wait_for(lambda: not inst.files_left(), timeout=30, what="the watch folder to empty")
        assert stop(proc) == 0, inst.log()


def test_same_file_again_overwrites_instead_of_duplicating(
    tmp_path: Path, receiver: ReceiverProcess
) -> None:
    data = SAMPLE_FILE.read_bytes()
    expected = {
        r.id for r in run_converter(SpeaConverter(), Source(SAMPLE_FILE, data), ConversionContext())
    }
    count = len(expected)
    inst = _spea_instance(tmp_path, receiver.url)

    _run_once(inst, receiver, count)
    assert receiver.ids() == expected
    assert receiver.stats()["duplicates"] == 0

    # The queue forgets the file: the service cannot tell it has sent it already.
    shutil.rmtree(inst.state)
    inst.state.mkdir()
    shutil.rmtree(inst.done)

    _run_once(inst, receiver, 2 * count)
    stats = receiver.stats()
    assert receiver.ids() == expected, "the second conversion made other ids"
    assert (stats["received"], stats["unique"], stats["duplicates"]) == (2 * count, count, count)
