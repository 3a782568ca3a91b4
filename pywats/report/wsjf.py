"""WSJF, the wire format: the one cattrs converter between JSON and the report model.

Policies (all of them, in one place):

* Keys are the WSJF camelCase names (:func:`pywats.report.model.wire_name`).
* Unknown keys are kept verbatim in each object's ``extra`` and written back after the
  known ones. Keys present as ``null`` are recorded in ``nulls`` and written back as
  ``null``; ``None`` fields not listed there are left out.
* Types are strict: a string field takes only a JSON string, an integer field only a JSON
  integer (never ``true``, never ``10.0``), a number field an integer or a float, kept as
  given so ``0`` stays ``0``. Nothing is trimmed or coerced.
* Enumerations (status, result, group, compOp, type) take their WSJF spelling in any
  case, as the server does (its own exports spell some in another case than its
  documentation, e.g. TestStand's ``IgnoreCase``): a report the server wrote is accepted.
  A code spelled otherwise is kept in the object's ``spellings`` and written back exactly
  as it was read. ASCII letters only: the long s and the Kelvin sign are not ``S`` or ``K``.
* ``NaN``/``Infinity`` literals, numbers too large for a double, and unpaired UTF-16
  surrogates are refused: the server could not store them faithfully and ``json`` could not
  write them back as valid JSON/UTF-8.
* Output is compact UTF-8 JSON (``ensure_ascii=False``).

Errors: structuring collects every problem (cattrs ``detailed_validation``) and
:func:`structure` raises one :class:`~pywats.errors.ReportValidationError` whose
``errors`` carry the WSJF field path of each (``root.steps[3].numericMeas[0].compOp``).
"""

from __future__ import annotations

import enum
import json
import math
import threading
from collections.abc import Callable, Mapping
from types import UnionType
from typing import Any, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)

from pywats.errors import FieldError, MalformedInputError, ReportValidationError
from pywats.report.codes import CompOp, ReportType, Result, Status, StepGroup
from pywats.report.model import BOOKKEEPING, JSON, Report, WireObject, wire_name
from pywats.report.validate import validate as check_rules

_ENUM_WORDS: dict[type[enum.Enum], str] = {
    CompOp: "a comparison operator",
    Status: "a status code",
    Result: "a report result code",
    StepGroup: "a step group",
    ReportType: "a report type",
}

_JSON_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


class _WireValueError(ValueError):
    """A value of the wrong JSON type or outside a vocabulary; the message is for people."""


