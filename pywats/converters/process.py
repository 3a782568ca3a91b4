"""Process converters: any program that prints WSJF, run as a converter.

A ``[[converters]]`` entry may name a program instead of a Python class::

    [[converters]]
    command = ["/opt/acme/convert", "--strict", "{path}"]
    patterns = ["*.acme"]
    watch = "/srv/results/acme"
    timeout_s = 30

For each file the program runs once, without a shell (the arguments are passed as they
are; ``{path}`` in any of them becomes the file's absolute path), with stdin on
``/dev/null``, in its own process group. It prints WSJF on stdout: one report object, an
array of them, or one object per line (JSON lines). Exit status 0 is success; anything
else, a timeout (``timeout_s``), more output than ``max_output_bytes`` or output that is
not WSJF sends the file to the error folder, with the end of the program's stderr in the
reason (and so in the ``.error.txt`` beside it). A .NET converter runs this way through
``dotnet`` (``command = ["dotnet", "/opt/acme/Acme.Converter.dll", "{path}"]``).

The reports are read by the ``wsjf`` converter's rules (a missing ``id``,
``machineName``, ``location`` or ``purpose`` is filled in from the station) and checked
like every other converter's.

:class:`ProcessConverter` is a normal converter object: its synchronous ``convert`` runs
the program with :mod:`subprocess` on the pipeline's worker thread and waits for it. On a
timeout the whole process group gets SIGTERM, then SIGKILL after a grace period, so
nothing the program started is left running; what the program leaves running in its group
after it exits is killed too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shlex
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import attrs

from pywats import defaults
from pywats.converters.base import ConversionContext, Source
from pywats.converters.helpers import ReportIds, decode_auto, sniff_encoding
from pywats.converters.registry import LoadedConverter
from pywats.converters.wsjf import WsjfConverter
from pywats.errors import ConfigError, ConversionError, MalformedInputError, ReportError
from pywats.report.model import Report

__all__ = [
    "PATH_PLACEHOLDER",
    "WITHHELD_ENVIRONMENT",
    "ProcessConverter",
    "command_label",
    "load_process_converter",
]

PATH_PLACEHOLDER = "{path}"
"""Replaced, in every argument of a command, by the absolute path of the file to convert."""

WITHHELD_ENVIRONMENT = (
    "PYWATS_TOKEN",
    "CREDENTIALS_DIRECTORY",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
)
"""Variables of the service's environment a converter program does not get: the server
token (and where systemd keeps credentials), and systemd's notify and socket variables,
which speak for the service itself."""

#: Programs that run the converter named by their first plain argument; the label of a
#: command is that argument's stem (``dotnet Acme.Converter.dll`` -> ``Acme.Converter``).
_LAUNCHERS = frozenset(
    {"dotnet", "mono", "java", "node", "python", "python3", "pwsh", "sh", "bash", "perl"}
)

_READ_SIZE = 64 * 1024
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def command_label(command: Sequence[str]) -> str:
    """A short name for a command, for logs, statistics and default folders.

    The program's file name without its extension (``/opt/acme/convert`` -> ``convert``);
    for a launcher (``dotnet``, ``java``, ``python3`` ...) the first argument after it that
    is not an option and not the file (``dotnet /opt/Acme.Converter.dll {path}`` ->
    ``Acme.Converter``).
    """
    if not command or not command[0]:
        return "command"
    program = Path(command[0]).name
    label = program
    if Path(program).stem.lower() in _LAUNCHERS:
        for argument in command[1:]:
            if argument.startswith("-") or PATH_PLACEHOLDER in argument or not argument:
                continue
            label = argument
            break
    stem = Path(label.replace("\\", "/")).name
    if "." in stem and not stem.startswith("."):
        stem = stem.rsplit(".", 1)[0]
    return stem.strip() or program


def _child_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in WITHHELD_ENVIRONMENT}


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    # Nothing left in the group (or it is not ours any more): nothing to end.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _leader_exited(pid: int) -> bool:
    """Whether ``pid`` has exited, without reaping it (its pid stays taken, so its process
    group id cannot be reused while we still signal the group)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


@attrs.frozen
class _Ran:
    """What running the program gave."""

    returncode: int
    stdout: bytes
    stderr_tail: bytes
    stderr_cut: bool
    problem: str | None
    """``None``, or why the program was stopped: ``timeout``, ``output`` (too much), or
    ``held`` (it exited, but something it started kept its output open until the timeout)."""


