"""Process converters: a program that prints WSJF, run on each file (real subprocesses).

Rules: every program is a small Python script written into ``tmp_path`` and run with
``sys.executable`` (or ``/bin/cat``), never a mock. Assertions are what a station engineer
sees: the reports, the one-line summary and the stderr lines in the reason (the sidecar),
and that nothing the program started is still running afterwards.
"""

from __future__ import annotations

import json
import shutil
import stat
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats import cli, defaults
from pywats.config import ConfigCheckError
from pywats.converters import Source, StationDefaults
from pywats.converters.process import (
    ProcessConverter,
    command_label,
    load_process_converter,
)
from pywats.converters.registry import LoadedConverter
from pywats.errors import ConfigError, ConversionError
from pywats.events import EventHub, FileProcessed, FileRejected
from pywats.pipeline import Pipeline
from pywats.plan import prepare
from pywats.report import Report, Result, wsjf
from pywats.store import Store
from tests.report import minimal

STATION = StationDefaults(machine_name="ST-9", location="Hall 2", purpose="Production")


def document(sn: str = "SN-1", **changes: Any) -> dict[str, Any]:
    """A valid WSJF report without id and station fields (the converter adds them)."""
    doc = minimal.uut()
    for key in ("id", "machineName", "location", "purpose"):
        del doc[key]
    doc["sn"] = sn
    doc.update(changes)
    return doc


def script(tmp_path: Path, body: str, name: str = "convert.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def loaded(
    tmp_path: Path, body: str, *, extra: tuple[str, ...] = (), **options: Any
) -> LoadedConverter:
    """A process converter running ``body`` (Python) on ``{path}``."""
    program = script(tmp_path, body)
    grace = options.pop("kill_grace_s", None)
    result = load_process_converter(
        [sys.executable, str(program), *extra, "{path}"],
        patterns=["*.dat"],
        key="converters[0]",
        **options,
    )
    if grace is not None:
        converter = result.converter
        assert isinstance(converter, ProcessConverter)
        result = attrs.evolve(result, converter=attrs.evolve(converter, kill_grace_s=grace))
    return result


def source(tmp_path: Path, data: bytes = b"raw tester output\n", name: str = "SN-7.dat") -> Source:
    path = tmp_path / name
    path.write_bytes(data)
    return Source(path, data)


def convert(converter: LoadedConverter, src: Source) -> list[Report]:
    return converter.convert(src, STATION)


def failure(converter: LoadedConverter, src: Source) -> ConversionError:
    with pytest.raises(ConversionError) as info:
        convert(converter, src)
    assert "crashed" not in str(info.value)
    return info.value


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie nobody reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if gone(pid):
            return True
        time.sleep(0.02)
    return gone(pid)


PRINT_ONE = f"""
    import json, pathlib, sys
    path = pathlib.Path(sys.argv[-1])
    doc = {document()!r}
    doc["sn"] = path.stem
    doc["miscInfos"] = [{{"description": "content", "text": path.read_text().strip()}},
                        {{"description": "absolute", "text": str(path.is_absolute())}}]
    print(json.dumps(doc))
    print("converted", path.name, file=sys.stderr)
"""


# -- what the program prints -------------------------------------------------------------


def test_one_object_is_one_report_with_the_station_filled_in(tmp_path: Path) -> None:
    converter = loaded(tmp_path, PRINT_ONE)
    (report,) = convert(converter, source(tmp_path))
    assert report.sn == "SN-7"  # the program was given the file's path ...
    assert [(m.description, m.text) for m in report.misc_infos or []] == [
        ("content", "raw tester output"),  # ... and read the file itself
        ("absolute", "True"),
    ]
    assert (report.machine_name, report.location, report.purpose) == (
        "ST-9",
        "Hall 2",
        "Production",
    )
    assert report.id  # a fresh id: the program wrote none
    assert report.result is Result.PASSED
    assert wsjf.loads(wsjf.dumps(report)) == report