def _check_string(value: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _WireValueError(
                f"{value[:40]!r} contains an unpaired UTF-16 surrogate (not valid Unicode)"
            ) from None
    return value


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise _WireValueError(f"expected a string, got {_json_type(value)}")
    return _check_string(value)


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _WireValueError(f"expected an integer, got {_json_type(value)}")
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _WireValueError(f"expected a number, got {_json_type(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _WireValueError("number is not finite (too large for a double)")
    return value


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise _WireValueError(f"expected true or false, got {_json_type(value)}")
    return value


def _check_json(value: JSON) -> JSON:
    """Check a value kept verbatim (``extra``, untyped parts) can be written back."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _WireValueError("number is not finite (too large for a double)")
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return value


def _structure_any(value: object, _: type) -> JSON:
    return _check_json(value)


def _make_enum_hook(cls: type[enum.Enum]) -> Callable[[object, type], enum.Enum]:
    words = _ENUM_WORDS.get(cls, f"a {cls.__name__}")
    allowed = ", ".join(str(m.value) for m in cls)
    exact: dict[str, enum.Enum] = {str(m.value): m for m in cls}
    by_upper: dict[str, enum.Enum] = {str(m.value).upper(): m for m in cls}

    def structure(value: object, _: type) -> enum.Enum:
        member = exact.get(value) if isinstance(value, str) else None
        if member is not None:
            return member
        if not isinstance(value, str):
            raise _WireValueError(f"expected {words} ({allowed}), got {_json_type(value)}")
        # ASCII only: str.upper() maps some other letters onto ASCII ones.
        member = by_upper.get(value.upper()) if value.isascii() else None
        if member is None:
            raise _WireValueError(f"{value!r} is not {words} ({allowed})")
        return member

    return structure


def spelled(value: str, code: enum.Enum) -> bool:
    """Whether ``value`` is ``code`` spelled in another case (kept in ``spellings``)."""
    return value != code.value and value.upper() == str(code.value).upper()


_RESOLVE_LOCK = threading.RLock()
"""Guards the lazy, first-use resolution of hooks (reentrant: resolving Step's plan
resolves list[Step], which may resolve Step again)."""


def _make_list_hook(
    converter: cattrs.Converter, list_type: Any
) -> Callable[[object, type], list[Any]]:
    (item_type,) = get_args(list_type) or (Any,)
    # Resolved on first use: Step holds list[Step], so eager resolution would recurse.
    # Published whole, once: converters run in several threads at once, and a reader must
    # never see a half-built list.
    handlers: list[Callable[[object, Any], Any]] = []

    def structure(value: object, _: type) -> list[Any]:
        if not isinstance(value, list):
            raise _WireValueError(f"expected an array, got {_json_type(value)}")
        if not handlers:
            with _RESOLVE_LOCK:
                if not handlers:
                    handlers.append(converter.get_structure_hook(item_type))
        handler = handlers[0]
        out: list[Any] = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                out.append(handler(item, item_type))
            except RecursionError:
                raise
            except Exception as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"Structuring item @ index {index}", index, item_type),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError("While structuring an array", errors, list_type)
        return out

    return structure


def _make_class_hooks(
    converter: cattrs.Converter, cls: type[WireObject]
) -> tuple[Callable[[object, type], WireObject], Callable[[WireObject], dict[str, JSON]]]:
    attrs.resolve_types(cls)  # the model uses postponed annotations
    fields = [f for f in attrs.fields(cls) if not f.metadata.get(BOOKKEEPING)]
    # wire name -> (plan index, python name, type, required, hook, is a code), resolved
    # once per class on first use (not at hook creation: Step contains Step, so eager
    # resolution would recurse). The index orders errors as the fields are declared.
    plan: list[dict[str, tuple[int, str, Any, bool, Callable[[object, Any], Any], bool]]] = []
    wires = [(f, wire_name(f), _strip_none(f.type)) for f in fields]
    required_wires = [
        (index, wire, ftype)
        for index, (f, wire, ftype) in enumerate(wires)
        if f.default is attrs.NOTHING
    ]
    last = len(wires)
    by_wire_name = {wire: f.name for f, wire, _ in wires}

    def resolve() -> dict[str, tuple[int, str, Any, bool, Callable[[object, Any], Any], bool]]:
        # Built aside and published in one step under the lock: converter threads run
        # these hooks concurrently, and a partly built plan would silently drop fields.
        with _RESOLVE_LOCK:
            if not plan:
                plan.append(
                    {
                        wire: (
                            index,
                            f.name,
                            ftype,
                            f.default is attrs.NOTHING,
                            converter.get_structure_hook(ftype),
                            ftype in _ENUM_WORDS,
                        )
                        for index, (f, wire, ftype) in enumerate(wires)
                    }
                )
            return plan[0]

    def structure(value: object, _: type) -> WireObject:
        if not isinstance(value, dict):
            raise _WireValueError(f"expected an object, got {_json_type(value)}")
        by_wire = plan[0] if plan else resolve()
        kwargs: dict[str, Any] = {}
        nulls: set[str] = set()
        extra: dict[str, JSON] = {}
        spellings: dict[str, str] | None = None
        errors: list[tuple[int, Exception]] = []
        # Driven by the keys present: a step declares 28 fields and uses a handful.
        for key, item in value.items():
            entry = by_wire.get(key)
            if entry is None:
                try:
                    extra[key] = _check_json(item)
                except RecursionError:
                    raise
                except Exception as exc:
                    errors.append((last, _with_note(exc, cls, key, Any)))
                continue
            index, name, ftype, required, hook, is_code = entry
            if item is None:
                if required:
                    error = _WireValueError("must not be null")
                    errors.append((index, _with_note(error, cls, key, ftype)))
                else:
                    nulls.add(key)
                continue
            try:
                kwargs[name] = got = hook(item, ftype)
            except RecursionError:
                raise
            except Exception as exc:
                errors.append((index, _with_note(exc, cls, key, ftype)))
                continue
            if is_code and item != got:
                # Another case than WSJF's (the hook accepted it): written back as it was.
                if spellings is None:
                    spellings = {}
                spellings[key] = item
        for index, wire, ftype in required_wires:
            if wire not in value:
                errors.append((index, _with_note(KeyError(wire), cls, wire, ftype)))
        if errors:
            # Declared fields in declaration order, then unknown keys in document order.
            errors.sort(key=lambda pair: pair[0])
            raise ClassValidationError(
                f"While structuring {cls.__name__}", [exc for _, exc in errors], cls
            )
        if spellings is not None:
            kwargs["spellings"] = spellings
        if extra:
            kwargs["extra"] = extra
        if nulls:
            kwargs["nulls"] = frozenset(nulls)
        return cls(**kwargs)

    unstructure_plan: list[tuple[str, str, Callable[[Any], Any]]] = []
    # The generated function for the usual object (no nulls, respellings or unknown
    # keys: everything a converter builds), see _fast_unstructure.
    fast: list[Callable[[WireObject], dict[str, JSON]]] = []

    def unstructure(obj: WireObject) -> dict[str, JSON]:
        if not fast:
            with _RESOLVE_LOCK:
                if not fast:
                    built = [
                        (f.name, wire, converter.get_unstructure_hook(ftype))
                        for f, wire, ftype in wires
                    ]
                    unstructure_plan[:] = built
                    items = [
                        converter.get_unstructure_hook(get_args(ftype)[0])
                        if _is_list(ftype) and get_args(ftype)
                        else None
                        for _, _, ftype in wires
                    ]
                    fast.append(_fast_unstructure(cls, built, items, general))
        return fast[0](obj)

    def general(obj: WireObject) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        nulls = obj.nulls
        for name, wire, hook in unstructure_plan:
            item = getattr(obj, name)
            if item is None:
                if wire in nulls:
                    out[wire] = None
            else:
                out[wire] = hook(item)
        if obj.spellings:
            for key, text in obj.spellings.items():
                code = getattr(obj, by_wire_name[key], None)
                # Only while the field still holds the code spelled: after attrs.evolve
                # to another code the WSJF spelling of the new one is written.
                if isinstance(code, enum.Enum) and spelled(text, code):
                    out[key] = text
        for key, item in obj.extra.items():
            out.setdefault(key, item)
        return out

    return structure, unstructure


def _fast_unstructure(
    cls: type[WireObject],
    plan: list[tuple[str, str, Callable[[Any], Any]]],
    items: list[Callable[[Any], Any] | None],
    general: Callable[[WireObject], dict[str, JSON]],
) -> Callable[[WireObject], dict[str, JSON]]:
    """The unstructure function of ``cls`` as straight-line code, as attrs and cattrs
    generate theirs: one test per field instead of a loop with a ``getattr`` and a hook
    call each (serialising was slower than converting: 4 µs per object, most of a step's
    26 fields empty). A field whose hook returns its value unchanged (strings, numbers,
    codes) is stored as it is; a list (``items``: the hook of each list field's items) is
    built in one comprehension. An object with nulls, respelled codes or unknown keys (a
    parsed document's) takes ``general``, which writes the same keys in the same order."""
    names: dict[str, object] = {"_general": general}
    lines = [
        "def unstructure(obj):",
        "    if obj.nulls or obj.spellings or obj.extra:",
        "        return _general(obj)",
        "    out = {}",
    ]
    for index, ((name, wire, hook), item) in enumerate(zip(plan, items, strict=True)):
        lines += [f"    v = obj.{name}", "    if v is not None:"]
        if hook is cattrs.fns.identity:
            lines.append(f"        out[{wire!r}] = v")
        elif item is cattrs.fns.identity:
            lines.append(f"        out[{wire!r}] = list(v)")
        elif item is not None:
            names[f"_i{index}"] = item
            lines.append(f"        out[{wire!r}] = [_i{index}(x) for x in v]")
        else:
            names[f"_h{index}"] = hook
            lines.append(f"        out[{wire!r}] = _h{index}(v)")
    lines.append("    return out")
    code = compile("\n".join(lines), f"<pywats.report.wsjf unstructure {cls.__name__}>", "exec")
    exec(code, names)  # our own source, made of the model's field names
    function: Callable[[WireObject], dict[str, JSON]] = names["unstructure"]  # type: ignore[assignment]
    return function


def _strip_none(t: Any) -> Any:
    # None never reaches a field hook (absent/null is handled by the class hook), so an
    # optional field is structured as its inner type.
    args = get_args(t)
    if type(None) in args and get_origin(t) in (UnionType, Union):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return t


def _with_note(exc: Exception, cls: type, wire: str, ftype: Any) -> Exception:
    exc.__notes__ = [
        *getattr(exc, "__notes__", []),
        AttributeValidationNote(f"Structuring {cls.__name__} @ {wire}", wire, ftype),
    ]
    return exc


def _is_wire_class(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, WireObject)


def _is_list(t: Any) -> bool:
    return t is list or get_origin(t) is list


def make_converter() -> cattrs.Converter:
    """A converter configured with every WSJF policy listed in the module docstring."""
    converter = cattrs.Converter(detailed_validation=True)
    configure_converter(converter)
    return converter


def configure_converter(converter: cattrs.Converter) -> None:
    """Install the WSJF policies on ``converter``."""
    # cattrs dispatches primitives by class (singledispatch), ahead of predicate hooks, so
    # the strict hooks and the vocabularies (StrEnum subclasses of str) are registered the
    # same way; singledispatch then picks the most specific class.
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    for vocabulary in _ENUM_WORDS:
        converter.register_structure_hook(vocabulary, _make_enum_hook(vocabulary))
    converter.register_structure_hook_func(lambda t: t is Any, _structure_any)
    converter.register_structure_hook_factory(_is_list, lambda t: _make_list_hook(converter, t))
    converter.register_structure_hook_factory(
        _is_wire_class, lambda t: _make_class_hooks(converter, t)[0]
    )
    converter.register_unstructure_hook_factory(
        _is_wire_class, lambda t: _make_class_hooks(converter, t)[1]
    )


converter = make_converter()


def _format_exception(exc: BaseException, _: type | None) -> str:
    if isinstance(exc, KeyError):
        return "required field is missing"
    if isinstance(exc, _WireValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"  # pragma: no cover - a bug in a hook, still shown


def _field_errors(exc: Exception) -> list[FieldError]:
    out = []
    for line in cattrs.transform_error(exc, path="$", format_exception=_format_exception):
        message, _, path = line.rpartition(" @ ")
        path = path.removeprefix("$").removeprefix(".")
        out.append(FieldError(path, message))
    return out


MAX_DEPTH = 520
"""Deepest JSON nesting accepted (objects and arrays): about 256 levels of steps, since each
costs two (the step object and its ``steps`` array), matching the WSXF element limit. Real
reports nest a few levels per sequence call; the limit keeps every accepted report within
what the recursive structure and serialise code can handle."""


def _check_depth(obj: JSON) -> None:
    # Iterative on purpose: the point is to refuse what recursion cannot handle. One
    # level at a time, so no depth is carried per value.
    level: list[JSON] = [obj] if isinstance(obj, dict | list) else []
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise MalformedInputError(f"the document is nested deeper than {MAX_DEPTH} levels")
        below: list[JSON] = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, dict | list):
                    below.append(child)
        level = below
        depth += 1


def structure(obj: JSON) -> Report:
    """Build a :class:`Report` from decoded JSON; raise ReportValidationError with paths.

    This checks the shape and types only; :func:`pywats.report.validate.validate` checks
    the WSJF rules.
    """
    _check_depth(obj)
    try:
        return converter.structure(obj, Report)
    except (ClassValidationError, IterableValidationError, _WireValueError) as exc:
        raise ReportValidationError(_field_errors(exc)) from exc
    except RecursionError as exc:
        raise MalformedInputError("the document is nested too deeply") from exc


def unstructure(report: Report) -> dict[str, JSON]:
    """The WSJF JSON object for ``report``."""
    result: dict[str, JSON] = converter.unstructure(report)
    return result


def _refuse_constant(name: str) -> float:
    raise _WireValueError(f"{name} is not valid JSON (WSJF numbers must be finite)")


def decode(data: bytes | str) -> JSON:
    """Decode JSON text, refusing NaN/Infinity; MalformedInputError says where it broke."""
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise MalformedInputError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise MalformedInputError(f"not valid JSON: text is not UTF-8 ({exc.reason})") from exc
    except _WireValueError as exc:
        raise MalformedInputError(str(exc)) from exc
    except RecursionError as exc:
        raise MalformedInputError("not valid JSON: nested too deeply") from exc
    except ValueError as exc:
        # e.g. an integer literal longer than the interpreter's int-conversion limit
        raise MalformedInputError(f"not valid JSON: {exc}") from exc


def loads(data: bytes | str, *, validate: bool = True) -> Report:
    """Parse one WSJF report from JSON text, check its shape and (by default) its rules."""
    return loads_obj(decode(data), validate=validate)


def loads_obj(obj: JSON, *, validate: bool = True) -> Report:
    """Like :func:`loads`, for JSON that is already decoded."""
    report = structure(obj)
    return check_rules(report) if validate else report


def dumps(report: Report | Mapping[str, JSON], *, indent: int | None = None) -> bytes:
    """Serialise ``report`` as WSJF JSON bytes (compact unless ``indent`` is given)."""
    separators = (",", ":") if indent is None else (",", ": ")
    try:
        obj = unstructure(report) if isinstance(report, Report) else report
        return json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators).encode()
    except RecursionError as exc:
        raise MalformedInputError(f"the report is nested too deeply to serialise: {exc}") from exc