class _Runner:
    """Runs one program to its end, reading its output within the bounds (one file)."""

    def __init__(
        self, proc: subprocess.Popen[bytes], *, max_output: int, tail: int, grace_s: float
    ) -> None:
        self.proc = proc
        self.max_output = max_output
        self.tail = tail
        self.grace_s = grace_s
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stderr_cut = False
        self.exited = False
        self.selector = selectors.DefaultSelector()
        self.pipes = 0
        for stream, what in ((proc.stdout, "out"), (proc.stderr, "err")):
            assert stream is not None
            self.selector.register(stream, selectors.EVENT_READ, what)
            self.pipes += 1
        self.pidfd: int | None = None
        try:
            self.pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self.pidfd = None  # an old kernel: the leader's exit is polled instead
        else:
            self.selector.register(self.pidfd, selectors.EVENT_READ, "exit")

    def close(self) -> None:
        self.selector.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def _on_exit(self) -> None:
        self.exited = True
        if self.pidfd is not None:
            self.selector.unregister(self.pidfd)
        # The leader is a zombie until it is reaped, so its pid (the group's id) cannot be
        # reused: what it left running in its group is ended now, and its pipes close.
        _kill_group(self.proc.pid, signal.SIGKILL)

    def _pump(self, wait: float, *, keep_stdout: bool = True) -> bool:
        """Wait up to ``wait`` s for output or the leader's exit; False: stdout overflowed."""
        if self.pidfd is None and not self.exited:
            wait = min(wait, 0.05)  # no pidfd: the exit is polled below
        for key, _ in self.selector.select(max(wait, 0.0)):
            if key.data == "exit":
                self._on_exit()
                continue
            chunk = os.read(key.fd, _READ_SIZE)
            if not chunk:
                self.selector.unregister(key.fileobj)
                self.pipes -= 1
            elif key.data == "err":
                self.stderr += chunk
                if len(self.stderr) > 2 * self.tail:  # trimmed in steps: linear overall
                    del self.stderr[: -self.tail]
                    self.stderr_cut = True
            elif keep_stdout:
                if len(self.stdout) + len(chunk) > self.max_output:
                    return False
                self.stdout += chunk
        if self.pidfd is None and not self.exited and _leader_exited(self.proc.pid):
            self._on_exit()
        return True

    def run(self, timeout_s: float) -> str | None:
        """Read until the program and its pipes are done; the problem that stopped it, if any."""
        deadline = time.monotonic() + timeout_s
        while self.pipes or not self.exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "held" if self.exited else "timeout"
            if not self._pump(remaining):
                return "output"
        return None

    def stop(self) -> None:
        """End the whole process group: SIGTERM, the grace period, then SIGKILL."""
        if not self.exited:
            _kill_group(self.proc.pid, signal.SIGTERM)
            end = time.monotonic() + self.grace_s
            while not self.exited and (remaining := end - time.monotonic()) > 0:
                # Keep reading stderr: a program cleaning up may still write to it.
                self._pump(remaining, keep_stdout=False)
        _kill_group(self.proc.pid, signal.SIGKILL)


def _run(
    argv: Sequence[str],
    *,
    executable: str,
    timeout_s: float,
    max_output: int,
    tail: int,
    grace_s: float,
) -> _Ran:
    proc = subprocess.Popen(
        list(argv),
        executable=executable,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, to end everything it starts
        close_fds=True,
        env=_child_environment(),
    )
    try:
        runner = _Runner(proc, max_output=max_output, tail=tail, grace_s=grace_s)
    except BaseException:
        _kill_group(proc.pid, signal.SIGKILL)  # no reader, no orphan
        proc.communicate()
        raise
    problem: str | None = "interrupted"
    try:
        problem = runner.run(timeout_s)
    finally:
        # Also on an exception here (KeyboardInterrupt in `pywats convert`): no orphan.
        if problem is not None:
            runner.stop()
        runner.close()
        proc.wait()
    return _Ran(
        returncode=proc.returncode,
        stdout=bytes(runner.stdout),
        stderr_tail=bytes(runner.stderr[-tail:]) if tail else b"",
        stderr_cut=runner.stderr_cut or len(runner.stderr) > tail,
        problem=problem,
    )