def test_an_array_is_one_report_per_element(tmp_path: Path) -> None:
    docs = [document("A-1"), document("A-2", result="F")]
    converter = loaded(tmp_path, f"import json\nprint(json.dumps({docs!r}, indent=2))\n")
    reports = convert(converter, source(tmp_path))
    assert [(r.sn, r.result) for r in reports] == [("A-1", Result.PASSED), ("A-2", Result.FAILED)]
    assert len({r.id for r in reports}) == 2


def test_json_lines_are_one_report_per_line(tmp_path: Path) -> None:
    lines = [json.dumps(document(f"L-{n}")) for n in range(3)]
    printed = "\n".join([lines[0], "", lines[1], lines[2]]) + "\n"
    body = f"import sys\nsys.stdout.write({printed!r})\n"
    reports = convert(loaded(tmp_path, body), source(tmp_path))
    assert [r.sn for r in reports] == ["L-0", "L-1", "L-2"]


def test_a_bad_report_in_json_lines_names_its_line_and_field(tmp_path: Path) -> None:
    lines = [json.dumps(document("L-1")), json.dumps(document("L-2", rev=""))]
    body = f"print({chr(10).join(lines)!r})\n"
    error = failure(loaded(tmp_path, body), source(tmp_path))
    assert "printed no valid WSJF on stdout line 2: rev:" in error.reason
    assert error.path == "rev"


def test_a_bad_report_names_the_field(tmp_path: Path) -> None:
    body = f"import json\nprint(json.dumps({[document('X'), document('Y', processCode='10')]!r}))\n"
    error = failure(loaded(tmp_path, body), source(tmp_path))
    assert "printed a report that is not valid WSJF: [1].processCode: expected an integer" in (
        error.reason
    )
    assert error.path == "[1].processCode"


def test_utf8_with_a_byte_order_mark_and_utf16_are_read(tmp_path: Path) -> None:
    doc = json.dumps(document("S\u00f8ren-1"), ensure_ascii=False)
    for encoding in ("utf-8-sig", "utf-16"):
        body = f"import sys\nsys.stdout.buffer.write({doc!r}.encode({encoding!r}))\n"
        (report,) = convert(loaded(tmp_path, body), source(tmp_path))
        assert report.sn == "S\u00f8ren-1", encoding


def test_garbage_on_stdout_is_refused_with_what_it_began_with(tmp_path: Path) -> None:
    body = "print('Converting file...')\nprint('{\"sn\": 1}')\n"
    error = failure(loaded(tmp_path, body), source(tmp_path))
    assert error.converter == "convert"
    first = error.reason.splitlines()[0]
    assert "printed no WSJF on stdout: not valid JSON: Expecting value at line 1 column 1" in first
    assert "(it begins 'Converting file...\\n{\"sn\": 1}')" in first


def test_nothing_on_stdout_is_refused(tmp_path: Path) -> None:
    body = "import sys\nprint('nothing to do', file=sys.stderr)\n"
    error = failure(loaded(tmp_path, body), source(tmp_path))
    assert error.reason.splitlines() == [
        f"{sys.executable!r} exited with status 0 but printed nothing on stdout",
        "stderr:",
        "  nothing to do",
    ]


def test_stdin_is_closed_and_the_token_is_not_passed_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYWATS_TOKEN", "secret-token")
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("ACME_LICENSE", "site-42")
    body = f"""
        import json, os, sys
        doc = {document()!r}
        doc["miscInfos"] = [
            {{"description": "stdin", "text": repr(sys.stdin.read())}},
            {{"description": "token", "text": repr(os.environ.get("PYWATS_TOKEN"))}},
            {{"description": "notify", "text": repr(os.environ.get("NOTIFY_SOCKET"))}},
            {{"description": "license", "text": repr(os.environ.get("ACME_LICENSE"))}},
        ]
        print(json.dumps(doc))
    """
    (report,) = convert(loaded(tmp_path, body), source(tmp_path))
    assert {m.description: m.text for m in report.misc_infos or []} == {
        "stdin": "''",  # /dev/null: read at once, nothing to wait for
        "token": "None",
        "notify": "None",
        "license": "'site-42'",
    }


