"""The synchronous steps of the pipeline, each run in a worker thread for many files at once.

Every step takes the files of one batch and returns one result per file, in order, so a
worker pays one thread hand-off per step, not one per file; a file that fails a step
gets its failure as its result, and the others go on. Nothing here touches the store or
trio: the steps read, convert and file away, and :mod:`pywats.pipeline.pipeline` decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from pywats import postaction
from pywats.config import PostAction
from pywats.converters.base import (
    ConversionContext,
    Converter,
    Source,
    name_of,
    run_converter,
)
from pywats.errors import ConversionError, MalformedInputError
from pywats.report import wsjf
from pywats.report.validate import check as check_report
from pywats.store import NewReport

__all__ = [
    "Rejection",
    "convert",
    "convert_many",
    "file_away_many",
    "read_many",
    "reject_many",
    "sidecar_text",
]


Read = postaction.SourceData | postaction.TooBig | OSError | None
"""What reading one file gave: its data, too big, unreadable, or ``None`` for gone."""


class Rejection(Exception):
    """The file cannot become reports; ``reason`` and ``field`` go into the sidecar."""

    def __init__(self, reason: str, *, field: str = "") -> None:
        self.reason = reason
        self.field = field
        super().__init__(reason)


def read_many(
    jobs: Sequence[tuple[Path, int]], budget: int, stopping: Callable[[], bool]
) -> list[Read]:
    """Read ``(path, max_bytes)`` in order until ``budget`` bytes are held or ``stopping()``.

    Returns a result for a prefix of ``jobs`` (at least one), so a batch never holds more
    than about ``budget`` bytes at once and a stop does not read what it will not convert.
    """
    out: list[Read] = []
    held = 0
    for path, max_bytes in jobs:
        if out and (held >= budget or stopping()):
            break
        try:
            got = postaction.read_source(path, max_bytes)
        except (postaction.TooBig, OSError) as exc:
            out.append(exc)
            continue
        if got is not None:
            held += got.size
        out.append(got)
    return out


def convert_many(
    jobs: Sequence[tuple[Converter, ConversionContext, Path, bytes]],
    stopping: Callable[[], bool],
) -> list[list[NewReport] | Rejection | Exception]:
    """Convert files in order: the reports, why they were refused, or a bug, for each.

    Stops early once ``stopping()`` (after at least one): a graceful stop finishes the
    file in hand, not the whole batch.
    """
    out: list[list[NewReport] | Rejection | Exception] = []
    for converter, context, path, data in jobs:
        if out and stopping():
            break
        try:
            out.append(convert(converter, context, path, data))
        except Exception as exc:  # Rejection, or a bug kept for the one file's outcome
            out.append(exc)
    return out


def convert(
    converter: Converter, context: ConversionContext, path: Path, data: bytes
) -> list[NewReport]:
    """Run the converter and turn its reports into what the store keeps.

    Raises:
        Rejection: the converter refused the file, or made reports the server would
            refuse for good (checked here, where the station engineer sees the file).
    """
    name = name_of(converter)
    try:
        reports = run_converter(converter, Source(path, data), context)
    except ConversionError as exc:
        raise Rejection(exc.reason, field=exc.path) from exc
    out: list[NewReport] = []
    many = len(reports) > 1
    for index, report in enumerate(reports):
        # A plugin may skip validate(); the server would refuse the report for good, so
        # refuse it here, where the station engineer sees the file and the field.
        try:
            errors = check_report(report)
        except Exception as exc:
            # Fields of the wrong type (attrs does not check types): a converter bug.
            raise Rejection(
                f"the converter made a report that cannot be checked: {type(exc).__name__}: {exc}"
            ) from exc
        if errors:
            first = errors[0]
            where = f"[{index}].{first.path}".rstrip(".") if many else first.path
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise Rejection(f"the report breaks a WSJF rule: {first.message}{more}", field=where)
        try:
            body = wsjf.dumps(report)
        except MalformedInputError as exc:
            raise Rejection(str(exc)) from exc
        except Exception as exc:
            raise Rejection(
                f"the converter made a report that cannot be written as WSJF: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        out.append(
            NewReport(
                id=report.id,
                body=body,
                pn=report.pn,
                sn=report.sn,
                result=str(report.result),
                start=report.start,
                converter=name,
            )
        )
    seen: set[str] = set()
    for index, new in enumerate(out):
        if new.id in seen:
            raise Rejection(
                f"report id {new.id} appears twice in this file",
                field=f"[{index}].id" if many else "id",
            )
        seen.add(new.id)
    return out


def file_away_many(
    jobs: Sequence[tuple[PostAction, Path, Path, postaction.FileSig]],
) -> list[Path | Exception | None]:
    """Apply ``(action, path, directory, sig)``: the new path, ``None``, or the failure.

    ``None`` is for ``keep`` and ``delete``. Moves share their folder fsyncs
    (:func:`pywats.postaction.move_files`).
    """
    out: list[Path | Exception | None] = [None] * len(jobs)
    moves: list[int] = []
    for index, (action, path, _, sig) in enumerate(jobs):
        if action is PostAction.DELETE:
            try:
                postaction.delete_file(path, expect=sig)
            except Exception as exc:  # SourceChanged, OSError, or a bug: reported per file
                out[index] = exc
        elif action is not PostAction.KEEP:
            moves.append(index)
    if moves:
        moved = postaction.move_files([(jobs[i][1], jobs[i][2], jobs[i][3]) for i in moves])
        for index, result in zip(moves, moved, strict=True):
            out[index] = result
    return out


def reject_many(
    jobs: Sequence[tuple[Path, Path, str, postaction.FileSig | None]],
) -> list[postaction.Placed | Exception]:
    """Move each ``(path, directory, sidecar text, sig)`` to its error folder with a sidecar.

    Returns where each file went, or what stopped it (:class:`~pywats.postaction.SourceChanged`,
    an ``OSError``, or a bug), one file failing not stopping the others.
    """
    out: list[postaction.Placed | Exception] = []
    for path, directory, text, sig in jobs:
        try:
            out.append(postaction.reject_file(path, directory, text, expect=sig))
        except Exception as exc:
            out.append(exc)
    return out


def sidecar_text(
    *,
    folder: str,
    watch: Path,
    converter: Converter,
    source: Path,
    size: int | None,
    reason: str,
    field: str,
    when: datetime,
) -> str:
    """The ``<name>.error.txt`` beside a rejected file: what, where, why, and what to do."""
    indented_reason = "\n           ".join(reason.splitlines() or [""])
    lines = [
        "pywats could not convert this file; it was moved here unchanged.",
        "",
        f"file:      {source}",
        f"size:      {'unknown' if size is None else f'{size} bytes'}",
        f"folder:    {folder} (watching {watch})",
        f"converter: {name_of(converter)} {converter.version}",
        f"time:      {when.isoformat(timespec='seconds')}",
        f"reason:    {indented_reason}",
        f"field:     {field or '-'}",
        "",
        f"To try again, remove the cause and move the file back into {source.parent}.",
        "",
    ]
    return "\n".join(lines)
