"""Tests for :mod:`pywats.logs`.

Rules: lines are read back from what was really written: a ``StringIO``, a real file
whose ``device:inode`` is put in ``$JOURNAL_STREAM`` (what systemd does), or the stderr
of a real subprocess. The ``logging_state`` fixture puts the logging configuration and
the secret registry back after every test, so other test modules are not affected.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pywats.logs import (
    clear_secrets,
    component,
    is_journal,
    one_line,
    parse_level,
    redact,
    setup_logging,
)

ROOT = Path(__file__).resolve().parents[1]
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
TOKEN = "dXNlcjpzM2NyZXQtdG9rZW4="


@pytest.fixture(autouse=True)
def logging_state() -> Iterator[None]:
    root = logging.getLogger()
    ours = logging.getLogger("pywats")
    handlers, level = list(root.handlers), ours.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    ours.setLevel(level)
    clear_secrets()


def throw(exc: BaseException) -> None:
    raise exc


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_line_is_timestamp_level_component_message() -> None:
    out = io.StringIO()
    setup_logging("info", stream=out)
    logging.getLogger("pywats.store").info("queued %d reports", 3)
    logging.getLogger("pywats.converters.csv").warning("odd column")
    logging.getLogger("pywats").error("top level")
    [first, second, third] = lines(out)
    assert re.fullmatch(rf"{STAMP} INFO store: queued 3 reports", first)
    assert re.fullmatch(rf"{STAMP} WARNING converters\.csv: odd column", second)
    assert re.fullmatch(rf"{STAMP} ERROR pywats: top level", third)


def test_the_level_filters_pywats_and_other_libraries_keep_warning() -> None:
    out = io.StringIO()
    setup_logging("warning", stream=out)
    logging.getLogger("pywats.uploader").info("hidden")
    logging.getLogger("pywats.uploader").warning("shown")
    setup_logging("DEBUG", stream=out)  # again: replaces the handler, not a second one
    logging.getLogger("pywats.uploader").debug("now shown")
    logging.getLogger("httpx").info("library chatter stays out")
    logging.getLogger("httpx").warning("library warning")
    assert [line.split(" ", 1)[1] for line in lines(out)] == [
        "WARNING uploader: shown",
        "DEBUG uploader: now shown",
        "WARNING httpx: library warning",
    ]


@pytest.mark.parametrize(
    ("level", "number"),
    [("debug", 10), ("Info", 20), (" warning ", 30), ("error", 40), ("critical", 50), (25, 25)],
)
def test_parse_level(level: str | int, number: int) -> None:
    assert parse_level(level) == number


def test_unknown_level_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'verbose': use one of debug, info"):
        setup_logging("verbose")


def test_journal_lines_carry_the_priority_and_no_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal"
    with path.open("w", encoding="utf-8") as stream:
        info = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        assert is_journal(stream)
        setup_logging("debug", stream=stream)
        log = logging.getLogger("pywats.service")
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        log.critical("c")
        log.log(25, "between info and warning")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "<7>DEBUG service: d",
        "<6>INFO service: i",
        "<4>WARNING service: w",
        "<3>ERROR service: e",
        "<2>CRITICAL service: c",
        "<6>Level 25 service: between info and warning",
    ]


def test_only_the_stream_systemd_named_is_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child that inherited JOURNAL_STREAM but writes elsewhere keeps its timestamps.
    other = tmp_path / "other"
    with other.open("w") as stream:
        info = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino + 1}")
        assert not is_journal(stream)
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        assert is_journal(stream)
        assert not is_journal(stream, {})
    assert not is_journal(io.StringIO())  # no descriptor at all
    closed = open(other)  # noqa: SIM115  # closed on purpose
    closed.close()
    assert not is_journal(closed)


def test_stderr_of_a_real_service_process_goes_to_the_journal_format(tmp_path: Path) -> None:
    err = tmp_path / "stderr"
    code = (
        "import logging, os, sys\n"
        "st = os.fstat(2)\n"
        "os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}'\n"
        "from pywats.logs import setup_logging\n"
        "setup_logging()\n"
        "logging.getLogger('pywats.service').info('ready')\n"
    )
    with err.open("w") as stderr:
        subprocess.run(
            [sys.executable, "-c", code],
            stderr=stderr,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=60,
            check=True,
        )
    assert err.read_text() == "<6>INFO service: ready\n"


def test_multi_line_messages_and_tracebacks_are_one_line() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    log = logging.getLogger("pywats.converters")
    log.warning("first\nsecond\r\nthird\n")
    try:
        throw(KeyError("missing"))
    except KeyError:
        log.exception("conversion crashed")
    log.info("colours \x1b[31mred\x1b[0m\tand a tab")
    [message, crash, colours] = lines(out)
    assert message.endswith("WARNING converters: first\\nsecond\\r\\nthird")
    assert crash.endswith("KeyError: 'missing'")
    assert "ERROR converters: conversion crashed\\nTraceback (most recent call last):\\n" in crash
    assert colours.endswith("INFO converters: colours \\x1b[31mred\\x1b[0m\tand a tab")


def test_stack_info_is_kept_on_the_line() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    logging.getLogger("pywats.x").info("where", stack_info=True)
    [line] = lines(out)
    assert "INFO x: where\\nStack (most recent call last):\\n" in line


def test_registered_secrets_never_reach_the_output() -> None:
    out = io.StringIO()
    setup_logging("debug", stream=out)
    redact(TOKEN)
    redact("")  # ignored, or every line would be full of ***
    log = logging.getLogger("pywats.uploader")
    log.info("Authorization: Basic %s", TOKEN)
    log.debug(f"token in the message itself: {TOKEN}")
    log.info("in a mapping: %(token)s", {"token": TOKEN})
    try:
        throw(RuntimeError(f"server rejected {TOKEN}"))
    except RuntimeError:
        log.exception("upload failed")
    log.warning("stack", stack_info=True, extra={"unused": TOKEN})
    logging.getLogger("httpx").warning("a library said %s", TOKEN)
    text = out.getvalue()
    assert TOKEN not in text
    [auth, inline, mapping, failure, _stack, library] = text.splitlines()
    assert auth.endswith("INFO uploader: Authorization: Basic ***")
    assert inline.endswith("DEBUG uploader: token in the message itself: ***")
    assert mapping.endswith("INFO uploader: in a mapping: ***")
    assert failure.endswith("RuntimeError: server rejected ***")
    assert library.endswith("WARNING httpx: a library said ***")


def test_a_secret_containing_another_is_replaced_whole() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    redact("user")
    redact("user:s3cret")
    logging.getLogger("pywats.x").info("credential user:s3cret for user")
    assert out.getvalue().rstrip().endswith("INFO x: credential *** for ***")
    clear_secrets()
    logging.getLogger("pywats.x").info("user:s3cret")
    assert out.getvalue().rstrip().endswith("INFO x: user:s3cret")


def test_a_record_formatted_by_another_handler_first_is_still_redacted() -> None:
    # Another handler (pytest's, an operator's) may render the exception text before ours.
    early = logging.StreamHandler(io.StringIO())
    early.setFormatter(logging.Formatter())
    logging.getLogger().addHandler(early)
    out = io.StringIO()
    setup_logging(stream=out)
    redact(TOKEN)
    try:
        throw(ValueError(TOKEN))
    except ValueError:
        logging.getLogger("pywats.x").exception("failed")
    assert TOKEN not in out.getvalue()
    assert out.getvalue().rstrip().endswith("ValueError: ***")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("pywats.store", "store"),
        ("pywats.rpc.server", "rpc.server"),
        ("pywats", "pywats"),
        ("pywatsx.y", "pywatsx.y"),
        ("httpx", "httpx"),
    ],
)
def test_component(name: str, shown: str) -> None:
    assert component(name) == shown


def test_one_line() -> None:
    assert one_line("a\nb\n\n") == "a\\nb"
    assert one_line("\x00\x7f\t") == "\\x00\\x7f\t"
    # os.fsdecode(b"caf\xe9.csv"): the byte that is not UTF-8 is shown as the byte.
    assert one_line("caf\udce9.csv") == "caf\\xe9.csv"