def test_path_is_substituted_inside_an_argument(tmp_path: Path) -> None:
    program = script(
        tmp_path,
        f"""
        import json, sys
        doc = {document()!r}
        doc["sn"] = sys.argv[1].rpartition("/")[2]
        doc["uut"]["comment"] = " ".join(sys.argv[1:])
        print(json.dumps(doc))
        """,
    )
    converter = load_process_converter(
        [sys.executable, str(program), "--in={path}.x", "{literal}"],
        patterns=["*.dat"],
        key="converters[0]",
    )
    (report,) = convert(converter, source(tmp_path))
    assert report.sn == "SN-7.dat.x"
    assert report.uut is not None
    assert report.uut.comment == f"--in={tmp_path / 'SN-7.dat'}.x {{literal}}"


# -- when the program fails ----------------------------------------------------------------


def test_exit_1_gives_the_status_and_the_end_of_stderr(tmp_path: Path) -> None:
    body = """
        import sys
        print("reading header", file=sys.stderr)
        print("\\x1b[31mERROR\\x1b[0m line 12: no serial number", file=sys.stderr)
        sys.exit(1)
    """
    error = failure(loaded(tmp_path, body), source(tmp_path))
    assert error.reason.splitlines() == [
        f"{sys.executable!r} exited with status 1",
        "stderr:",
        "  reading header",
        "  ERROR line 12: no serial number",
    ]


def test_only_the_last_of_a_long_stderr_is_kept(tmp_path: Path) -> None:
    body = """
        import sys
        for n in range(5000):
            print(f"progress {n:05d}", file=sys.stderr)
        print("FATAL: fixture not closed", file=sys.stderr)
        sys.exit(2)
    """
    error = failure(loaded(tmp_path, body), source(tmp_path))
    lines = error.reason.splitlines()
    assert lines[:2] == [f"{sys.executable!r} exited with status 2", "stderr (last lines):"]
    assert lines[-2:] == ["  progress 04999", "  FATAL: fixture not closed"]
    assert "progress 00000" not in error.reason
    kept = "\n".join(lines[2:]).encode()
    assert len(kept) <= defaults.PROCESS_STDERR_TAIL_BYTES + 2 * len(lines)
    assert all(line.startswith("  progress ") or "FATAL" in line for line in lines[2:])


def test_a_program_killed_by_a_signal_says_which(tmp_path: Path) -> None:
    body = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
    error = failure(loaded(tmp_path, body), source(tmp_path))
    assert error.reason.startswith(f"{sys.executable!r} was killed by SIGSEGV")


