"""The ``acme`` converter: ACME ICT-200 result logs (a made-up format, to show the API).

The format, one item per line (``#`` starts a comment, blank lines are ignored)::

    SN=SN-0001                       header: KEY=VALUE
    PN=PCBA-100
    REV=A
    OPERATOR=ola                     optional
    START=2026-02-01T09:15:00+01:00  optional, ISO 8601 (no offset: station local time)
    STATION=ICT-200-3                optional, else the station's machineName
    FIXTURE=FX-12                    optional; any other KEY becomes a misc info
    BOARD_TEMP=31                    (a misc info "Board_Temp")
    MEAS VCC 5.02 4.9 5.1 V          a measurement: name value low high [unit];
    MEAS IDLE 0.31 - 0.5 A           "-" means no such limit

Each file is one unit. A measurement passes when it is within its limits; the report fails
when any measurement fails.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from pywats.converters import ArgumentError, ConversionContext, Source
from pywats.converters.helpers import (
    ReportIds,
    encode_limits,
    now,
    parse_float,
    result_of,
    start_fields,
    worst_status,
)
from pywats.errors import ConversionError
from pywats.report import (
    MiscInfo,
    NumericMeasurement,
    Report,
    ReportType,
    SequenceCallInfo,
    Status,
    Step,
    StepGroup,
    UUTInfo,
    validate,
)


@attrs.frozen
class AcmeArguments:
    """What the config may set under ``[converters.arguments]`` for ``acme``."""

    #: The WATS process (operation type) code of the test.
    processCode: int = 10
    #: Name of the root sequence of every report.
    sequenceName: str = "ICT"

    def __attrs_post_init__(self) -> None:
        # Checked at start-up: pywats structures the arguments when it loads the converter.
        if self.processCode < 0:
            raise ArgumentError("processCode", "must be 0 or more")
        if not self.sequenceName:
            raise ArgumentError("sequenceName", "must not be empty")


class AcmeConverter:
    """Converts an ACME ICT-200 result log into one WATS test report."""

    name = "acme"
    version = "0.1.0"
    patterns = ("*.acme",)
    Arguments = AcmeArguments

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """One report per file; ConversionError names the line of any problem."""
        args = context.arguments_as(AcmeArguments)
        try:
            text = source.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = source.data[: exc.start].count(b"\n") + 1
            raise self._error(bad_line, "the file is not UTF-8 text") from None
        header: dict[str, str] = {}
        misc: list[MiscInfo] = []
        steps: list[Step] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("MEAS ") or line == "MEAS":
                steps.append(self._measurement(number, line, step_id=len(steps) + 2))
            elif "=" in line:
                key, _, value = line.partition("=")
                key, value = key.strip().upper(), value.strip()
                if key in ("SN", "PN", "REV", "OPERATOR", "START", "STATION", "FIXTURE"):
                    header[key] = value
                elif key:
                    misc.append(MiscInfo(description=key.title(), text=value))
                else:
                    raise self._error(number, "a header line needs a KEY before '='")
            else:
                raise self._error(number, f"expected KEY=VALUE or MEAS ..., got {line[:40]!r}")
        for key in ("SN", "PN", "REV"):
            if not header.get(key):
                raise ConversionError(self.name, f"the file has no {key}= line")
        start = self._start(header.get("START"))
        local, utc = start_fields(start)
        root_status = worst_status(step.status for step in steps)
        report = Report(
            type=ReportType.UUT,
            # The format has no id: one derived from the file, so converting the same file
            # again (a restart, a second station) gives the same id and the server
            # overwrites instead of storing the report twice.
            id=ReportIds(source.data, source.companions)(0),
            pn=header["PN"],
            sn=header["SN"],
            rev=header["REV"],
            process_code=args.processCode,
            result=result_of(root_status),
            # Station defaults for what the file does not say.
            machine_name=header.get("STATION") or context.station.machine_name,
            location=context.station.location,
            purpose=context.station.purpose,
            start=local,
            start_utc=utc,
            uut=UUTInfo(
                user=header.get("OPERATOR") or None, fixture_id=header.get("FIXTURE") or None
            ),
            misc_infos=misc or None,
            root=Step(
                id=1,
                group=StepGroup.MAIN,
                step_type="SequenceCall",
                name=args.sequenceName,
                status=root_status,
                seq_call=SequenceCallInfo(path=args.sequenceName, name=args.sequenceName),
                steps=steps,
            ),
        )
        # validate() raises ReportValidationError with the field path; pywats reports it.
        return [validate(report)]

    def _error(self, line: int, reason: str) -> ConversionError:
        return ConversionError(self.name, f"line {line}: {reason}")

    def _start(self, text: str | None) -> datetime:
        if text is None:
            return now()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ConversionError(self.name, f"START {text!r} is not ISO 8601") from None
        return parsed if parsed.tzinfo is not None else parsed.astimezone()

    def _measurement(self, number: int, line: str, *, step_id: int) -> Step:
        fields = line.split()[1:]
        if len(fields) not in (4, 5):
            raise self._error(number, "a MEAS line is: MEAS name value low high [unit]")
        name, value_text, low_text, high_text = fields[:4]
        try:
            value = parse_float(value_text)
            low = None if low_text == "-" else parse_float(low_text)
            high = None if high_text == "-" else parse_float(high_text)
            # Single-limit operators keep their limit in lowLimit (the WATS encoding).
            comp_op, low, high = encode_limits(None, low, high)
        except ValueError as exc:
            raise self._error(number, str(exc)) from None
        status = Status.PASSED if comp_op.evaluate(value, low, high) else Status.FAILED
        return Step(
            id=step_id,
            group=StepGroup.MAIN,
            step_type="ET_NLT",
            name=name,
            status=status,
            numeric_meas=[
                NumericMeasurement(
                    comp_op=comp_op,
                    value=value,
                    low_limit=low,
                    high_limit=high,
                    unit=fields[4] if len(fields) == 5 else None,
                    status=status,
                )
            ],
        )
