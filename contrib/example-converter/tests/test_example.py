"""Tests for the ACME converter: the way to test a converter of your own.

Run with pywats' venv: ``.venv/bin/pytest contrib/example-converter/tests``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pywats_acme import AcmeArguments, AcmeConverter

from pywats.converters import (
    ConversionContext,
    Source,
    StationDefaults,
    load_converter,
    run_converter,
)
from pywats.errors import ConfigError, ConversionError
from pywats.report import CompOp, Report, Result, Status, wsjf

SAMPLE = Path(__file__).resolve().parents[1] / "sample.acme"
STATION = StationDefaults(machine_name="ST-1", location="Line 1", purpose="Production")


def convert(text: str) -> list[Report]:
    context = ConversionContext(STATION, AcmeArguments())
    return run_converter(AcmeConverter(), Source(Path("x.acme"), text.encode()), context)


def test_sample_converts_to_a_valid_report() -> None:
    source = Source(SAMPLE, SAMPLE.read_bytes())
    (report,) = run_converter(AcmeConverter(), source, ConversionContext(STATION))
    assert (report.pn, report.sn, report.rev) == ("PCBA-100", "SN-0001", "A")
    assert report.machine_name == "ICT-200-3"
    assert report.location == "Line 1"  # from the station: the file does not say
    assert report.result is Result.PASSED
    assert report.start == "2026-02-01T09:15:00.000+01:00"
    names = [step.name for step in report.steps()[1:]]
    assert names == ["VCC", "IDLE_CURRENT", "R12"]
    idle = report.steps()[2].numeric_meas
    assert idle is not None
    # One limit: LE, and the limit is in lowLimit, the way WATS encodes it.
    assert (idle[0].comp_op, idle[0].low_limit, idle[0].high_limit) == (CompOp.LE, 0.5, None)
    wsjf.loads(wsjf.dumps(report))  # the WSJF it becomes is valid


def test_a_measurement_out_of_limits_fails_the_report() -> None:
    (report,) = convert("SN=1\nPN=P\nREV=A\nMEAS VCC 5.5 4.9 5.1 V\n")
    assert report.result is Result.FAILED
    assert report.steps()[1].status is Status.FAILED


def test_the_same_file_gets_the_same_id_and_another_file_another() -> None:
    text = "SN=1\nPN=P\nREV=A\n"
    assert convert(text)[0].id == convert(text)[0].id  # the server overwrites, not twice
    assert convert(text)[0].id != convert(text.replace("SN=1", "SN=2"))[0].id


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("PN=P\nREV=A\n", "no SN= line"),
        ("SN=1\nPN=P\nREV=A\nMEAS VCC x 1 2\n", "line 4: 'x' is not a number"),
        ("SN=1\nPN=P\nREV=A\nMEAS VCC\n", "line 4: a MEAS line is"),
        ("SN=1\nhello\n", "line 2: expected KEY=VALUE"),
    ],
)
def test_bad_input_names_the_line(text: str, fragment: str) -> None:
    with pytest.raises(ConversionError, match="converter 'acme'") as info:
        convert(text)
    assert fragment in str(info.value)
    assert "crashed" not in str(info.value)


def test_arguments_are_checked_when_the_converter_is_loaded() -> None:
    loaded = load_converter(
        "pywats_acme.converter:AcmeConverter", {"processCode": 30}, key="converters[0]"
    )
    assert loaded.arguments == AcmeArguments(processCode=30)
    with pytest.raises(ConfigError) as info:
        load_converter("pywats_acme.converter:AcmeConverter", {"processcode": 30})
    assert info.value.key == "converters.acme.arguments.processcode"
    with pytest.raises(ConfigError) as info:
        load_converter("pywats_acme.converter:AcmeConverter", {"processCode": -1})
    assert info.value.key == "converters.acme.arguments.processCode"