def test_a_timeout_kills_the_process_group_no_orphan_left(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    body = f"""
        import os, sys, time
        child = os.fork()
        if child == 0:
            open({str(pids)!r} + ".child", "w").write(str(os.getpid()))
            time.sleep(60)
            os._exit(0)
        open({str(pids)!r} + ".parent", "w").write(str(os.getpid()))
        print("waiting for the fixture", file=sys.stderr, flush=True)
        time.sleep(60)
    """
    converter = loaded(tmp_path, body, timeout_s=1.0)
    began = time.monotonic()
    error = failure(converter, source(tmp_path))
    took = time.monotonic() - began
    assert error.reason.splitlines() == [
        f"{sys.executable!r} did not finish within the timeout (1 s, timeout_s); it and every "
        "process it started were killed",
        "stderr:",
        "  waiting for the fixture",
    ]
    assert took < 1.0 + defaults.PROCESS_KILL_GRACE_S + 2
    child = int(Path(f"{pids}.child").read_text())
    parent = int(Path(f"{pids}.parent").read_text())
    assert gone(parent)
    assert wait_gone(child), "the forked child survived the timeout"


def test_a_program_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    body = """
        import signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("busy", file=sys.stderr, flush=True)
        time.sleep(60)
    """
    converter = loaded(tmp_path, body, timeout_s=0.5, kill_grace_s=0.5)
    began = time.monotonic()
    error = failure(converter, source(tmp_path))
    took = time.monotonic() - began
    assert "did not finish within the timeout (0.5 s, timeout_s)" in error.reason
    assert 1.0 <= took < 4.0  # the timeout, the grace it ignored, then SIGKILL


def test_a_program_stopping_on_sigterm_has_its_last_words_kept(tmp_path: Path) -> None:
    body = """
        import signal, sys, time
        def stop(*_):
            print("stopped: removing temp files", file=sys.stderr, flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, stop)
        time.sleep(60)
    """
    converter = loaded(tmp_path, body, timeout_s=0.5, kill_grace_s=10)
    began = time.monotonic()
    error = failure(converter, source(tmp_path))
    assert time.monotonic() - began < 5  # it ended within the grace: no wait for all of it
    assert error.reason.splitlines()[-1] == "  stopped: removing temp files"


def test_an_oversized_output_is_cut_off(tmp_path: Path) -> None:
    body = """
        import sys, time
        sys.stdout.write("[" + " " * 1_000_000)
        sys.stdout.flush()
        time.sleep(60)
    """
    converter = loaded(tmp_path, body, max_output_bytes=100_000)
    began = time.monotonic()
    error = failure(converter, source(tmp_path))
    assert time.monotonic() - began < 5
    assert error.reason.startswith(
        f"{sys.executable!r} printed more than 100000 bytes on stdout (max_output_bytes); "
        "it was killed"
    )


def test_a_child_left_running_after_success_is_ended(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    body = f"""
        import json, os, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        print(json.dumps({document()!r}))
    """
    began = time.monotonic()
    (report,) = convert(loaded(tmp_path, body, timeout_s=20), source(tmp_path))
    assert time.monotonic() - began < 5  # its open stdout did not hold the conversion
    assert report.sn == "SN-1"
    assert wait_gone(int(pid_file.read_text()))


def test_a_program_that_cannot_start_is_one_clear_error(tmp_path: Path) -> None:
    converter = loaded(tmp_path, "print(1)")
    process = converter.converter
    assert isinstance(process, ProcessConverter)
    broken = attrs.evolve(converter, converter=attrs.evolve(process, program="/nonexistent/x"))
    error = failure(broken, source(tmp_path))
    assert error.reason == f"cannot run {sys.executable!r}: No such file or directory"


# -- the output parser, fuzzed through /bin/cat -------------------------------------------

CAT = shutil.which("cat")
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
GOOD = json.dumps([document("F-1"), document("F-2")]).encode()


@pytest.mark.skipif(CAT is None, reason="no cat")
@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(GOOD)).map(lambda n: GOOD[:n]),
        st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)).map(
            lambda f: GOOD[: f[0]] + bytes([f[1]]) + GOOD[f[0] + 1 :]
        ),
        st.just(b"\n".join(json.dumps(document(f"J-{n}")).encode() for n in range(3))),
    )
)
def test_whatever_the_program_prints_only_a_conversion_error_comes_out(
    tmp_path: Path, data: bytes
) -> None:
    assert CAT is not None
    converter = load_process_converter(
        [CAT, "--", "{path}"], patterns=["*.dat"], key="converters[0]"
    )
    src = source(tmp_path, data)
    failure: ConversionError | None = None
    try:
        reports = convert(converter, src)
    except ConversionError as exc:
        failure, reports = exc, []
    if failure is not None:
        assert "crashed" not in failure.reason, failure.reason
        assert failure.reason.splitlines()[0], failure.reason
    for report in reports:
        assert wsjf.loads(wsjf.dumps(report)) == report


# -- start-up checks -----------------------------------------------------------------------


def test_labels() -> None:
    assert command_label(["/opt/acme/convert", "{path}"]) == "convert"
    assert command_label(["/opt/acme/convert.sh", "{path}"]) == "convert"
    assert command_label(["dotnet", "/opt/acme/Acme.Converter.dll", "{path}"]) == "Acme.Converter"
    assert command_label(["/usr/bin/python3.11", "-u", "/opt/x/ict2wsjf.py", "{path}"]) == (
        "ict2wsjf"
    )
    assert command_label(["java", "-jar", "conv.jar", "{path}"]) == "conv"
    assert command_label(["dotnet", "{path}"]) == "dotnet"


