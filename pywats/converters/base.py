"""The converter API: what a converter is, what it is given, and how it is run.

A converter is a class with ``name``, ``version``, ``patterns`` (globs matched against
the file name) and a synchronous, pure ``convert(source, context) -> list[Report]``: it
reads only its source and returns reports; the pipeline queues them. It runs in a worker
thread, so it must not touch trio, and one instance may convert several files at once, so
it keeps no state between calls.

A converter that takes arguments declares them as a frozen attrs class named
``Arguments`` on the converter class. The raw table from the config is structured into it
at start-up by :func:`structure_arguments` (unknown keys refused, types strict), so a typo
stops the service with the key path instead of failing on the first file; at convert time
``context.arguments`` holds the structured instance.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import re
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import (
    Any,
    Literal,
    Protocol,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    runtime_checkable,
)

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from pywats.errors import ConfigError, ConversionError, ReportError, ReportValidationError
from pywats.report.model import Report
from pywats.report.validate import validate

T = TypeVar("T")


@attrs.frozen
class Source:
    """A file to convert: its path, the bytes read from it, and its companions' bytes.

    ``companions`` holds the files that belong with this one, for a converter that names
    them (:meth:`Converter.companions`, optional): every regular file of each companion
    (a companion folder's files at any depth), read by the pipeline, keyed by its path
    relative to the folder ``path`` is in, with ``/`` separators
    (``"DUT 1 UTC+0200/Impedance-imp.txt"``). It is empty for converters without
    companions (and for an empty companion folder).
    """

    path: Path
    data: bytes
    companions: Mapping[str, bytes] = attrs.field(factory=dict)


@attrs.frozen
class StationDefaults:
    """Header values a converter uses when its input does not carry them."""

    machine_name: str = "pywats-station"
    location: str = "unknown"
    purpose: str = "Production"


@attrs.frozen
class ConversionContext:
    """What a converter is given besides its source.

    ``arguments`` is the converter's structured ``Arguments`` instance when the converter
    was loaded by :func:`pywats.converters.load_converter`; a converter run directly (tests,
    ``pywats convert``) may get a plain mapping instead, which :meth:`arguments_as` turns
    into the ``Arguments`` class with its defaults.
    """

    station: StationDefaults = StationDefaults()
    arguments: Any = attrs.field(factory=dict)

    def arguments_as(self, cls: type[T]) -> T:
        """``arguments`` as an instance of ``cls`` (structured here if it is a mapping).

        Raises ConfigError (key ``arguments.<key>``) if a mapping does not fit ``cls``.
        """
        if isinstance(self.arguments, cls):
            return self.arguments
        if isinstance(self.arguments, Mapping):
            return structure_arguments(cls, self.arguments, key="arguments")
        raise ConfigError(
            "arguments",
            f"expected {cls.__name__} or a table, got {type(self.arguments).__name__}",
        )


@runtime_checkable
class Converter(Protocol):
    """A source-file-to-report converter. Plain class attributes satisfy the properties.

    Two methods are optional (not part of the protocol, so a converter without them is
    still one; the pipeline looks them up with ``getattr``):

    ``sniff(head: bytes, name: str) -> str | None``
        A static method: a short reason when the first bytes of a file look like this
        format, else None (see :mod:`pywats.converters.sniffing`).

    ``companions(self, path: Path) -> Sequence[Path]``
        The files or folders that belong with ``path`` and make one unit with it (Klippel
        QC: the result folder named like the header without ``.txt``). Pure: it computes
        paths and never touches the disk. Each must be beside ``path`` (in the same
        folder). The pipeline waits until they exist and have stopped changing, reads
        them (within ``pywats.defaults.COMPANION_MAX_MEMBERS`` and
        ``COMPANION_MAX_BYTES``) into :attr:`Source.companions`, and applies the
        post-action (move, delete, or the error folder) to them together with ``path``.
        The watcher never takes a companion, or a file inside one, as a file of its own.
    """

    @property
    def name(self) -> str:
        """Unique name, used in the config and in every error message."""
        ...

    @property
    def version(self) -> str:
        """The converter's own version, recorded with each report it makes."""
        ...

    @property
    def patterns(self) -> Sequence[str]:
        """File-name globs the converter takes (``*.json``), matched case-insensitively."""
        ...

    def convert(self, source: Source, context: ConversionContext) -> list[Report]:
        """Turn ``source`` into one or more reports, or raise ConversionError/ReportError."""
        ...


def name_of(converter: Converter | type[Converter]) -> str:
    """A converter's ``name``, from an instance or from its class."""
    name: str = cast(Any, converter).name
    return name


def patterns_of(converter: Converter | type[Converter]) -> Sequence[str]:
    """A converter's ``patterns``, from an instance or from its class."""
    patterns: Sequence[str] = cast(Any, converter).patterns
    return patterns


def matches(converter: Converter | type[Converter], path: Path) -> bool:
    """Whether ``path``'s name matches one of the converter's globs (case-insensitive)."""
    name = path.name.lower()
    return any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns_of(converter))


