"""``pywats submit FILE``: hand a file to a running instance and say what became of it.

The file is copied into the watch folder of the entry that takes its name (``--folder``
names one), the way test equipment should write: whole under a hidden name, then renamed,
never over a file that is there; the companions its converter names go first (Klippel's
result folder beside its header), the file last. From there the service treats it like
any other file (conversion, the queue, the post-action, the error folder); the originals
stay where they are. The command subscribes to the instance's events before it places
the copy and waits (``--timeout-s``, default 60) for the file's outcome, or with
``--until uploaded`` for the server's answer to each of its reports; ``--until placed``
returns once the copy is in.

Exit codes as :mod:`pywats.cli.control`: 0 queued (or uploaded), 1 not converted, refused
by the server, or no outcome in time (the file or its reports stay where the message
says), 2 usage (no such file, no watch folder takes it, a name already waiting there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from pywats.cli.control import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_instance, run_client
from pywats.errors import ConfigError
from pywats.rpc import wire
from pywats.rpc.client import Notifications, RpcClient
from pywats.watcher import is_temporary, matches

__all__ = ["Waiting", "choose_folder", "companions_of", "register"]

UNTIL = ("placed", "queued", "uploaded")
DEFAULT_TIMEOUT_S = 60.0
LISTED_MAX = 10
"""Report ids a line names at most; past that, a count (a CSV file may hold thousands)."""
UPLOADED = "uploaded"
"""A report's answer when the server took it (else the refusal's text)."""


class SubmitError(Exception):
    """A submission refused before anything was placed (exit code 2)."""


def _listed(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:LISTED_MAX])
    return shown if len(ids) <= LISTED_MAX else f"{shown} and {len(ids) - LISTED_MAX} more"


def _takes(entry: dict[str, Any], name: str) -> bool:
    """Whether the entry's patterns (as ``converters.list`` gives them) take ``name``."""
    return matches(name, entry.get("patterns") or ("*",))


def _entries_text(entries: Sequence[dict[str, Any]]) -> str:
    return "; ".join(f"{e['name']}: {', '.join(e.get('patterns') or ['*'])}" for e in entries)


def choose_folder(
    entries: Sequence[dict[str, Any]], name: str, wanted: str | None
) -> dict[str, Any]:
    """The watch folder entry (as ``converters.list`` gives them) a file named ``name``
    goes to: ``wanted``, else the one enabled entry, or entries sharing one folder, whose
    patterns take the name. The pipeline itself then picks among entries that share the
    folder, as it does for every file.

    Raises:
        SubmitError: no entry, or several folders, take the name; or ``wanted`` does not
            exist, is disabled, or does not take the name (the file would wait forever).
    """
    if is_temporary(name):
        raise SubmitError(
            f"{name!r} is a temporary name (it starts with '.' or '~' or ends with .tmp):"
            " no watch folder takes it; rename the file"
        )
    if wanted is not None:
        chosen = next((e for e in entries if e["name"] == wanted), None)
        if chosen is None:
            names = ", ".join(e["name"] for e in entries) or "none"
            raise SubmitError(f"no watch folder entry {wanted!r} (entries: {names})")
        if not chosen["enabled"]:
            raise SubmitError(
                f"entry {wanted!r} is disabled: a file put there waits until"
                f" `pywats converters enable {wanted}`"
            )
        if not _takes(chosen, name):
            raise SubmitError(
                f"entry {wanted!r} takes only {', '.join(chosen['patterns'])}: {name!r}"
                " would wait there forever; rename the file or choose another entry"
            )
        return chosen
    taking = [e for e in entries if e["enabled"] and _takes(e, name)]
    folders = {os.path.realpath(e["path"]) for e in taking}
    if not taking:
        raise SubmitError(
            f"no enabled watch folder entry takes {name!r} ({_entries_text(entries) or 'none'});"
            " name one with --folder, or rename the file"
        )
    if len(folders) > 1:
        listed = "; ".join(f"{e['name']}: {e['path']}" for e in taking)
        raise SubmitError(f"several watch folders take {name!r} ({listed}): name one with --folder")
    return taking[0]


def companions_of(
    entries: Sequence[dict[str, Any]], entry: dict[str, Any], source: Path
) -> list[Path]:
    """The companions beside ``source`` (files or folders) that go with it: those the
    converters of the chosen folder's entries taking its name say belong with it (Klippel's
    result folder beside its header) and that are there. None when a converter cannot be
    loaded here (a converter given by module path in the config): the file goes alone."""
    # Imported here: every converter module, and only for this command.
    from pywats.converters.registry import discover
    from pywats.pipeline.steps import companions_quietly

    folder = os.path.realpath(entry["path"])
    wanted = [entry["converter"]]
    for other in entries:
        if (
            other["enabled"]
            and os.path.realpath(other["path"]) == folder
            and _takes(other, source.name)
            and other["converter"] not in wanted
        ):
            wanted.append(other["converter"])
    try:
        found = discover()
    except ConfigError:
        return []
    names: list[str] = []
    for converter in wanted:
        cls = found.get(converter)
        if cls is not None:
            names.extend(n for n in companions_quietly(cls(), source) if n not in names)
    return [source.parent / n for n in names if os.path.lexists(source.parent / n)]


