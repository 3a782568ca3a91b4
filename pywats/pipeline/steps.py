"""The synchronous steps of the pipeline, each run in a worker thread for many files at once.

Every step takes the files of one batch and returns one result per file, in order, so a
worker pays one thread hand-off per step, not one per file; a file that fails a step
gets its failure as its result, and the others go on. Nothing here touches the store or
trio: the steps read, convert and file away, and :mod:`pywats.pipeline.pipeline` decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import attrs

from pywats import defaults, postaction
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
from pywats.store import NewReport

__all__ = [
    "CompanionData",
    "Group",
    "Rejection",
    "Waiting",
    "companion_names",
    "companions_quietly",
    "convert",
    "convert_many",
    "file_away_many",
    "gather_companions",
    "gather_many",
    "read_companions_now",
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


# --- Companions (files and folders a converter names as belonging with a file) ----------


def companion_names(converter: Converter, path: Path) -> tuple[str, ...]:
    """The names of ``path``'s companions, as ``converter.companions(path)`` gives them.

    Empty for a converter without ``companions``. Each must be beside ``path`` (in its
    folder) and not ``path`` itself; names are given once, in the converter's order.

    Raises:
        Rejection: the converter's ``companions`` failed or named a path that is not
            beside the file (a bug in the converter, told in the sidecar).
    """
    method = getattr(converter, "companions", None)
    if not callable(method):
        return ()
    try:
        answer = list(method(path))
    except Exception as exc:
        raise Rejection(
            f"converter crashed naming the companions of the file: {type(exc).__name__}: {exc}"
        ) from exc
    names: list[str] = []
    for item in answer:
        if not isinstance(item, Path | str):
            raise Rejection(f"the converter named a companion that is not a path: {item!r}")
        companion = Path(item)
        if companion.parent != path.parent or companion.name in ("", ".", "..", path.name):
            raise Rejection(
                f"the converter named {str(companion)!r} as a companion of the file; a "
                f"companion must be beside it in {path.parent}"
            )
        if companion.name not in names:
            names.append(companion.name)
    return tuple(names)


def companions_quietly(converter: Converter, path: Path) -> tuple[str, ...]:
    """:func:`companion_names`, or none when that fails (for filing away and the watcher,
    where a converter bug is told elsewhere)."""
    try:
        return companion_names(converter, path)
    except Rejection:
        return ()


@attrs.frozen
class CompanionData:
    """Companions that were there, had settled, and were read."""

    state: postaction.Companions
    data: dict[str, bytes] = attrs.field(repr=False)


@attrs.frozen
class Waiting:
    """Companions not ready yet (missing, or changed lately): look again after a while."""

    state: postaction.Companions | None
    """What was seen (to compare with the next look), if anything could be seen."""
    why: str
    """Why they are not ready, for the log and, when waiting ends, the sidecar."""


@attrs.frozen
class Group:
    """What to file away together with a file: its companions' names, and what was read
    of them (None when they were not read: a duplicate, or a file rejected before)."""

    names: tuple[str, ...]
    state: postaction.Companions | None = None


def _listed(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def gather_companions(
    path: Path,
    names: Sequence[str],
    previous: postaction.Companions | None,
    settle_s: float,
    *,
    max_members: int | None = None,
    max_bytes: int | None = None,
) -> CompanionData | Waiting:
    """Read ``path``'s companions ``names`` if they are there and have settled.

    Settled means unchanged since ``previous`` (the last look, ``settle_s`` or more ago),
    or, at a first look, that nothing in them was modified in the last ``settle_s``
    seconds (so a folder written long before its header arrived is read at once).

    Raises:
        Rejection: too many members or bytes (the limits of :mod:`pywats.defaults`), or
            a companion cannot be read.
    """
    max_members = defaults.COMPANION_MAX_MEMBERS if max_members is None else max_members
    max_bytes = defaults.COMPANION_MAX_BYTES if max_bytes is None else max_bytes
    try:
        state = postaction.companion_state(path.parent, names, max_members)
    except postaction.CompanionsTooLarge as exc:
        raise Rejection(f"{exc} (COMPANION_MAX_MEMBERS)") from exc
    except OSError as exc:
        raise Rejection(f"cannot read its companion {exc.filename}: {exc.strerror or exc}") from exc
    if state.missing:
        missing = _listed(state.missing)
        return Waiting(state, f"its companion {missing} is missing (it belongs beside the file)")
    if state.size > max_bytes:
        raise Rejection(
            f"its companions hold {state.size} bytes, more than the limit ({max_bytes}, "
            "COMPANION_MAX_BYTES)"
        )
    same = previous is not None and (previous.members, previous.missing) == (
        state.members,
        state.missing,
    )
    if not same and settle_s > 0:
        age_s = (time.time_ns() - state.newest_mtime_ns) / 1e9
        if age_s < settle_s:  # or in the future: a clock ahead of ours
            return Waiting(state, f"its companion {_listed(names)} is still being written")
    try:
        data = postaction.read_companions(state, max_bytes)
    except postaction.CompanionChanged as exc:
        return Waiting(None, f"its companion {_listed(names)} is still being written ({exc})")
    except postaction.CompanionsTooLarge as exc:  # pragma: no cover - checked above
        raise Rejection(str(exc)) from exc
    except OSError as exc:
        raise Rejection(f"cannot read its companion {exc.filename}: {exc.strerror or exc}") from exc
    return CompanionData(state, data)


def gather_many(
    jobs: Sequence[tuple[Path, tuple[str, ...], postaction.Companions | None, float]],
    budget: int,
) -> list[CompanionData | Waiting | Rejection | Exception | None]:
    """:func:`gather_companions` for ``(path, names, previous, settle_s)``, in order.

    Once the companions read hold ``budget`` bytes (after at least one file), the rest
    get ``None``: not read now, so a batch never holds much more than ``budget`` (plus
    one file's companions, at most ``COMPANION_MAX_BYTES``).
    """
    out: list[CompanionData | Waiting | Rejection | Exception | None] = []
    held = 0
    for path, names, previous, settle_s in jobs:
        if held >= budget:
            out.append(None)
            continue
        try:
            got = gather_companions(path, names, previous, settle_s)
        except Exception as exc:  # Rejection, or a bug kept for the one file's outcome
            out.append(exc)
            continue
        if isinstance(got, CompanionData):
            held += got.state.size
        out.append(got)
    return out


def read_companions_now(converter: Converter, path: Path) -> dict[str, bytes]:
    """The companions of ``path`` as :attr:`Source.companions`, read at once (no waiting:
    for ``pywats convert`` and tests). Empty for a converter without companions.

    Raises:
        Rejection: a companion is missing, too large, or cannot be read (the reason says
            which).
    """
    names = companion_names(converter, path)
    if not names:
        return {}
    got = gather_companions(path, names, None, 0.0)
    if isinstance(got, Waiting):
        raise Rejection(got.why)
    return got.data


# --- Converting ------------------------------------------------------------------------


def convert_many(
    jobs: Sequence[tuple[Converter, ConversionContext, Path, bytes, Mapping[str, bytes]]],
    stopping: Callable[[], bool],
) -> list[list[NewReport] | Rejection | Exception]:
    """Convert files in order: the reports, why they were refused, or a bug, for each.

    Each job is ``(converter, context, path, data, companions)``. Stops early once
    ``stopping()`` (after at least one): a graceful stop finishes the file in hand, not
    the whole batch.
    """
    out: list[list[NewReport] | Rejection | Exception] = []
    for converter, context, path, data, companions in jobs:
        if out and stopping():
            break
        try:
            out.append(convert(converter, context, path, data, companions))
        except Exception as exc:  # Rejection, or a bug kept for the one file's outcome
            out.append(exc)
    return out


def convert(
    converter: Converter,
    context: ConversionContext,
    path: Path,
    data: bytes,
    companions: Mapping[str, bytes] | None = None,
) -> list[NewReport]:
    """Run the converter and turn its reports into what the store keeps.

    Raises:
        Rejection: the converter refused the file, or made reports the server would
            refuse for good (checked by :func:`run_converter`, once per report, and
            told here, where the station engineer sees the file and the field).
    """
    name = name_of(converter)
    source = Source(path, data, companions if companions is not None else {})
    try:
        reports = run_converter(converter, source, context)
    except ConversionError as exc:
        raise Rejection(exc.reason, field=exc.path) from exc
    out: list[NewReport] = []
    many = len(reports) > 1
    for report in reports:
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
    groups: Sequence[Group | None] | None = None,
) -> list[Path | Exception | None]:
    """Apply ``(action, path, directory, sig)``: the new path, ``None``, or the failure.

    ``None`` is for ``keep`` and ``delete``. Moves share their folder fsyncs
    (:func:`pywats.postaction.move_files`). ``groups`` (one per job, None for a file
    alone) names each file's companions, which are moved or deleted with it
    (:func:`pywats.postaction.move_group`, :func:`~pywats.postaction.delete_group`).
    """
    out: list[Path | Exception | None] = [None] * len(jobs)
    moves: list[int] = []
    for index, (action, path, directory, sig) in enumerate(jobs):
        group = groups[index] if groups is not None else None
        if group is not None and group.names and action is not PostAction.KEEP:
            try:
                if action is PostAction.DELETE:
                    postaction.delete_group(
                        path, group.names, expect=sig, expect_companions=group.state
                    )
                else:
                    out[index] = postaction.move_group(
                        path, directory, group.names, expect=sig, expect_companions=group.state
                    )
            except Exception as exc:  # SourceChanged, OSError, or a bug: reported per file
                out[index] = exc
        elif action is PostAction.DELETE:
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
    groups: Sequence[Group | None] | None = None,
) -> list[postaction.Placed | Exception]:
    """Move each ``(path, directory, sidecar text, sig)`` to its error folder with a sidecar.

    Returns where each file went, or what stopped it (:class:`~pywats.postaction.SourceChanged`,
    an ``OSError``, or a bug), one file failing not stopping the others. ``groups`` (one
    per job, None for a file alone) names each file's companions, which go with it
    (:func:`pywats.postaction.reject_group`).
    """
    out: list[postaction.Placed | Exception] = []
    for index, (path, directory, text, sig) in enumerate(jobs):
        group = groups[index] if groups is not None else None
        try:
            if group is not None and group.names:
                out.append(
                    postaction.reject_group(
                        path,
                        directory,
                        text,
                        group.names,
                        expect=sig,
                        expect_companions=group.state,
                    )
                )
            else:
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
    companions: Sequence[str] = (),
) -> str:
    """The ``<name>.error.txt`` beside a rejected file: what, where, why, and what to do.

    ``companions`` (names beside the file that go with it) are listed, so the station
    engineer moves them back together.
    """
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
    ]
    if companions:
        lines.append(f"with:      {_listed(companions)} (its companions, moved with it if there)")
    again = "the file" if not companions else "the file and its companions"
    lines += [
        "",
        f"To try again, remove the cause and move {again} back into {source.parent}.",
        "",
    ]
    return "\n".join(lines)
