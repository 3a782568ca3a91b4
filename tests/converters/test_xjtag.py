"""The ``xjtag`` converter: XJTAG ``.xjlog`` archives (equipment-formats.md 6)."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.converters import Source, StationDefaults, load_converter, xjtag
from pywats.converters.spea import SpeaConverter
from pywats.converters.xjtag import XjtagConverter
from pywats.errors import ConfigError, ConversionError
from pywats.report import Report, Result, Status, Step, StepKind, wsjf

STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")
DATA = Path(__file__).parents[1] / "data" / "equipment"
SINGLE = DATA / "xjtag" / "1234_14_25_32_10.08.2018_Pass.xjlog"
DEMO = DATA / "xjtag" / "Demonstration hardware--28_10_2019.xjlog"

FUZZ = settings(
    max_examples=int(os.environ.get("PYWATS_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def convert(data: bytes, **arguments: Any) -> list[Report]:
    loaded = load_converter("xjtag", arguments)
    return loaded.convert(Source(Path("log.xjlog"), data), STATION)


def error(data: bytes, **arguments: Any) -> str:
    with pytest.raises(ConversionError) as info:
        convert(data, **arguments)
    message = str(info.value)
    assert message.startswith("converter 'xjtag': ")
    assert "crashed" not in message
    assert "\n" not in message
    return message


@cache
def real(path: Path) -> tuple[Report, ...]:
    return tuple(convert(path.read_bytes()))


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def archive(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as out:
        for name, content in files.items():
            out.writestr(name, content)
    return buffer.getvalue()


def info(count: int, path: str = r"C:\XJTAG\Board\board.xjp") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\r\n<LogFileInfo><Version>1</Version>'
        f"<TestRunCount>{count}</TestRunCount><ProjectPath>{path}</ProjectPath>"
        "<ExportedFromOutput>false</ExportedFromOutput></LogFileInfo>"
    ).encode()


def run(
    body: str = "",
    *,
    serial: str = "SN-1",
    result: str = "Passed",
    stamp: str = "2020-06-17T13:29:24.2586780Z",
    extra: str = "",
) -> bytes:
    """A ``Run N.xml`` in the newer XJTAG layout (pretty-printed CDATA, time-taken)."""
    return (
        '\ufeff<?xml version="1.0" encoding="utf-8"?>\n'
        f'<testrun datetime="{stamp}">\n{body}'
        "  <testruninfo>\n"
        "    <project-description>Board X</project-description>\n"
        "    <user>ola</user>\n"
        f"    <serial>{serial}</serial>\n"
        "    <xjlink-serial>10199</xjlink-serial>\n"
        "    <xjlink-name />\n"
        f"    <result>{result}</result>\n"
        f"{extra}"
        "  </testruninfo>\n</testrun>\n"
    ).encode()


FUNCTION = """  <testgroup name="Flash Tests">
    <testfunction name="IC3.Test">
      <text-output output-type="UserText">
        <![CDATA[Testing Flash Device ]]>
      </text-output>
      <html-output lines="0" inline="True"><![CDATA[<a href="c:X,IC3">IC3</a>]]></html-output>
      <text-output output-type="UserText">
        <![CDATA[...
Verified &amp; OK.
]]>
      </text-output>
      <text-output output-type="Pass">
        <![CDATA[IC3.Test passed
]]>
      </text-output>
      <result value="Passed" />
      <time-taken>406</time-taken>
    </testfunction>
    <testfunction name="IC3.Skip">
      <result value="Skipped" />
      <time-taken>0</time-taken>
    </testfunction>
  </testgroup>
