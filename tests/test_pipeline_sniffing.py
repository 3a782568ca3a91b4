"""Several converters on one watch folder: each file goes to the entry whose converter
recognises it (:mod:`pywats.pipeline.folders`, :mod:`pywats.converters.sniffing`).

Rules as in ``tests/test_pipeline.py``: real folders, real inotify, a real Store, real
threads; waits are for the pipeline's events, bounded by ``trio.fail_after``. The
assertions are what a station engineer looks at: which entry took which file (its
event, its done folder), what was queued, and what the sidecar of a file nobody takes
says.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from pywats.converters import discover, load_converter
from pywats.converters.csv import CsvConverter
from pywats.converters.wsjf import WsjfConverter
from pywats.converters.wstf import WstfConverter
from pywats.converters.wsxf import WsxfConverter
from pywats.events import FileOutcome, FileProcessed, FileRejected
from pywats.pipeline import FolderConfig
from pywats.pipeline.folders import route_by_content, route_by_name
from pywats.store import Store
from tests.test_pipeline import make_folder, names, queued, running, sidecar

DATA = Path(__file__).parent / "data"
EQUIPMENT = DATA / "equipment"

WSTF = (
    "--Header-Start--\nSerialNumber\t{sn}\nPartNumber\tPCBA-100\nRevision\tA\n"
    "StartDateTime\t2026-02-01T09:15:00+01:00\n--Step-Data-Start--\n"
    "NumericLimitTest\tVCC\t\t5.02\t4.9\t5.1\tGELE\tV\n--Step-Data-End--\n"
    "UUTStatus\tPassed\n--UUT-End--\n"
)

TABLE = """Serial,Date,VCC
SN-T1,2026-02-01T09:15:00+01:00,5.02
SN-T2,2026-02-01T09:16:00+01:00,5.30
"""
TABLE_ARGUMENTS: dict[str, Any] = {
    "columns": {"sn": "Serial", "start": "Date"},
    "constants": {"pn": "PCBA-200", "rev": "B"},
    "steps": [{"valueColumn": "VCC", "low": 4.9, "high": 5.1, "unit": "V"}],
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "state" / "queue.db") as s:
        yield s


def shared(tmp_path: Path) -> tuple[FolderConfig, FolderConfig, FolderConfig]:
    """Three entries on one inbox: WSXF (``*.xml``), WSTF (``*.txt`` and any name), and a
    configured csv (``*.txt``, ``*.csv``), in that order."""
    inbox = tmp_path / "inbox"
    xml = make_folder(tmp_path, "xml", watch=inbox, converter=WsxfConverter())
    text = make_folder(
        tmp_path, "text", watch=inbox, converter=WstfConverter(), patterns=("*.txt", "*")
    )
    table = make_folder(
        tmp_path,
        "table",
        watch=inbox,
        converter=CsvConverter(),
        arguments=load_converter("csv", TABLE_ARGUMENTS).arguments,
        patterns=("*.txt", "*.csv"),
    )
    return xml, text, table


async def test_each_file_of_a_shared_folder_goes_to_the_converter_that_reads_it(
    tmp_path: Path, store: Store
) -> None:
    xml, text, table = shared(tmp_path)
    inbox = xml.watch
    files = {
        # .xml: both xml and text take the name; WSXF's sniff claims it.
        "export.xml": (DATA / "uut-wsxf-export.xml").read_bytes(),
        # No extension: only the text entry's "*" takes it, unread.
        "unit42": WSTF.format(sn="SN-NOEXT").encode(),
        # A WSTF file someone named .xml: the content wins over the name.
        "run.xml": WSTF.format(sn="SN-XMLNAME").encode(),
        # .txt: text and table take the name; WSTF's sniff says no; csv is the fallback.
        "line.txt": TABLE.encode(),
        # .txt that is WSTF: the text entry, though the table entry's pattern matches too.
        "board.txt": WSTF.format(sn="SN-TXT").encode(),
    }
    with trio.fail_after(30):
        async with running(store, xml, text, table) as (pipeline, watched):
            for name, data in files.items():
                (inbox / name).write_bytes(data)
            outcomes = await watched.wait(len(files), "every file")
            taken = {Path(o.source).name: o.folder for o in outcomes}
            assert taken == {
                "export.xml": "xml",
                "unit42": "text",
                "run.xml": "text",
                "line.txt": "table",
                "board.txt": "text",
            }
            assert all(
                isinstance(o, FileProcessed) and o.outcome == FileOutcome.CONVERTED
                for o in outcomes
            ), outcomes
            stats = pipeline.statistics().folders
            assert [stats[n].files_converted for n in ("xml", "text", "table")] == [1, 3, 1]
    assert names(inbox) == []
    assert names(xml.done_dir) == ["export.xml"]
    assert names(text.done_dir) == ["board.txt", "run.xml", "unit42"]
    assert names(table.done_dir) == ["line.txt"]
    assert names(xml.error_dir) == names(text.error_dir) == names(table.error_dir) == []
    by_sn = {r.sn: r for r in await queued(store)}
    assert {sn: r.converter for sn, r in by_sn.items()} == {
        "FATTest-325": "wsxf",
        "SN-NOEXT": "wstf",
        "SN-XMLNAME": "wstf",
        "SN-TXT": "wstf",
        "SN-T1": "csv",
        "SN-T2": "csv",
    }
    assert by_sn["FATTest-325"].id == "33a2d408-3fc8-480b-b554-6866c77fd91c"
    assert (by_sn["SN-T1"].pn, by_sn["SN-T1"].result, by_sn["SN-T2"].result) == (
        "PCBA-200",
        "P",
        "F",
    )


async def test_a_file_nobody_claims_goes_to_the_error_folder_with_every_answer(
    tmp_path: Path, store: Store
) -> None:
    xml, text, table = shared(tmp_path)
    junk = b'<?xml version="1.0"?>\n<Inventory><Item/></Inventory>\n'
    with trio.fail_after(30):
        async with running(store, xml, text, table) as (pipeline, watched):
            (xml.watch / "stock.xml").write_bytes(junk)
            [outcome] = await watched.wait(1, "the unclaimed file")
            assert isinstance(outcome, FileRejected)
            # It goes to the first candidate entry's error folder and counters.
            assert outcome.folder == "xml"
            assert outcome.reason.startswith("no converter takes this file")
            assert pipeline.statistics().folders["xml"].files_failed == 1
            assert pipeline.statistics().folders["text"].files_failed == 0
    assert names(xml.watch) == []
    assert names(xml.error_dir) == ["stock.xml", "stock.xml.error.txt"]
    assert (xml.error_dir / "stock.xml").read_bytes() == junk  # unchanged
    text_of = (xml.error_dir / "stock.xml.error.txt").read_text()
    fields = sidecar(xml.error_dir / "stock.xml.error.txt")
    assert fields["folder"].startswith("xml, text (watching ")  # table does not take .xml
    assert fields["converter"] == "none of them takes it (wsxf 1.0, wstf 1.0)"
    assert fields["reason"] == (
        "no converter takes this file: xml (wsxf) matches 'stock.xml' by pattern (and the "
        "catch-all of text (wstf)), and none of xml (wsxf), text (wstf) recognises its content"
    )
    # Every candidate, with its pattern and its sniff's answer.
    assert "  xml (wsxf)   pattern '*.xml' matches; sniff: no" in text_of
    assert "  text (wstf)  catch-all pattern '*' matches; sniff: no" in text_of
    assert "pywats convert --explain FILE" in text_of
    assert await queued(store) == []


async def test_an_unambiguous_extension_is_decided_by_name_and_one_taker_unread(
    tmp_path: Path, store: Store
) -> None:
    # A JSON entry and a catch-all on one folder: .json goes to the JSON entry by its
    # pattern, though WSTF's catch-all takes the name too (and would refuse the file).
    inbox = tmp_path / "inbox"
    json_entry = make_folder(tmp_path, "json", watch=inbox, converter=WsjfConverter())
    text = make_folder(tmp_path, "text", watch=inbox, converter=WstfConverter(), patterns="*")
    assert route_by_name([json_entry, text], "r.json") is not None
    assert route_by_name([text], "anything") is not None
    assert route_by_name([json_entry, text], "r.txt") is None  # ambiguous: read the head
    doc = json.loads((DATA / "uut-wsjf-export.json").read_text())
    with trio.fail_after(30):
        async with running(store, json_entry, text) as (_, watched):
            (inbox / "r.json").write_text(json.dumps(doc))
            (inbox / "r.log").write_text(WSTF.format(sn="SN-LOG"))
            outcomes = await watched.wait(2, "both files")
            assert {Path(o.source).name: o.folder for o in outcomes} == {
                "r.json": "json",
                "r.log": "text",
            }
    assert names(json_entry.done_dir) == ["r.json"]
    assert names(text.done_dir) == ["r.log"]


def test_routing_never_raises_and_names_the_entries(tmp_path: Path) -> None:
    xml, text, table = shared(tmp_path)
    for head in (b"", b"\xff\xfe<\x00", b"<" * 70_000, bytes(range(256)) * 300):
        route = route_by_content([xml, text, table], "x.txt", head)
        # csv is the fallback for what nobody claims, whatever the bytes.
        assert route.index == 2
    route = route_by_content([xml, text], "x.xml", b"<Reports/>")
    assert route.index is None
    assert route.reason.startswith("no converter takes this file")


# --- The real equipment files, all in one shared folder ------------------------------------

# Each folder of tests/data/equipment holds files of the converter named like it.
_SKIP = {"README.md"}


def _real_files() -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    if not EQUIPMENT.is_dir():
        return out
    for folder in sorted(p for p in EQUIPMENT.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name not in _SKIP:
                out.append((folder.name, path))
    return out


async def test_real_files_in_one_folder_shared_by_every_converter(
    tmp_path: Path, store: Store
) -> None:
    """Every converter that has test data watches the same inbox with its own patterns;
    each real file must be taken by its own converter's entry."""
    available = discover()
    real = [(fmt, path) for fmt, path in _real_files() if fmt in available]
    formats = sorted({fmt for fmt, _ in real})
    if len(formats) < 2:
        pytest.skip(f"fewer than two equipment converters with data yet ({formats})")
    inbox = tmp_path / "inbox"
    entries = [
        make_folder(
            tmp_path,
            fmt,
            watch=inbox,
            converter=available[fmt](),
            # csv's entry for tester exports named .txt says so (its fallback names).
            patterns=(*available[fmt].patterns, *getattr(available[fmt], "fallback_patterns", ())),
        )
        for fmt in formats
    ]
    # Files a folder would not take by name (no entry's pattern) are left out: the
    # watcher would not send them.
    wanted = [
        (fmt, path) for fmt, path in real if any(e.watch_config().wants(path.name) for e in entries)
    ]
    with trio.fail_after(60):
        async with running(store, *entries) as (_, watched):
            for _, path in wanted:
                folder = path.with_suffix("")
                if folder.is_dir():  # Klippel: the result folder first, then its header
                    shutil.copytree(folder, inbox / folder.name)
                shutil.copyfile(path, inbox / path.name)
            # A file may be left first (Klippel's header waits for its folder to settle)
            # and taken later: wait for an outcome that is not "left" for every file.
            count = len(wanted)
            while True:
                outcomes = await watched.wait(count, "every real file")
                taken = {
                    Path(o.source).name: o.folder
                    for o in outcomes
                    if not (isinstance(o, FileProcessed) and o.outcome == FileOutcome.LEFT)
                }
                if len(taken) == len(wanted):
                    break
                count = len(outcomes) + 1
    assert taken == {path.name: fmt for fmt, path in wanted}