def write_config(tmp_path: Path, entry: str) -> Path:
    config = tmp_path / "ict.toml"
    config.write_text(
        f'[[converters]]\nwatch = "{tmp_path}/in"\npatterns = ["*.dat"]\n{entry}\n'
        f'[queue]\npath = "{tmp_path}/state/queue.db"\n'
    )
    return config


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "etc"))
    for name in ("PYWATS_TOKEN", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def prepare_errors(config: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigCheckError) as info:
        prepare("ict", config)
    return [(e.key, e.reason) for e in info.value.errors]


@pytest.mark.parametrize(
    ("entry", "files", "key", "reason"),
    [
        ('command = ["{tmp}/nope", "{path}"]', {}, "converters[0].command", "does not exist"),
        (
            'command = ["{tmp}/plain.sh", "{path}"]',
            {"plain.sh": 0o644},
            "converters[0].command",
            "is not executable (chmod +x it",
        ),
        ('command = ["{tmp}", "{path}"]', {}, "converters[0].command", "is a folder"),
        (
            'command = ["no-such-pywats-converter", "{path}"]',
            {},
            "converters[0].command",
            "program 'no-such-pywats-converter' is not found on PATH",
        ),
        ('command = ["/bin/true"]', {}, "converters[0].command", "no argument holds {path}"),
        ("command = []", {}, "converters[0].command", "must not be empty"),
        ('command = "/bin/cat {path}"', {}, "converters[0].command", "expected an array"),
        (
            'command = ["/bin/cat", "{path}"]\nname = "wsjf"',
            {},
            "converters[0].name",
            "not both",
        ),
        (
            'command = ["/bin/cat", "{path}"]\ntimeout_s = 0',
            {},
            "converters[0].timeout_s",
            "greater than 0",
        ),
        (
            'command = ["/bin/cat", "{path}"]\n[converters.arguments]\nx = 1',
            {},
            "converters[0].arguments",
            "takes no arguments",
        ),
        ('name = "wsjf"\ntimeout_s = 5', {}, "converters[0].timeout_s", "only a command entry"),
    ],
)
def test_a_bad_command_stops_start_up_and_config_check_naming_the_key(
    isolated: Path,
    entry: str,
    files: dict[str, int],
    key: str,
    reason: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, mode in files.items():
        (isolated / name).write_text("#!/bin/sh\n")
        (isolated / name).chmod(mode)
    config = write_config(isolated, entry.replace("{tmp}", str(isolated)))
    assert any(k == key and reason in r for k, r in prepare_errors(config)), prepare_errors(config)
    assert cli.main(["config", "check", "--instance", "ict", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert any(f"{config}: {key}: " in line and reason in line for line in err.splitlines()), err


def test_patterns_are_required_with_a_command(isolated: Path) -> None:
    config = isolated / "ict.toml"
    config.write_text(
        f'[[converters]]\nwatch = "{isolated}/in"\ncommand = ["/bin/cat", "{{path}}"]\n'
    )
    assert (
        "converters[0].patterns",
        'required with a command: the file names the program takes (["*.dat"])',
    ) in (prepare_errors(config))


def test_a_relative_program_is_found_beside_the_config_and_a_bare_one_on_path(
    isolated: Path,
) -> None:
    tools = isolated / "tools"
    tools.mkdir()
    program = tools / "conv"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    config = write_config(
        isolated,
        'command = ["tools/conv", "{path}"]\ntimeout_s = 5\nmax_output_bytes = 1000\n'
        '[[converters]]\nwatch = "' + str(isolated) + '/in2"\npatterns = ["*.x"]\n'
        'command = ["cat", "{path}"]\n',
    )
    _, _, plan = prepare("ict", config)
    first, second = (folder.converter for folder in plan.folders)
    assert isinstance(first, ProcessConverter)
    assert isinstance(second, ProcessConverter)
    assert (first.name, first.program, first.timeout_s, first.max_output_bytes) == (
        "conv",
        str(program),
        5.0,
        1000,
    )
    assert first.command == (str(program), "{path}")
    assert second.program == shutil.which("cat")
    assert (second.timeout_s, second.max_output_bytes) == (
        defaults.PROCESS_TIMEOUT_S,
        defaults.PROCESS_MAX_OUTPUT_BYTES,
    )
    assert [f.name for f in plan.folders] == ["conv", "cat"]
    assert [f.patterns for f in plan.folders] == [("*.dat",), ("*.x",)]


def test_load_refuses_what_start_up_refuses(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_process_converter([str(tmp_path / "x"), "{path}"], patterns=["*"], key="c[1]")
    assert info.value.key == "c[1].command"
    with pytest.raises(ConfigError) as info:
        load_process_converter(["/bin/cat", "{path}"], patterns=[], key="c[1]")
    assert info.value.key == "c[1].patterns"


# -- end to end through the pipeline ---------------------------------------------------------


@asynccontextmanager
async def pipeline_of(config: Path) -> AsyncIterator[tuple[Store, Any]]:
    _, _, plan = prepare("ict", config)
    hub = EventHub()
    subscription = hub.subscribe(buffer=10_000)
    async with await Store.open(plan.db_path) as store:
        pipeline = Pipeline(store, plan.folders, station=plan.station, hub=hub)
        with subscription:
            async with trio.open_nursery() as nursery:
                await nursery.start(pipeline.run)
                yield store, subscription
                pipeline.begin_shutdown()


async def next_outcome(subscription: Any) -> FileProcessed | FileRejected:
    with trio.fail_after(30):
        while True:
            event = await subscription.receive()
            if isinstance(event, FileProcessed | FileRejected):
                return event


async def test_end_to_end_a_file_is_queued_and_a_failure_lands_in_the_error_folder(
    isolated: Path,
) -> None:
    program = script(
        isolated,
        f"""
        import json, pathlib, sys
        path = pathlib.Path(sys.argv[1])
        if b"FAIL" in path.read_bytes():
            print("line 3: checksum mismatch in", path.name, file=sys.stderr)
            sys.exit(1)
        doc = {document()!r}
        doc["sn"] = path.stem
        print(json.dumps(doc))
        """,
        name="acme2wsjf.py",
    )
    config = write_config(
        isolated,
        f'command = ["{sys.executable}", "{program}", "{{path}}"]\n'
        f'done_dir = "{isolated}/done"\nerror_dir = "{isolated}/error"\n'
        "settle_s = 0.1\nrescan_s = 0.2\n",
    )
    (isolated / "in").mkdir()
    async with pipeline_of(config) as (store, subscription):
        (isolated / "in" / "SN-100.dat").write_bytes(b"OK data")
        ok = await next_outcome(subscription)
        assert isinstance(ok, FileProcessed), ok
        (isolated / "in" / "SN-101.dat").write_bytes(b"FAIL data")
        bad = await next_outcome(subscription)
        assert isinstance(bad, FileRejected), bad
        rows = await store.list_reports(limit=10)
        assert [r.sn for r in rows] == ["SN-100"]
        queued = await store.get(rows[0].id)
        body = json.loads(queued.body)
        assert (body["sn"], body["machineName"]) == ("SN-100", plan_station_name())
    assert (isolated / "done" / "SN-100.dat").read_bytes() == b"OK data"
    assert (isolated / "error" / "SN-101.dat").read_bytes() == b"FAIL data"
    sidecar = (isolated / "error" / "SN-101.dat.error.txt").read_text()
    assert "converter: acme2wsjf 1.0" in sidecar
    assert f"reason:    {sys.executable!r} exited with status 1" in sidecar
    assert "             line 3: checksum mismatch in SN-101.dat" in sidecar
    assert bad.converter == "acme2wsjf"


def plan_station_name() -> str:
    import socket

    return socket.gethostname()[:100] or "pywats-station"