"""


def one(body: str = FUNCTION, **kw: str) -> Report:
    (report,) = convert(archive({"Info.xml": info(1), "Run 1.xml": run(body, **kw)}))
    return report


def by_name(report: Report, name: str) -> Step:
    (found,) = [s for s in report.steps() if s.name == name]
    return found


# --- The real files --------------------------------------------------------------------------


def test_single_run_file() -> None:
    (report,) = real(SINGLE)
    assert (report.sn, report.pn, report.rev, report.process_code) == (
        "1234",
        "Demonstration hardware",  # project-description
        "1.0",
        10,
    )
    assert report.result is Result.PASSED
    # UTC with 7 fractional digits, kept in UTC (milliseconds on the wire).
    assert report.start == "2018-08-10T12:25:32.996+00:00"
    assert report.start_utc == "2018-08-10T12:25:32.996Z"
    assert report.uut is not None
    assert (report.uut.user, report.uut.comment, report.uut.exec_time) == (
        "ADMINISTRATOR",
        "Demonstration hardware",
        None,  # this XJTAG (3.7) writes no time-taken
    )
    # xjlink-name is empty here: no misc info for it.
    assert [(m.description, m.text) for m in report.misc_infos or []] == [
        ("XJLink serial", "12164")
    ]
    assert report.root is not None
    assert report.root.name == "demo.xjp"
    assert report.root.seq_call is not None
    assert report.root.seq_call.path == (
        r"C:\Users\Public\Documents\XJTAG 3.7\Demo Board v3\Board Test\demo.xjp"
    )
    assert report.root.status is Status.PASSED
    groups = [(g.name, [f.name for f in g.steps or []]) for g in report.root.steps or []]
    assert groups == [
        ("Enter Serial Number", ["NEW_SERIAL_NUMBER"]),
        ("Check Chain", ["CheckChain"]),
        ("Connection Test", ["CONNTEST"]),
        ("SRAM Test", ["IC5.Test"]),
        ("Flash Tests", ["ProgrammedFlashCheck", "IC3.TestNonDestructive"]),
        ("I2C PROM Tests", ["IC7.Test", "EEPROM_PIO_Test"]),
        ("Crystal Oscillator Test", ["Y1.TestOscillator", "Y1FrequencyTest"]),
        ("ADC and Voltage Tests", ["IC6.IIC_CheckPresent", "ADC_Test"]),
        ("Push Button Test", ["SW1.Test"]),
        ("LED Tests", ["D1.Test", "D2.Test", "D3.Test", "D4.Test"]),
        ("Program Flash", ["VerifyIC3"]),
        ("Program CPLD", ["RunStaplFile"]),
    ]
    for group in report.root.steps or []:
        assert (group.step_type, group.kind, group.status) == (
            "SequenceCall",
            StepKind.SEQUENCE_CALL,
            Status.PASSED,
        )
        for function in group.steps or []:
            assert (function.step_type, function.kind) == ("ET_PFT", StepKind.PASS_FAIL)
            assert [(b.name, b.status) for b in function.boolean_meas or []] == [
                (None, Status.PASSED)
            ]
    ids = [s.id for s in report.steps()]
    assert ids == list(range(1, len(ids) + 1))


def test_single_run_report_text() -> None:
    (report,) = real(SINGLE)
    # Text output with the inline HTML's component names put back in.
    assert by_name(report, "IC5.Test").report_text == (
        "Testing SRAM Device IC5...\nCalling MemTest...\n"
        "Starting Optimised Address Bus & Data Bus Test..\nOptimised Addr & Data test Passed\n"
        "Moving on to Chip Enable test...\nTesting nOE...\nIC5.Test passed"
    )
    assert by_name(report, "NEW_SERIAL_NUMBER").report_text == (
        "Checking voltage on CN1 pin 1 using XJLink2 voltage measurement.\n"
        "Voltage read: 3264 mV - within tolerance.\nNEW_SERIAL_NUMBER passed\n"
        "Serial number set to 1234 by the test system"
    )
    # What the run printed outside a test function goes on the root.
    assert report.root is not None
    assert report.root.report_text == (
        "IC3.TestDestructive skipped\nEraseIC3 skipped\nProgramIC3 skipped\n"
        "VerifyIC3 (Post programming) skipped"
    )


def test_demonstration_file_holds_six_units() -> None:
    reports = real(DEMO)
    assert [r.sn for r in reports] == ["10001", "1002", "10004", "10003", "10006", "10005"]
    assert [r.result for r in reports] == [
        Result.FAILED,
        Result.PASSED,
        Result.FAILED,
        Result.FAILED,
        Result.FAILED,
        Result.PASSED,
    ]
    assert [r.start for r in reports] == [
        "2019-10-28T13:52:10.859+00:00",
        "2019-10-28T13:52:10.861+00:00",
        "2019-10-28T13:52:58.897+00:00",
        "2019-10-28T13:52:58.898+00:00",
        "2019-10-28T13:53:53.842+00:00",
        "2019-10-28T13:53:53.842+00:00",
    ]
    assert [[(m.description, m.text) for m in r.misc_infos or []] for r in reports[:2]] == [
        [("XJLink name", "OriginalXJLink"), ("XJLink serial", "2179")],
        [("XJLink name", "XJLink2"), ("XJLink serial", "10011")],
    ]
    assert {r.uut.user for r in reports if r.uut} == {"a"}
    failed = [
        [s.name for s in r.steps() if s.status is Status.FAILED and s.kind is StepKind.PASS_FAIL]
        for r in reports
    ]
    assert failed == [
        ["CheckChain"],
        [],
        ["CONNTEST", "D2.Test"],
        ["D4.Test"],
        ["CONNTEST"],
        [],
    ]
    # Run 1 stopped after the chain check: two groups, the second failed.
    first = reports[0]
    assert first.root is not None
    assert [(g.name, g.status) for g in first.root.steps or []] == [
        ("Serial Number", Status.PASSED),
        ("Check Chain", Status.FAILED),
    ]
    assert first.root.status is Status.FAILED


def test_demonstration_file_error_text() -> None:
    reports = real(DEMO)
    text = by_name(reports[0], "CheckChain").report_text or ""
    assert text.startswith("Checking the integrity of the JTAG chain.\nCHECKCHAIN: Failed to count")
    assert text.endswith("globals.xje(65): Exited\nCheckChain failed")
    # The connection-test fault is in block HTML: its error heading is kept as text.
    conntest = by_name(reports[2], "CONNTEST").report_text or ""
    assert "Error: Short found between nets: IO13, IO14." in conntest
    assert conntest.endswith("CONNTEST failed")
    assert "<" not in conntest


def test_real_files_round_trip_and_validate() -> None:
    for report in real(SINGLE) + real(DEMO):
        assert wsjf.loads(wsjf.dumps(report)) == report


def _without_ids(reports: list[Report] | tuple[Report, ...]) -> list[bytes]:
    return [wsjf.dumps(r).replace(r.id.encode(), b"ID") for r in reports]


def test_crlf_in_the_xml_changes_nothing() -> None:
    files = members(DEMO)
    crlf = {
        n: c.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") if n.endswith(".xml") else c
        for n, c in files.items()
    }
    lf = {n: c.replace(b"\r\n", b"\n") if n.endswith(".xml") else c for n, c in files.items()}
    assert _without_ids(convert(archive(crlf))) == _without_ids(real(DEMO))
    assert _without_ids(convert(archive(lf))) == _without_ids(real(DEMO))
    # Stored instead of deflated: the same.
    assert _without_ids(convert(archive(files, zipfile.ZIP_STORED))) == _without_ids(real(DEMO))


# --- The newer layout and the mapping --------------------------------------------------------


def test_newer_layout_times_versions_and_pretty_printed_cdata() -> None:
    extra = "    <time-taken>47960</time-taken>\n    <xjtag-version>3.10.0.0</xjtag-version>\n"
    report = one(extra=extra)
    assert report.start == "2020-06-17T13:29:24.258+00:00"
    assert report.uut is not None
    assert report.uut.exec_time == 47.96
    assert [(m.description, m.text) for m in report.misc_infos or []] == [
        ("XJTAG version", "3.10.0.0"),
        ("XJLink serial", "10199"),
    ]
    function = by_name(report, "IC3.Test")
    assert function.tot_time == 0.406
    # The layout whitespace around the CDATA is not output; the CDATA is taken as is.
    assert (
        function.report_text == "Testing Flash Device IC3...\nVerified &amp; OK.\nIC3.Test passed"
    )
    skipped = by_name(report, "IC3.Skip")
    assert (skipped.status, skipped.report_text) == (Status.SKIPPED, None)
    assert [b.status for b in skipped.boolean_meas or []] == [Status.SKIPPED]
    group = by_name(report, "Flash Tests")
    assert (group.status, group.tot_time) == (Status.PASSED, 0.406)


def test_the_verdict_is_the_runs_result_never_the_steps() -> None:
    failing = FUNCTION.replace('<result value="Passed" />', '<result value="Failed" />')
    report = one(failing, result="Passed")
    assert by_name(report, "IC3.Test").status is Status.FAILED
    assert by_name(report, "Flash Tests").status is Status.FAILED
    assert report.result is Result.PASSED
    assert report.root is not None
    assert report.root.status is Status.PASSED  # the root carries the unit's verdict
    assert one(result="Failed").result is Result.FAILED
    assert one(result="Terminated").result is Result.TERMINATED


def test_datetime_offsets_and_naive_times() -> None:
    assert one(stamp="2020-06-17T15:29:24.1234567+02:00").start == "2020-06-17T15:29:24.123+02:00"
    assert one(stamp="2020-06-17T15:29:24+02:00").start_utc == "2020-06-17T13:29:24.000Z"
    from datetime import datetime

    naive = datetime(2020, 6, 17, 15, 29, 24).astimezone()
    assert one(stamp="2020-06-17T15:29:24.5").start == naive.replace(microsecond=500000).isoformat(
        timespec="milliseconds"
    )


def test_part_number_revision_and_process_arguments() -> None:
    data = archive({"Info.xml": info(1), "Run 1.xml": run(FUNCTION)})
    (report,) = convert(
        data, partNumber="PCBA-7", revision="C", operationTypeCode=210, sequenceVersion="2.0"
    )
    assert (report.pn, report.rev, report.process_code) == ("PCBA-7", "C", 210)
    assert report.root is not None
    assert report.root.seq_call is not None
    assert (report.root.name, report.root.seq_call.version) == ("board.xjp", "2.0")


def test_report_text_is_bounded_keeping_head_and_tail() -> None:
    long = "".join(f"line {i}\n" for i in range(5000))
    body = (
        '<testgroup name="G"><testfunction name="F">'
        f'<text-output output-type="UserText"><![CDATA[{long}]]></text-output>'
        '<text-output output-type="Error"><![CDATA[F failed]]></text-output>'
        '<result value="Failed" /></testfunction></testgroup>'
    )
    text = by_name(one(body), "F").report_text or ""
    assert len(text) <= xjtag.MAX_REPORT_TEXT
    assert text.startswith("line 0\nline 1\n")
    assert text.endswith("line 4999\nF failed")
    assert "characters in all; the middle is cut" in text


def test_long_misc_values_are_cut_to_the_server_limit() -> None:
    report = one(extra=f"    <xjtag-version>{'9' * 150}</xjtag-version>\n")
    assert len((report.misc_infos or [])[0].text or "") == 100


def test_hostile_html_stays_linear() -> None:
    # Unclosed error headings and tags by the ten thousand: no quadratic search.
    hostile = '<h2 class="ct_error">x<a' * 40_000
    body = (
        '<testgroup name="G"><testfunction name="F">'
        f'<html-output inline="False"><![CDATA[{hostile}]]></html-output>'
        f'<html-output inline="True"><![CDATA[{hostile}]]></html-output>'
        '<result value="Failed" /></testfunction></testgroup>'
    )
    text = by_name(one(body), "F").report_text or ""
    assert len(text) <= xjtag.MAX_REPORT_TEXT


def test_latin1_declared_run_is_decoded_by_its_declaration() -> None:
    body = (
        '<testgroup name="Prüfung"><testfunction name="Gerät ±1 °C">'
        '<result value="Passed"/></testfunction></testgroup>'
    )
    data = (
        '<?xml version="1.0" encoding="iso-8859-1"?>\n'
        '<testrun datetime="2020-06-17T13:29:24Z">'
        f"{body}<testruninfo><project-description>Bänk</project-description>"
        "<serial>Ø-1</serial><result>Passed</result></testruninfo></testrun>"
    ).encode("latin-1")
    (report,) = convert(archive({"Run 1.xml": data}))
    assert (report.sn, report.pn) == ("Ø-1", "Bänk")
    assert by_name(report, "Gerät ±1 °C").status is Status.PASSED
    assert by_name(report, "Prüfung").kind is StepKind.SEQUENCE_CALL


def test_odd_characters_in_names_change_nothing() -> None:
    body = (
        '<testgroup name="  a &amp; b &lt;c&gt; &quot;q&quot; \\ ">'
        "<testfunction name='IC3.Test [x]'><result value='Passed'/></testfunction></testgroup>"
    )
    report = one(body)
    assert report.root is not None
    (group,) = report.root.steps or []
    assert group.name == 'a & b <c> "q" \\'
    assert [s.name for s in group.steps or []] == ["IC3.Test [x]"]
    assert wsjf.loads(wsjf.dumps(report)) == report


def test_nested_groups_and_loose_functions() -> None:
    body = (
        '<testfunction name="Top"><result value="Passed"/></testfunction>'
        '<testgroup name="Outer"><testgroup name="Inner">'
        '<testfunction name="Deep"><result value="Failed"/></testfunction>'
        "</testgroup></testgroup>"
    )
    report = one(body, result="Failed")
    assert report.root is not None
    assert [s.name for s in report.root.steps or []] == ["Top", "Outer"]
    assert by_name(report, "Outer").status is Status.FAILED
    assert by_name(report, "Inner").status is Status.FAILED


# --- Run counts --------------------------------------------------------------------------------


def test_a_run_info_announces_but_the_archive_lacks_is_refused() -> None:
    files = members(DEMO)
    del files["Run 6.xml"]
    message = error(archive(files))
    assert "Info.xml says TestRunCount 6, but Run 6.xml is not in the archive" in message
    assert "allowMissingRuns" in message
    reports = convert(archive(files), allowMissingRuns=True)
    assert [r.sn for r in reports] == ["10001", "1002", "10004", "10003", "10006"]


def test_more_runs_than_info_says_are_all_converted() -> None:
    files = members(DEMO)
    files["Info.xml"] = info(2)
    assert len(convert(archive(files))) == 6


def test_no_info_xml_converts_the_runs_found_in_number_order() -> None:
    files = {"Run 10.xml": run(serial="B"), "Run 2.xml": run(serial="A")}
    reports = convert(archive(files))
    assert [r.sn for r in reports] == ["A", "B"]
    assert reports[0].root is not None
    assert reports[0].root.name == "XJTAG"


# --- Bad archives and bad runs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../Run 1.xml", "/etc/Run 1.xml", "\\Run 1.xml", "C:\\Run 1.xml", "logs/../../x", "a\\..\\b"],
)
def test_unsafe_member_names_refuse_the_file(name: str) -> None:
    data = archive({"Info.xml": info(1), "Run 1.xml": run(), name: b"x"})
    message = error(data)
    assert "archive member" in message
    assert "refused" in message


def test_too_many_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xjtag, "MAX_MEMBERS", 3)
    files = {"Info.xml": info(1), "Run 1.xml": run(), "a": b"", "b": b""}
    assert "the archive has 4 members, more than 3" in error(archive(files))


def test_declared_size_over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xjtag, "MAX_UNCOMPRESSED_BYTES", 10_000)
    files = {"Info.xml": info(1), "Run 1.xml": run(), "blob": b"\0" * 20_000}
    assert "would inflate to" in error(archive(files))


def test_a_member_inflating_past_the_budget_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    # The declared sizes pass the header check (patched below), the bytes do not.
    data = bytearray(archive({"Run 1.xml": run(FUNCTION * 50)}))
    real_size = len(run(FUNCTION * 50))
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 1000)  # central directory: uncompressed size
    struct.pack_into("<I", data, 22, 1000)  # local header: uncompressed size
    assert real_size > 1000
    message = error(bytes(data))
    assert "archive member 'Run 1.xml'" in message
    assert "damaged" in message or "inflates beyond" in message


def test_inflate_stops_at_the_limit() -> None:
    assert xjtag._inflate(io.BytesIO(b"x" * 100), 99) is None
    assert xjtag._inflate(io.BytesIO(b"x" * 100), 100) == b"x" * 100


def test_encrypted_member_is_refused() -> None:
    data = bytearray(archive({"Run 1.xml": run()}))
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1  # general purpose flag: encrypted
    data[6] |= 0x1
    assert "archive member 'Run 1.xml' is encrypted" in error(bytes(data))


def test_duplicate_members_are_refused() -> None:
    data = archive({"Run 1.xml": run(), "run 1.xml": run()})
    assert "is there twice" in error(data)
    data = archive({"Run 1.xml": run(), "Run 01.xml": run()})
    assert "clash" in error(data)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "the archive holds no 'Run N.xml' member"),
        ({"Info.xml": info(1)}, "the archive holds no 'Run N.xml' member"),
        ({"Run 1.xml": b"<testrun"}, "Run 1.xml: not valid XML: unclosed token at line 1"),
        ({"Run 1.xml": b"<other/>"}, "Run 1.xml: the root element is <other>, expected <testrun>"),
        ({"Run 1.xml": b"<testrun/>"}, "Run 1.xml: testrun: no datetime attribute"),
        (
            {"Run 1.xml": b'<testrun datetime="yesterday"/>'},
            "Run 1.xml: testrun@datetime: 'yesterday' is not an ISO 8601 date-time",
        ),
        (
            {"Run 1.xml": b'<testrun datetime="2020-02-30T00:00:00Z"/>'},
            "'2020-02-30T00:00:00Z' is not a date-time: day is out of range",
        ),
        (
            {"Run 1.xml": b'<testrun datetime="2020-01-01T00:00:00+25:00"/>'},
            "has an impossible UTC offset",
        ),
        ({"Run 1.xml": b'<testrun datetime="2020-01-01T00:00:00Z"/>'}, "no <testruninfo>"),
        ({"Run 1.xml": run(serial="")}, "testrun/testruninfo/serial is empty"),
        ({"Run 1.xml": run(result="Maybe")}, "testruninfo/result: 'Maybe' is not a unit result"),
        (
            {"Run 1.xml": run('<testfunction name="F"></testfunction>')},
            "Run 1.xml: testrun/testfunction[1]: no <result> element",
        ),
        (
            {
                "Run 1.xml": run(
                    '<testgroup name="G"/><testgroup name="G"><testfunction name="F">'
                    '<result value="Meh"/></testfunction></testgroup>'
                )
            },
            "testrun/testgroup[2]/testfunction[1]/result: 'Meh' is not a result",
        ),
        (
            {"Run 1.xml": run(extra="<time-taken>-5</time-taken>")},
            "testruninfo/time-taken: '-5' is negative",
        ),
        ({"Info.xml": b"<Other/>", "Run 1.xml": run()}, "Info.xml: the root element is <Other>"),
        (
            {"Info.xml": info(1).replace(b">1<", b">one<"), "Run 1.xml": run()},
            "Info.xml: LogFileInfo/TestRunCount: 'one' is not an integer",
        ),
        (
            {"Run 1.xml": run().replace(b"SN-1", b"\xff")},
            "Run 1.xml: line 6: the file is not valid utf-8-sig text (byte 193: invalid start",
        ),
        (
            {"Run 1.xml": run()[3:].replace(b'encoding="utf-8"', b'encoding="rot13"')},
            "Run 1.xml: 'rot13' is not a text encoding",
        ),
    ],
)
def test_bad_runs_give_one_clear_line(files: dict[str, bytes], expected: str) -> None:
    assert expected in error(archive(files))


def test_dtd_and_entities_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><testrun datetime="2020-01-01T00:00:00Z">'
        b"<testruninfo><serial>&lol2;</serial><result>Passed</result></testruninfo></testrun>"
    )
    assert "XML with a DTD/entity declarations is not accepted" in error(
        archive({"Run 1.xml": bomb})
    )


def test_deep_nesting_is_refused() -> None:
    deep = "<testgroup name='g'>" * 100 + "</testgroup>" * 100
    message = error(archive({"Run 1.xml": run(deep)}))
    assert "test groups are nested deeper than 64" in message
    assert "Run 1.xml: testrun/testgroup[1]/testgroup[1]" in message
    # Deep elements that are not test groups are only data: read without recursion.
    deep = "<x>" * 5000 + "</x>" * 5000
    assert one(FUNCTION + deep).result is Result.PASSED


def test_not_a_zip() -> None:
    assert "not a readable ZIP archive" in error(b"hello")
    assert "not a readable ZIP archive" in error(SINGLE.read_bytes()[:4000])


def test_bad_arguments_are_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"arguments.sequenceVersion: must be 1 to 30"):
        load_converter("xjtag", {"sequenceVersion": "x" * 31})
    with pytest.raises(ConfigError, match=r"arguments.partNumber: must be 1 to 100"):
        load_converter("xjtag", {"partNumber": ""})


# --- Sniffing --------------------------------------------------------------------------------


def test_sniff_claims_the_real_files_and_no_other_equipment_file() -> None:
    for path in sorted(DATA.rglob("*")):
        if not path.is_file() or path.name == "README.md":
            continue
        head = path.read_bytes()[:65536]
        reason = XjtagConverter.sniff(head, path.name)
        if path.parent.name == "xjtag":
            assert reason == "ZIP archive with an XJTAG member 'Run 1.xml'"
            assert SpeaConverter.sniff(head, path.name) is None
        else:
            assert reason is None, path


def test_sniff_needs_a_zip_naming_an_xjtag_member() -> None:
    assert XjtagConverter.sniff(archive({"Info.xml": info(1)})[:100], "x") == (
        "ZIP archive with an XJTAG member 'Info.xml'"
    )
    assert XjtagConverter.sniff(archive({"data.xml": b"x", "Run 2.xml": b"y"}), "x") == (
        "ZIP archive with an XJTAG member 'Run 2.xml'"
    )
    assert XjtagConverter.sniff(archive({"data.xml": b"<testrun/>"}), "x.xjlog") is None
    assert XjtagConverter.sniff(b"Run 1.xml Info.xml", "x.xjlog") is None
    assert XjtagConverter.sniff(b"PK\x03\x04", "x.xjlog") is None


@FUZZ
@given(st.binary(max_size=2000))
def test_sniff_never_raises(head: bytes) -> None:
    XjtagConverter.sniff(head, "x")
    XjtagConverter.sniff(b"PK\x03\x04" + head, "x")


# --- Fuzzing: only ConversionError comes out -----------------------------------------------


def check(data: bytes, **arguments: Any) -> None:
    """The converter returns valid reports or raises its own clear ConversionError."""
    failure: ConversionError | None = None
    try:
        reports = convert(data, **arguments)
    except ConversionError as exc:
        failure, reports = exc, []
    if failure is not None:
        assert failure.converter == "xjtag"
        assert "crashed" not in str(failure), str(failure)
        assert "\n" not in str(failure)
    for report in reports:
        assert wsjf.loads(wsjf.dumps(report)) == report


@FUZZ
@given(st.binary(max_size=500))
def test_fuzz_random_bytes(data: bytes) -> None:
    check(data)
    check(b"PK\x03\x04" + data)


@FUZZ
@given(st.sampled_from([SINGLE, DEMO]), st.floats(0, 1))
def test_fuzz_truncated_real_files(path: Path, where: float) -> None:
    data = path.read_bytes()
    check(data[: int(len(data) * where)])


@FUZZ
@given(
    st.sampled_from([SINGLE, DEMO]),
    st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_fuzz_byte_flips_in_real_files(path: Path, flips: list[tuple[int, int]]) -> None:
    data = bytearray(path.read_bytes())
    for at, value in flips:
        data[at % len(data)] = value
    check(bytes(data), allowMissingRuns=True)


_NAMES = st.sampled_from(
    ["Info.xml", "Run 1.xml", "Run 2.xml", "Run 0.xml", "x", "../x", "/x", "Run 1.checksum"]
)


@FUZZ
@given(
    st.dictionaries(
        # zipfile cannot write a NUL (it cuts the name there) or a lone surrogate.
        _NAMES
        | st.text(
            st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]),
            min_size=1,
            max_size=10,
        ),
        st.binary(max_size=200),
        max_size=4,
    ),
    st.booleans(),
)
def test_fuzz_random_archives(files: dict[str, bytes], stored: bool) -> None:
    check(archive(files, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED))


@FUZZ
@given(st.data())
def test_fuzz_mutated_run_xml(data: st.DataObject) -> None:
    text = members(DEMO)["Run 3.xml"].decode("utf-8-sig")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 40))
        insert = data.draw(
            st.sampled_from(
                ["<", ">", "&", "]]>", "<testgroup>", "</testfunction>", '"', "Failed", ""]
            )
            | st.text(max_size=6)
        )
        text = text[:at] + insert + text[at + cut :]
    check(archive({"Run 1.xml": text.encode("utf-8", "surrogatepass")}))
