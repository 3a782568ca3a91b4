"""The ``wstf`` converter: WATS Standard Text Format (wats-format.md 5.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pywats.converters import ConversionContext, Source, StationDefaults, run_converter
from pywats.converters.wstf import _PASSES, WstfArguments, WstfConverter
from pywats.errors import ConversionError
from pywats.report import CompOp, Report, Result, Status, StepKind, wsjf

STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")
COLUMNS = (
    "StepType\tStepName\tMeasureName\tValue\tLowLimit\tHighLimit\tCompOperator\tUnit\tStatus"
    "\tExecutionTime\tReportText\tErrorCode\tErrorMessage"
)


def row(*cells: str) -> str:
    return "\t".join(cells)


def uut(*steps: str, header: str = "", footer: str = "", sn: str = "SN-1") -> str:
    head = f"SerialNumber\t{sn}\nPartNumber\tPCBA-100\nRevision\tA\n{header}"
    body = "".join(s + "\n" for s in steps)
    return (
        f"--Header-Start--\n{head}--Step-Data-Start--\n{COLUMNS}\n{body}"
        f"--Step-Data-End--\n{footer}--UUT-End--\n"
    )


def convert(text: str, arguments: WstfArguments | None = None, **kw: bytes) -> list[Report]:
    context = ConversionContext(STATION, arguments or WstfArguments())
    data = kw.get("data", text.encode())
    return run_converter(WstfConverter(), Source(Path("r.txt"), data), context)


def one(text: str, arguments: WstfArguments | None = None) -> Report:
    (report,) = convert(text, arguments)
    return report


def error(text: str | bytes, arguments: WstfArguments | None = None) -> str:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(ConversionError) as info:
        convert("", arguments, data=data)
    message = str(info.value)
    assert "converter 'wstf'" in message
    assert "crashed" not in message
    return message


def test_single_uut_header_and_defaults() -> None:
    text = uut(
        row("NumericLimitTest", "VCC", "", "5.02", "4.9", "5.1", "GELE", "V"),
        header=(
            "OperatorName\tola\nStartDateTime\t2026-02-01T09:15:00+01:00\n"
            "StationName\tICT-3\nBatchSerialNumber\tB-7\nComment\thello\nFixtureId\tFX\n"
            "TestSocketIndex\t2\nFirmware\t1.2.3\nSubunit\tPSU\tPSU-1\tP-77\tB\n"
            "OperationTypeCode\t30\n"
        ),
        footer="ExecutionTime\t12.5\nErrorCode\t0\n",
    )
    report = one(text)
    assert (report.pn, report.sn, report.rev) == ("PCBA-100", "SN-1", "A")
    assert report.process_code == 30
    assert report.machine_name == "ICT-3"
    assert (report.location, report.purpose) == ("Line 1", "Production")  # station defaults
    assert report.start == "2026-02-01T09:15:00.000+01:00"
    assert report.start_utc == "2026-02-01T08:15:00.000Z"
    assert report.uut is not None
    assert (report.uut.user, report.uut.batch_sn, report.uut.exec_time) == ("ola", "B-7", 12.5)
    assert (report.uut.comment, report.uut.fixture_id, report.uut.test_socket_index) == (
        "hello",
        "FX",
        2,
    )
    assert report.uut.error_code == 0
    assert [(m.description, m.text) for m in report.misc_infos or []] == [("Firmware", "1.2.3")]
    (unit,) = report.sub_units or []
    assert (unit.part_type, unit.pn, unit.sn, unit.rev) == ("PSU", "PSU-1", "P-77", "B")
    assert report.result is Result.PASSED
    # a valid WSJF document, byte for byte re-readable
    assert wsjf.loads(wsjf.dumps(report)) == report


def test_arguments_fill_what_the_header_lacks() -> None:
    args = WstfArguments(
        operationTypeCode=40, sequenceName="Main", sequenceVersion="2.1", operator="op7"
    )
    report = one(uut(row("ActionStep", "Beep")), args)
    assert report.process_code == 40
    assert report.uut is not None
    assert report.uut.user == "op7"
    assert report.root is not None
    assert report.root.name == "Main"
    assert report.root.seq_call is not None
    assert (report.root.seq_call.name, report.root.seq_call.version) == ("Main", "2.1")
    assert report.machine_name == "ST-1"


def test_header_wins_over_arguments() -> None:
    header = "SoftwareName\tBoardTest\nSoftwareVersion\t3.0\nOperatorName\tkari\n"
    report = one(uut(header=header), WstfArguments(sequenceName="X", operator="Y"))
    assert report.root is not None
    assert report.root.name == "BoardTest"
    assert report.uut is not None
    assert report.uut.user == "kari"


def test_each_report_gets_an_id_from_the_file() -> None:
    assert one(uut()).id == one(uut()).id
    assert one(uut()).id != one(uut(sn="SN-2")).id


def test_several_uuts_give_several_reports() -> None:
    text = (
        uut(row("PassFailTest", "A", "", "True"), sn="SN-1")
        + "\n"
        + uut(row("PassFailTest", "A", "", "False"), sn="SN-2")
        + uut(row("PassFailTest", "A", "", "1"), sn="SN-3")
    )
    reports = convert(text)
    assert [r.sn for r in reports] == ["SN-1", "SN-2", "SN-3"]
    assert [r.result for r in reports] == [Result.PASSED, Result.FAILED, Result.PASSED]
    assert len({r.id for r in reports}) == 3


def test_uut_end_may_be_left_out_between_uuts() -> None:
    first = uut(sn="A").replace("--UUT-End--\n", "")
    assert [r.sn for r in convert(first + uut(sn="B"))] == ["A", "B"]


def test_nested_sequences_and_status_roll_up() -> None:
    report = one(
        uut(
            row("SequenceCall", "Power"),
            row("NumericLimitTest", "VCC", "", "5.0", "4.9", "5.1", "GELE", "V"),
            row("SequenceCall", "Rails"),
            row("NumericLimitTest", "3V3", "", "3.5", "3.2", "3.4", "GELE", "V"),
            row("EndSequenceCall"),
            row("EndSequenceCall", "", "", "", "", "", "", "", "", "1.5"),
            row("ActionStep", "Done"),
        )
    )
    assert report.root is not None
    power = (report.root.steps or [])[0]
    assert power.name == "Power"
    assert power.kind is StepKind.SEQUENCE_CALL
    assert power.tot_time == 1.5
    rails = (power.steps or [])[1]
    assert rails.name == "Rails"
    assert rails.status is Status.FAILED
    assert power.status is Status.FAILED
    assert report.root.status is Status.FAILED
    assert report.result is Result.FAILED
    # ids: unique, in tree order
    assert [s.id for s in report.steps()] == [1, 2, 3, 4, 5, 6]
    assert [s.name for s in report.steps()][1:] == ["Power", "VCC", "Rails", "3V3", "Done"]


def test_every_step_type() -> None:
    report = one(
        uut(
            row("NumericLimitTest", "N", "", "1", "0", "2", "GELE", "V"),
            row("MultipleNumericLimitTest", "M", "a", "1", "0", "2", "", "V"),
            row("MultipleNumericLimitTest", "", "b", "5", "", "", "LOG", "A"),
            row("MultipleNumericLimitTest", "M", "c", "3", "", "2", "", ""),
            row("PassFailTest", "PF", "", "Pass"),
            row("StringValueTest", "S", "", "abc", "ABC", "", "IGNORECASE"),
            row("ActionStep", "Act", "", "", "", "", "", "", "", "0.25", "note", "7", "boom"),
            row("Chart", "ignored"),
            row("Series", "ignored"),
        )
    )
    steps = report.steps()[1:]
    assert [s.kind for s in steps] == [
        StepKind.NUMERIC_LIMIT,
        StepKind.MULTI_NUMERIC_LIMIT,
        StepKind.PASS_FAIL,
        StepKind.STRING_VALUE,
        StepKind.ACTION,
    ]
    assert [s.step_type for s in steps] == ["ET_NLT", "ET_MNLT", "ET_PFT", "ET_SVT", "Action"]
    multi = steps[1].numeric_meas or []
    assert [m.name for m in multi] == ["a", "b", "c"]
    assert [m.status for m in multi] == [Status.PASSED, Status.PASSED, Status.FAILED]
    assert multi[2].comp_op is CompOp.LE
    assert steps[1].status is Status.FAILED
    assert steps[3].string_meas is not None
    assert steps[3].string_meas[0].limit == "ABC"
    assert steps[3].status is Status.PASSED
    action = steps[4]
    assert (action.tot_time, action.report_text, action.error_code, action.error_message) == (
        0.25,
        "note",
        7,
        "boom",
    )


@pytest.mark.parametrize(
    ("cells", "status"),
    [
        (("5", "4.9", "5.1", "GELE"), Status.PASSED),
        (("5.2", "4.9", "5.1", "GELE"), Status.FAILED),
        (("5.2", "4.9", "5.1", "GELE", "", "Passed"), Status.PASSED),  # given status wins
        (("5.0", "4.9", "5.1", "GELE", "", "Failed"), Status.FAILED),
        (("5.0", "", "", "", "", "Skipped"), Status.SKIPPED),
        (("", "", "", "", "", "Error"), Status.ERROR),  # no value but a status
        (("5", "", "", "LOG"), Status.PASSED),
        (("5", "6", "", "LT"), Status.PASSED),
        (("5", "", "4", "LT"), Status.FAILED),
    ],
)
def test_numeric_status_given_or_computed(cells: tuple[str, ...], status: Status) -> None:
    report = one(uut(row("NumericLimitTest", "N", "", *cells)))
    step = report.steps()[1]
    assert step.status is status
    assert step.numeric_meas is not None
    assert step.numeric_meas[0].status is status


@pytest.mark.parametrize(
    ("low", "high", "op", "expected"),
    [
        ("4.9", "5.1", "", (CompOp.GELE, 4.9, 5.1)),
        ("4.9", "", "", (CompOp.GE, 4.9, None)),
        ("", "5.1", "", (CompOp.LE, 5.1, None)),  # single limit moves to lowLimit
        ("", "5.1", "LT", (CompOp.LT, 5.1, None)),
        ("5.1", "", "le", (CompOp.LE, 5.1, None)),
        ("5", "", "EQ", (CompOp.EQ, 5.0, None)),
        ("", "", "", (CompOp.LOG, None, None)),
        ("1", "9", "LTGT", (CompOp.LTGT, 1.0, 9.0)),
    ],
)
def test_limits_are_encoded_the_wats_way(
    low: str, high: str, op: str, expected: tuple[CompOp, float | None, float | None]
) -> None:
    report = one(uut(row("NumericLimitTest", "N", "", "5", low, high, op)))
    (meas,) = report.steps()[1].numeric_meas or []
    assert (meas.comp_op, meas.low_limit, meas.high_limit) == expected


@pytest.mark.parametrize("op", [op for op in CompOp if op.is_numeric])
def test_the_converters_comparison_table_agrees_with_comp_op(op: CompOp) -> None:
    # wstf compares numeric rows through its own table (_PASSES), not CompOp.evaluate.
    limits = {0: [(None, None)], 1: [(1.0, None)], 2: [(1.0, 2.0), (2.0, 1.0), (1.0, 1.0)]}
    for low, high in limits[op.limit_count]:
        for value in (-1.0, 0.0, 1.0, 1.5, 2.0, 3.0):
            assert _PASSES[op](value, low, high) is op.evaluate(value, low, high), (value, low)


def test_limit_cells_read_once_give_the_same_steps_and_errors() -> None:
    # The limit cells a file repeats are read once; every row still gets its own verdict,
    # and a row's other cells are still checked.
    rows = [row("NumericLimitTest", f"N{v}", "", v, "4.9", "5.1", "GELE") for v in ("5", "6")]
    two = convert(uut(*rows) + uut(*rows, sn="SN-2"))
    statuses = [[s.status for s in r.steps()[1:]] for r in two]
    assert statuses == [[Status.PASSED, Status.FAILED]] * 2
    bad = row("NumericLimitTest", "N", "", "5", "4.9", "5.1", "GELE", "", "Meh")
    assert "line 8, column Status" in error(uut(rows[0], bad))
    assert "line 8, column Value" in error(uut(rows[0], rows[0].replace("\t5\t", "\tx\t")))
    wrong = row("NumericLimitTest", "N", "", "5", "4.9", "", "GELE")
    assert "line 8, column CompOperator" in error(uut(rows[0], wrong))


def test_uut_status_overrides_the_computed_result() -> None:
    failing = row("NumericLimitTest", "N", "", "9", "0", "1")
    assert one(uut(failing)).result is Result.FAILED
    assert one(uut(failing, footer="UUTStatus\tPassed\n")).result is Result.PASSED
    assert one(uut(header="UUTStatus\tTerminated\n")).result is Result.TERMINATED
    assert one(uut(row("ActionStep", "A", *[""] * 6, "Error"))).result is Result.ERROR


def test_start_times() -> None:
    utc = one(uut(header="UTCStartDateTime\t2026-02-01T08:15:00\n"))
    assert utc.start_utc == "2026-02-01T08:15:00.000Z"
    local = one(uut(header="StartDateTime\t2026-02-01T08:15:00.5\n"))
    assert local.start_datetime().replace(tzinfo=None).isoformat() == "2026-02-01T08:15:00.500000"
    assert one(uut()).start_datetime()  # no start: now, with an offset


def test_cp1252_and_bom() -> None:
    text = uut(header="Tester\tS\u00f8ren\n")
    report = one_bytes(text.encode("cp1252"), WstfArguments(encoding="cp1252"))
    assert (report.misc_infos or [])[0].text == "S\u00f8ren"
    assert one_bytes(b"\xef\xbb\xbf" + text.encode()).sn == "SN-1"
    message = error(text.encode("cp1252"))
    assert "line 5: the file is not valid utf-8 text" in message
    assert "encoding" in message


def one_bytes(data: bytes, arguments: WstfArguments | None = None) -> Report:
    (report,) = convert("", arguments, data=data)
    return report


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ("no --Header-Start-- marker",)),
        ("hello\n", ("line 1", "expected --Header-Start--")),
        ("--Header-Start--\nSerialNumber\tX\n", ("ends in the header", "line 1")),
        (uut().replace("--Step-Data-End--\n", ""), ("--UUT-End-- in the step data",)),
        (uut().replace("Revision\tA\n", ""), ("no Revision",)),
        (uut(row("Bogus", "x")), ("line 7, column StepType", "unknown StepType 'Bogus'")),
        (uut(row("NumericLimitTest", "N", "", "abc")), ("line 7, column Value", "'abc'")),
        (uut(row("NumericLimitTest", "N", "", "nan")), ("column Value", "not a number")),
        (uut(row("NumericLimitTest", "N", "", "1e999")), ("not a finite number",)),
        (uut(row("NumericLimitTest", "N", "", "1", "0", "", "GX")), ("column CompOperator",)),
        (uut(row("NumericLimitTest", "N", "", "1", "0", "2", "LE")), ("LE uses one limit",)),
        (uut(row("NumericLimitTest", "N", "", "1", "0", "", "GELE")), ("needs a low and",)),
        (uut(row("NumericLimitTest", "N")), ("needs a Value",)),
        (uut(row("NumericLimitTest", "", "", "1")), ("needs a StepName",)),
        (uut(row("PassFailTest", "P", "", "maybe")), ("column Value", "True/False")),
        (uut(row("StringValueTest", "S", "", "a", "", "", "GELE")), ("does not compare",)),
        (uut(row("ActionStep", "A", *[""] * 6, "Meh")), ("column Status", "'Meh'")),
        (uut(row("ActionStep", "A", *[""] * 9, "1.5")), ("column ErrorCode", "integer")),
        (uut(row("SequenceCall", "S")), ("SequenceCall 'S' (line 7) is still open",)),
        (uut(row("EndSequenceCall")), ("EndSequenceCall without an open",)),
        (uut(row("MultipleNumericLimitTest", "", "a", "1")), ("needs a StepName",)),
        (uut(row("MultipleNumericLimitTest", "M", "", "1")), ("needs a MeasureName",)),
        (uut(header="OperationTypeCode\tten\n"), ("line 5", "OperationTypeCode", "integer")),
        (uut(header="StartDateTime\tyesterday\n"), ("line 5", "not an ISO 8601")),
        (uut(header="StartDateTime\t0001-01-01T00:00:00+14:00\n"), ("line 5", "out of range")),
        (uut(header="UUTStatus\tSkipped\n"), ("UUTStatus", "not a report result")),
        (uut(header="JustAKey\n"), ("line 5", "Key<TAB>Value")),
        (uut(footer="SerialNumber\tX\n"), ("not a footer key",)),
        (uut(header=f"Note\t{'x' * 101}\n"), ("miscInfos[0].text", "1")),
        (uut() + uut(sn=""), ("UUT 2 (line 9)", "no SerialNumber")),
        (uut() + "junk\n", ("line 9", "expected --Header-Start--")),
        (uut(header="--Header-Start--\n"), ("--Header-Start-- in the header",)),
    ],
)
def test_bad_input_names_line_and_column(text: str, fragments: tuple[str, ...]) -> None:
    message = error(text)
    for fragment in fragments:
        assert fragment in message


def test_deep_nesting_is_refused() -> None:
    steps = [row("SequenceCall", f"S{i}") for i in range(150)]
    steps += [row("EndSequenceCall")] * 150
    assert "nested deeper than 100" in error(uut(*steps))


def test_arguments_come_from_a_plain_mapping_too() -> None:
    context = ConversionContext(STATION, {"operationTypeCode": 50})
    source = Source(Path("r.txt"), uut().encode())
    (report,) = run_converter(WstfConverter(), source, context)
    assert report.process_code == 50
    bad = ConversionContext(STATION, {"operationTypecode": 50})
    with pytest.raises(ConversionError, match=r"arguments\.operationTypecode: unknown"):
        run_converter(WstfConverter(), source, bad)