def _where(path: str) -> tuple[str, str]:
    """A path as (its folder with symlinks resolved, its name): how the service's events
    and the placed copy are compared (the service may name the folder another way)."""
    return os.path.realpath(os.path.dirname(path)), os.path.basename(path)


@attrs.define
class Waiting:
    """What ``submit`` waits for, fed the notifications as they come (sans-IO).

    ``feed`` takes one notification and returns the lines to print; once :attr:`code` is
    not None, the wait is over and that is the exit code.
    """

    target: str
    """The placed copy's path."""
    until: str
    """``queued`` (the file's outcome) or ``uploaded`` (also every report's answer)."""
    code: int | None = None
    outcome: str | None = None
    """The file's: ``converted``, ``duplicate``, ``rejected``, ``left`` or ``vanished``."""
    detail: str = ""
    report_ids: tuple[str, ...] | None = None
    answers: dict[str, str] = attrs.field(factory=dict)
    """Report id -> the server's answer (:data:`UPLOADED` or the refusal), every report's
    until the file's outcome says which are ours."""
    retrying: set[str] = attrs.field(factory=set)
    gap: bool = False
    _key: tuple[str, str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._key = _where(self.target)  # once: each file event is compared with it

    def feed(self, method: str, params: dict[str, Any]) -> list[str]:
        """The lines a notification gives, and whether it ends the wait (:attr:`code`)."""
        if method == wire.GAP:
            if self.gap:
                return []
            self.gap = True
            return ["some events were dropped (this reader fell behind): the outcome may be missed"]
        if method in ("report.uploaded", "report.failed", "report.retrying"):
            return self._report(method, params)
        source = params.get("source")
        if not isinstance(source, str) or _where(source) != self._key:
            return []
        if method == "file.rejected":
            self.code = EXIT_FAILED
            self.outcome, self.detail = "rejected", str(params.get("reason", ""))
            lines = [f"not converted: {params.get('reason', '')}".rstrip()]
            if params.get("error_file"):
                lines.append(f"moved to {params['error_file']}")
            if params.get("sidecar"):
                lines.append(f"why: {params['sidecar']} (pywats files list)")
            return lines
        if method != "file.processed":
            return []
        return self._processed(params)

    def _processed(self, params: dict[str, Any]) -> list[str]:
        outcome = params.get("outcome")
        detail = params.get("detail") or ""
        ids = tuple(str(i) for i in params.get("report_ids") or ())
        self.outcome, self.detail = str(outcome), detail
        if outcome == "converted":
            lines = [f"queued {len(ids)} report(s): {_listed(ids)}"]
            if detail:
                lines.append(f"the file: {detail}")
            self.report_ids = ids
            if self.until != "uploaded" or not ids:
                self.code = EXIT_OK
            else:
                lines.extend(self._settled())
            return lines
        if outcome == "duplicate":
            self.code = EXIT_OK
            return [f"already queued before (the same content): {detail}".rstrip(": ")]
        self.code = EXIT_FAILED
        return [f"not queued ({outcome}): {detail}".rstrip(": ")]

    def _report(self, method: str, params: dict[str, Any]) -> list[str]:
        report_id = str(params.get("report_id"))
        if self.report_ids is not None and report_id not in self.report_ids:
            return []
        if method == "report.retrying":
            # Before the file's outcome it may be another file's report: said once ours.
            if self.report_ids is None or report_id in self.retrying:
                return []
            self.retrying.add(report_id)
            return [f"{report_id}: not uploaded yet, retrying: {params.get('message', '')}"]
        if method == "report.uploaded":
            self.answers[report_id] = UPLOADED
        else:
            self.answers[report_id] = f"refused by the server: {params.get('message', '')}"
        return self._settled() if self.report_ids is not None else []

    def _settled(self) -> list[str]:
        assert self.report_ids is not None
        if not all(i in self.answers for i in self.report_ids):
            return []
        lines = [f"{i}: {self.answers[i]}" for i in self.report_ids]
        failed = [f"{i}: {self.answers[i]}" for i in self.report_ids if self.answers[i] != UPLOADED]
        self.code = EXIT_FAILED if failed else EXIT_OK
        if len(lines) <= LISTED_MAX:
            return lines
        # A file of thousands of reports (one per CSV row): the refusals, and a count.
        return [*failed, f"{len(lines) - len(failed)} of {len(lines)} report(s) uploaded"]

    def summary(self) -> dict[str, Any]:
        """What ``--json`` prints: the file's outcome and each report's answer so far."""
        return {
            "outcome": self.outcome,
            "detail": self.detail,
            "report_ids": list(self.report_ids or ()),
            "answers": {i: self.answers[i] for i in self.report_ids or () if i in self.answers},
        }

    def timed_out(self, seconds: float) -> str:
        """The line for a wait that ran out (the file or its reports are where it says)."""
        if self.report_ids is None:
            return (
                f"no outcome within {seconds:g} s: the file waits in {self.target}"
                " (is the service busy or its folder paused? pywats status)"
            )
        left = [i for i in self.report_ids if i not in self.answers]
        return (
            f"{len(left)} of {len(self.report_ids)} report(s) not uploaded within {seconds:g} s;"
            " they stay queued and are retried (pywats queue list)"
        )


def _say(message: str) -> None:
    print(f"pywats submit: {message}", file=sys.stderr)


def _cmd_submit(args: argparse.Namespace) -> int:
    source = Path(args.file)
    if not source.is_file():
        what = "no such file" if not source.exists() else "not a regular file"
        _say(f"{source}: {what}")
        return EXIT_USAGE
    name = args.name or source.name
    if "/" in name or "\0" in name or name in (".", ".."):
        _say(f"--name {name!r}: give a file name, not a path")
        return EXIT_USAGE

    from pywats.placing import place_group

    async def body(client: RpcClient) -> int:
        entries = await client.call("converters.list")
        try:
            entry = choose_folder(entries, name, args.folder)
        except SubmitError as exc:
            _say(f"{source}: {exc}")
            return EXIT_USAGE
        target = Path(entry["path"]) / name
        companions = await trio.to_thread.run_sync(companions_of, entries, entry, source)
        if companions and name != source.name:
            shown = ", ".join(c.name for c in companions)
            _say(f"{source}: a file with companions ({shown}) keeps its name: drop --name")
            return EXIT_USAGE
        notes = await client.subscribe() if args.until != "placed" else None
        try:
            await trio.to_thread.run_sync(place_group, source, target, companions)
        except FileExistsError as exc:
            _say(
                f"{exc.filename} exists (a file of that name is waiting there): nothing was"
                " submitted; wait for it, or give another name with --name"
            )
            return EXIT_USAGE
        except OSError as exc:
            _say(f"cannot copy {source} into {target.parent}: {exc.strerror or exc}")
            return EXIT_FAILED

        def say(line: str) -> None:
            if not args.json:
                print(line, flush=True)

        for companion in companions:
            say(f"placed {target.parent / companion.name} (a companion, first)")
        say(f"placed {target} (entry {entry['name']})")
        waiting = Waiting(str(target), args.until)
        code = EXIT_OK if notes is None else await _wait(notes, waiting, args.timeout_s, say)
        if args.json:
            placed = {"path": str(target), "entry": entry["name"]}
            print(json.dumps({**placed, **waiting.summary(), "exit": code}, indent=2))
        return code

    return run_client("submit", args.instance, body)


async def _wait(
    notes: Notifications,
    waiting: Waiting,
    seconds: float,
    say: Callable[[str], None],
) -> int:
    """Feed ``waiting`` the notifications for at most ``seconds``: the exit code."""
    with trio.move_on_after(seconds):
        async for note in notes:
            for line in waiting.feed(note.method, dict(note.params)):
                say(line)
            if waiting.code is not None:
                return waiting.code
        _say("the service closed the connection before the file's outcome")
        return EXIT_FAILED
    _say(waiting.timed_out(seconds))
    return EXIT_FAILED


def _timeout(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``submit`` command."""
    parser = subparsers.add_parser(
        "submit",
        help="hand a file to a running instance and wait for what becomes of it",
        description=(
            "Copy FILE into the watch folder that takes it (the original stays) and wait"
            " for its outcome: queued, not converted (and why), or with --until uploaded"
            " the server's answer to each report."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the file to submit")
    add_instance(parser)
    parser.add_argument("--folder", metavar="ENTRY", help="the watch folder entry to give it to")
    parser.add_argument("--name", help="the name it gets in the watch folder (default: its own)")
    parser.add_argument(
        "--until",
        choices=UNTIL,
        default="queued",
        help="wait until the copy is placed, its reports are queued (default), or uploaded",
    )
    parser.add_argument(
        "--timeout-s",
        type=_timeout,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the outcome (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document at the end")
    parser.set_defaults(func=_cmd_submit)