@attrs.frozen
class _Stderr:
    """The end of the program's stderr, as lines to show."""

    lines: tuple[str, ...]
    cut: bool
    """Whether earlier output was dropped (only the last bytes are kept)."""

    @classmethod
    def of(cls, tail: bytes, cut: bool) -> _Stderr:
        """Decode ``tail`` for people: escape sequences and control characters removed."""
        if cut:
            # Cut mid-stream: drop the partial first line (or at least a partial character).
            newline = tail.find(b"\n")
            tail = tail[newline + 1 :] if newline >= 0 else tail.lstrip(bytes(range(0x80, 0xC0)))
        text = decode_auto(tail)  # guessed (UTF-8, else cp1252/Latin-1): never fails
        lines = [
            _CONTROL.sub("?", _ANSI_ESCAPE.sub("", line)).rstrip() for line in text.splitlines()
        ]
        while lines and not lines[-1]:
            lines.pop()
        while lines and not lines[0]:
            lines.pop(0)
        return cls(tuple(lines), cut)

    def explain(self, summary: str) -> str:
        """``summary``, then these lines (indented), for the reason and the sidecar."""
        if not self.lines:
            return f"{summary}; stderr was empty"
        head = "stderr (last lines):" if self.cut else "stderr:"
        return "\n".join([summary, head, *(f"  {line}" for line in self.lines)])


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@attrs.frozen
class ProcessConverter:
    """A converter that runs a program on each file and reads the WSJF it prints.

    ``command`` is the argument list as configured (``{path}`` in any argument is the
    file); ``program`` the executable it was resolved to at start-up (an absolute path).
    Build it with :func:`load_process_converter`, which checks the program.
    """

    name: str
    command: tuple[str, ...]
    program: str
    patterns: tuple[str, ...]
    timeout_s: float = defaults.PROCESS_TIMEOUT_S
    max_output_bytes: int = defaults.PROCESS_MAX_OUTPUT_BYTES
    stderr_tail_bytes: int = defaults.PROCESS_STDERR_TAIL_BYTES
    kill_grace_s: float = defaults.PROCESS_KILL_GRACE_S
    version: str = "1.0"
    """The version of this adapter (the program's own is not known to pywats)."""

    # No ``sniff``: what a program reads is known only from its entry's ``patterns``, so
    # it is chosen by pattern (pywats.converters.sniffing), never by content.

    def argv(self, path: Path) -> list[str]:
        """The arguments the program gets for the file at ``path``."""
        where = os.path.abspath(path)
        return [argument.replace(PATH_PLACEHOLDER, where) for argument in self.command]

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """Run the program on ``source.path`` and read the reports it prints on stdout."""
        shown = repr(self.command[0])
        try:
            ran = _run(
                self.argv(source.path),
                executable=self.program,
                timeout_s=self.timeout_s,
                max_output=self.max_output_bytes,
                tail=self.stderr_tail_bytes,
                grace_s=self.kill_grace_s,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConversionError(self.name, f"cannot run {shown}: {reason}") from None
        stderr = _Stderr.of(ran.stderr_tail, ran.stderr_cut)
        timeout = f"{self.timeout_s:g} s, timeout_s"
        if ran.problem == "timeout":
            self._fail(
                stderr,
                f"{shown} did not finish within the timeout ({timeout}); it and every "
                "process it started were killed",
            )
        if ran.problem == "held":
            self._fail(
                stderr,
                f"{shown} exited, but a process it started kept its output open until the "
                f"timeout ({timeout})",
            )
        if ran.problem == "output":
            self._fail(
                stderr,
                f"{shown} printed more than {self.max_output_bytes} bytes on stdout "
                "(max_output_bytes); it was killed",
            )
        if ran.returncode < 0:
            self._fail(stderr, f"{shown} was killed by {_signal_name(-ran.returncode)}")
        if ran.returncode != 0:
            self._fail(stderr, f"{shown} exited with status {ran.returncode}")
        return self._reports(shown, ran.stdout, stderr, source, context)

    def _fail(self, stderr: _Stderr, summary: str, *, path: str = "") -> NoReturn:
        raise ConversionError(self.name, stderr.explain(summary), path=path)

    def _reports(
        self,
        shown: str,
        stdout: bytes,
        stderr: _Stderr,
        source: Source,
        context: ConversionContext,
    ) -> list[Report]:
        if not stdout.strip():
            self._fail(stderr, f"{shown} exited with status 0 but printed nothing on stdout")
        wsjf = WsjfConverter()
        # A report printed without an id gets one derived from the source file (not from
        # the program's output, which may hold a time stamp), as every converter does.
        ids = ReportIds(source.data, source.companions)
        try:
            # JSON text: UTF-8, -16 or -32, a byte-order mark allowed (json detects which).
            return wsjf.convert_json(stdout, context, ids)
        except MalformedInputError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, json.JSONDecodeError) and cause.msg == "Extra data"):
                excerpt = decode_auto(stdout[:200]).strip()[:60]
                self._fail(
                    stderr, f"{shown} printed no WSJF on stdout: {exc} (it begins {excerpt!r})"
                )
        except ReportError as exc:
            self._fail(
                stderr,
                f"{shown} printed a report that is not valid WSJF: {exc}",
                path=getattr(exc, "path", ""),
            )
        # More than one JSON value: JSON lines, one report (or array) per line.
        try:
            text = stdout.decode(sniff_encoding(stdout, "utf-8"))
        except UnicodeDecodeError as exc:
            line = stdout[: exc.start].count(b"\n") + 1
            self._fail(stderr, f"{shown} printed text that is not UTF-8 on stdout line {line}")
        reports: list[Report] = []
        for number, line_text in enumerate(text.splitlines(), 1):
            if not line_text.strip():
                continue
            try:
                reports.extend(
                    wsjf.convert_json(line_text.encode(), context, ids, first=len(reports))
                )
            except ReportError as exc:
                self._fail(
                    stderr,
                    f"{shown} printed no valid WSJF on stdout line {number}: {exc}",
                    path=getattr(exc, "path", ""),
                )
        return reports