def run_converter(converter: Converter, source: Source, context: ConversionContext) -> list[Report]:
    """Run ``converter`` on ``source``; every failure comes out as one ConversionError.

    A converter may be third-party code with bugs: anything it raises is translated here,
    at the boundary, so the caller has one error type with the converter's name in it.

    This is also the one place that makes sure every report meets the WSJF rules
    (:func:`pywats.report.validate.validate`), for the pipeline, ``pywats convert`` and
    every other caller alike: the server would refuse a report that breaks one for good.
    A report the converter validated itself (with its own words for where it came from)
    is not checked a second time.
    """
    try:
        reports = converter.convert(source, context)
    except ConversionError:
        raise
    except ReportValidationError as exc:
        raise ConversionError(converter.name, str(exc), path=exc.path) from exc
    except ReportError as exc:
        raise ConversionError(converter.name, str(exc), path=getattr(exc, "path", "")) from exc
    except ConfigError as exc:
        raise ConversionError(converter.name, f"bad arguments: {exc}", path=exc.key) from exc
    except Exception as exc:
        raise ConversionError(
            converter.name, f"converter crashed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(reports, list) or not all(isinstance(r, Report) for r in reports):
        raise ConversionError(converter.name, "convert() must return a list of Report")
    if not reports:
        raise ConversionError(converter.name, "the file holds no report")
    many = len(reports) > 1
    for index, report in enumerate(reports):
        try:
            validate(report)
        except ReportValidationError as exc:
            first = exc.errors[0]
            where = f"[{index}].{first.path}".rstrip(".") if many else first.path
            more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
            raise ConversionError(
                converter.name, f"the report breaks a WSJF rule: {first.message}{more}", path=where
            ) from exc
        except Exception as exc:
            # Fields of the wrong type (attrs does not check types): a converter bug.
            raise ConversionError(
                converter.name,
                f"the converter made a report that cannot be checked: {type(exc).__name__}: {exc}",
            ) from exc
    return reports


# --- Arguments ----------------------------------------------------------------------------


class ArgumentError(ValueError):
    """A converter's arguments do not fit together; raise it from ``__attrs_post_init__``.

    ``key`` is relative to the arguments table (``steps[2].lowColumn``) and ends up in the
    ConfigError's key path, so the user is told exactly which setting to change.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)


class _ValueError(ValueError):
    """A value of the wrong type; the message is for people."""


_TOML_TYPES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    tuple: "an array",
    dict: "a table",
    type(None): "nothing",
}


def _kind(value: object) -> str:
    return _TOML_TYPES.get(type(value), type(value).__name__)


def _structure_str(value: object, t: type) -> str:
    if t is not str and _is_enum(t):
        # singledispatch sends str-based enums (StrEnum, CompOp) here, ahead of the
        # predicate hooks, so the enum check has to happen in this hook.
        result: str = _enum_hook(t)(value, t)
        return result
    if not isinstance(value, str):
        raise _ValueError(f"expected a string, got {_kind(value)}")
    return value


def _structure_int(value: object, t: type) -> int:
    if t is not int and _is_enum(t):
        result: int = _enum_hook(t)(value, t)
        return result
    if isinstance(value, bool) or not isinstance(value, int):
        raise _ValueError(f"expected an integer, got {_kind(value)}")
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _ValueError(f"expected a number, got {_kind(value)}")
    if not math.isfinite(value):
        raise _ValueError("expected a finite number")
    return float(value)


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise _ValueError(f"expected true or false, got {_kind(value)}")
    return value


def _is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


def _literal_hook(t: Any) -> Callable[[object, type], object]:
    allowed = get_args(t)
    words = ", ".join(repr(a) for a in allowed)

    def structure(value: object, _: type) -> object:
        for option in allowed:
            if type(value) is type(option) and value == option:
                return option
        raise _ValueError(f"{value!r} is not one of {words}")

    return structure


def _is_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


def _enum_hook(t: type[enum.Enum]) -> Callable[[object, type], Any]:
    words = ", ".join(str(m.value) for m in t)

    def structure(value: object, _: type) -> Any:
        for member in t:
            if type(value) is type(member.value) and value == member.value:
                return member
        raise _ValueError(f"{value!r} is not one of {words}")

    return structure


def _is_optional(t: Any) -> bool:
    return get_origin(t) in (types.UnionType, Union) and type(None) in get_args(t)


def _optional_hook(converter: cattrs.Converter, t: Any) -> Callable[[object, type], object]:
    rest = [a for a in get_args(t) if a is not type(None)]
    if len(rest) != 1:
        raise TypeError(f"argument type {t} is not supported (one type or None)")
    (inner,) = rest

    def structure(value: object, _: type) -> object:
        if value is None:
            return None
        return converter.structure(value, inner)

    return structure


def _is_sequence(t: Any) -> bool:
    return get_origin(t) in (list, tuple, Sequence) and len(get_args(t)) in (1, 2)


def _sequence_hook(converter: cattrs.Converter, t: Any) -> Callable[[object, type], object]:
    args = get_args(t)
    if get_origin(t) is tuple and (len(args) != 2 or args[1] is not Ellipsis):
        raise TypeError(f"argument type {t} is not supported (use tuple[X, ...])")
    item_type = args[0]
    as_tuple = get_origin(t) is not list

    def structure(value: object, _: type) -> object:
        if not isinstance(value, list | tuple):
            raise _ValueError(f"expected an array, got {_kind(value)}")
        out: list[Any] = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                out.append(converter.structure(item, item_type))
            except Exception as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"Structuring item @ index {index}", index, item_type),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError("While structuring an array", errors, t)
        return tuple(out) if as_tuple else out

    return structure


def _is_mapping(t: Any) -> bool:
    return get_origin(t) in (dict, Mapping)


def _mapping_hook(converter: cattrs.Converter, t: Any) -> Callable[[object, type], object]:
    key_type, value_type = get_args(t)
    if key_type is not str:
        raise TypeError(f"argument type {t} is not supported (tables have string keys)")

    def structure(value: object, _: type) -> object:
        if not isinstance(value, dict):
            raise _ValueError(f"expected a table, got {_kind(value)}")
        out: dict[str, Any] = {}
        errors: list[Exception] = []
        for key, item in value.items():
            try:
                out[_structure_str(key, str)] = converter.structure(item, value_type)
            except Exception as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"Structuring item @ key {key!r}", key, value_type),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError("While structuring a table", errors, t)
        return out

    return structure


def _make_argument_converter() -> cattrs.Converter:
    # Strict on purpose: cattrs by default turns "3" into 3 and 1 into "1", which would let
    # a quoting mistake in the TOML through unnoticed.
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook_factory(_is_literal, _literal_hook)
    converter.register_structure_hook_factory(_is_enum, _enum_hook)
    converter.register_structure_hook_factory(_is_optional, lambda t: _optional_hook(converter, t))
    converter.register_structure_hook_factory(_is_sequence, lambda t: _sequence_hook(converter, t))
    converter.register_structure_hook_factory(_is_mapping, lambda t: _mapping_hook(converter, t))
    return converter


_argument_converter = _make_argument_converter()

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(*parts: str | int) -> str:
    """Join key parts the TOML way: ``steps[2]."Board Name"`` (an int is an array index)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if _BARE_KEY.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
            out += f".{text}" if out else text
    return out


def join_key(prefix: str, rest: str) -> str:
    """``prefix`` and a relative key path joined (``a.b`` + ``c[1]`` -> ``a.b.c[1]``)."""
    if not rest:
        return prefix
    if not prefix or rest.startswith("["):
        return prefix + rest
    return f"{prefix}.{rest}"


def _note(exc: BaseException) -> str | int | None:
    for note in getattr(exc, "__notes__", []):
        if isinstance(note, AttributeValidationNote):
            return note.name
        if isinstance(note, IterableValidationNote):
            index: str | int = note.index
            return index
    return None


def _collect(exc: BaseException, path: tuple[str | int, ...]) -> list[tuple[str, str]]:
    here = key_path(*path)
    if isinstance(exc, ForbiddenExtraKeysError):
        known = ", ".join(sorted(f.name for f in attrs.fields(exc.cl))) or "none"
        return [
            (key_path(*path, key), f"unknown argument (known here: {known})")
            for key in sorted(exc.extra_fields)
        ]
    if isinstance(exc, ClassValidationError | IterableValidationError):
        out: list[tuple[str, str]] = []
        for sub in exc.exceptions:
            note = _note(sub)
            out.extend(_collect(sub, (*path, note) if note is not None else path))
        return out
    if isinstance(exc, KeyError):
        return [(here, "required argument is missing")]
    if isinstance(exc, ArgumentError):
        return [(join_key(here, exc.key), exc.reason)]
    if isinstance(exc, _ValueError | ValueError | TypeError):
        return [(here, str(exc))]
    return [(here, f"{type(exc).__name__}: {exc}")]


def structure_arguments(cls: type[T], raw: Mapping[str, Any], *, key: str) -> T:
    """Structure a converter's raw ``arguments`` table into ``cls`` (a frozen attrs class).

    Unknown keys, wrong types and the ArgumentErrors ``cls`` raises become one ConfigError
    whose key is ``<key>.<argument path>`` (the first problem; the message counts the rest).
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"expected a table of arguments, got {_kind(raw)}")
    try:
        return _argument_converter.structure(dict(raw), cls)
    except (
        ClassValidationError,
        IterableValidationError,
        ArgumentError,
        _ValueError,
    ) as exc:
        problems = _collect(exc, ())
        if not problems:  # pragma: no cover - every cattrs error carries at least one
            problems = [("", str(exc))]
        first_key, reason = problems[0]
        if len(problems) > 1:
            rest = "; ".join(f"{join_key(key, k)}: {r}" for k, r in problems[1:4])
            reason += f" (and {len(problems) - 1} more: {rest})"
        raise ConfigError(join_key(key, first_key), reason) from exc