def _program_problem(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"program {str(path)!r} does not exist"
    except OSError as exc:
        return f"program {str(path)!r} cannot be looked at: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return f"{str(path)!r} is a folder, not a program"
    if not stat.S_ISREG(mode):
        return f"{str(path)!r} is not a regular file"
    if not os.access(path, os.X_OK):
        return (
            f"program {str(path)!r} is not executable (chmod +x it, or run it through its "
            'interpreter: ["python3", "script.py", "{path}"])'
        )
    return None


def resolve_program(command: Sequence[str], *, key: str) -> str:
    """The absolute path of the program ``command`` runs; ConfigError under ``key`` if none.

    A program with a ``/`` is a path (relative ones are taken from the working directory;
    the config layer anchors them to the config file's folder first); a bare name is looked
    up on ``$PATH`` now, at start-up, so a later change of ``$PATH`` changes nothing.
    """
    if not command or not command[0]:
        raise ConfigError(key, 'must name a program: an array like ["/opt/acme/convert", "{path}"]')
    program = command[0]
    if "/" in program:
        path = Path(os.path.abspath(program))
        problem = _program_problem(path)
        if problem is not None:
            raise ConfigError(key, problem)
        return str(path)
    found = shutil.which(program)
    if found is None:
        search = os.environ.get("PATH", os.defpath)
        raise ConfigError(key, f"program {program!r} is not found on PATH ({search})")
    return os.path.abspath(found)


def check_command(command: Sequence[str]) -> str | None:
    """Why ``command`` cannot be a converter command (without looking at the disk), or None."""
    if not command:
        return (
            'must not be empty: give the program and its arguments, ["/opt/acme/convert", "{path}"]'
        )
    if not command[0]:
        return "the program (the first element) must not be empty"
    for argument in command:
        if "\x00" in argument:
            return f"{argument!r} contains a NUL character"
    if not any(PATH_PLACEHOLDER in argument for argument in command[1:]):
        return (
            f"no argument holds {PATH_PLACEHOLDER}, so the program would not be told which file "
            f'to convert (e.g. ["{command[0]}", "{PATH_PLACEHOLDER}"])'
        )
    return None


def load_process_converter(
    command: Sequence[str],
    *,
    patterns: Sequence[str],
    key: str,
    timeout_s: float | None = None,
    max_output_bytes: int | None = None,
    label: str | None = None,
) -> LoadedConverter:
    """A :class:`ProcessConverter` for ``command``, checked as start-up checks it.

    ``key`` is the entry's key path (``converters[2]``); a problem with the command or its
    program is a ConfigError under ``<key>.command``.
    """
    command_key = f"{key}.command"
    problem = check_command(command)
    if problem is not None:
        raise ConfigError(command_key, problem)
    if not patterns:
        raise ConfigError(f"{key}.patterns", "a command entry needs its file-name globs")
    program = resolve_program(command, key=command_key)
    name = label or command_label(command)
    converter = ProcessConverter(
        name=name,
        command=tuple(command),
        program=program,
        patterns=tuple(patterns),
        timeout_s=defaults.PROCESS_TIMEOUT_S if timeout_s is None else timeout_s,
        max_output_bytes=(
            defaults.PROCESS_MAX_OUTPUT_BYTES if max_output_bytes is None else max_output_bytes
        ),
    )
    return LoadedConverter(name=name, spec=shlex.join(command), converter=converter, arguments={})
