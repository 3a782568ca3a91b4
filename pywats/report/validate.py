"""The WSJF rules a report must meet before it is queued, with the field path of each break.

The rules are the REST API's (wats-format.md 7.1) plus the measurement rules of 2.4-2.15:

* header: ``id`` is a GUID; ``pn``, ``sn``, ``rev``, ``machineName``, ``location`` and
  ``purpose`` are 1-100 characters; ``start`` is an ISO 8601 date-time with a UTC offset
  (``startUTC`` too, when present);
* a test report (T) has ``root`` and ``uut`` and no ``uur``; a repair report (R) has
  ``uur`` and ``subUnits``, every sub-unit with an ``idx``, one of them ``0`` (the unit
  repaired), and no ``root``;
* misc infos: ``description`` 1-100 characters, ``text`` at most 100, a ``text`` or a
  ``numeric`` value, ``typedef`` at most 30;
* sub-units: ``partType`` 1-50, ``pn`` and ``sn`` 1-100, ``rev`` at most 100 characters;
* steps: ids are unique; a step with several measurements names each one, uniquely; every
  measurement has a ``status``; numeric measurements use a numeric operator with the limits
  it needs (single-limit operators in ``lowLimit``, ``highLimit`` null); string
  measurements use a string operator; ``uut.stepIdCausedUUTFailure`` names a step.

Types, required keys and code vocabularies are checked earlier, while structuring
(:mod:`pywats.report.wsjf`). Statuses are not recomputed from limits: the server stores
what it is sent, and so do we.

Each report is checked once: :func:`validate` remembers the report objects it passed
(by identity, for as long as they live), so the framework's check of what a converter
returns (:func:`pywats.converters.base.run_converter`) costs nothing for a converter that
validated its reports itself, with its own words for where each came from. Reports are
values (frozen for the type checker, see :mod:`pywats.report.model`); one is never changed
in place after it was validated.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from datetime import datetime

from pywats.errors import FieldError, ReportValidationError
from pywats.report.codes import CompOp, ReportType
from pywats.report.model import (
    BooleanMeasurement,
    MiscInfo,
    NumericMeasurement,
    Report,
    Step,
    StringMeasurement,
    SubUnit,
)

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def parse_datetime(text: str) -> datetime | None:
    """An aware datetime from ISO 8601 text with an offset, or None if it is not one."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def is_guid(text: str) -> bool:
    """True for the 36-character hyphenated GUID form (either case)."""
    return _GUID.fullmatch(text) is not None


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def length(self, path: str, value: str | None, low: int, high: int) -> None:
        if value is None:
            if low:
                self.fail(path, "required field is missing")
            return
        if not low <= len(value) <= high:
            self.fail(path, f"must be {low} to {high} characters, got {len(value)}")

    def date_time(self, path: str, value: str) -> None:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(path, f"{value!r} is not an ISO 8601 date-time")
            return
        if parsed.tzinfo is None:
            self.fail(path, f"{value!r} has no UTC offset (write e.g. +01:00 or Z)")


def check(report: Report) -> list[FieldError]:
    """Every rule ``report`` breaks, in document order (empty when it is valid)."""
    c = _Checker()
    if not is_guid(report.id):
        c.fail("id", f"{report.id!r} is not a GUID (8-4-4-4-12 hex digits)")
    for wire, value in (
        ("pn", report.pn),
        ("sn", report.sn),
        ("rev", report.rev),
        ("machineName", report.machine_name),
        ("location", report.location),
        ("purpose", report.purpose),
    ):
        c.length(wire, value, 1, 100)
    c.date_time("start", report.start)
    if report.start_utc is not None:
        c.date_time("startUTC", report.start_utc)

    if report.type is ReportType.UUT:
        if report.root is None:
            c.fail("root", "required for a test report (type T)")
        if report.uut is None:
            c.fail("uut", "required for a test report (type T)")
        if report.uur is not None:
            c.fail("uur", "only a repair report (type R) has uur")
    else:
        if report.uur is None:
            c.fail("uur", "required for a repair report (type R)")
        if report.root is not None:
            c.fail("root", "a repair report (type R) has no test steps")
        _check_uur_units(c, report.sub_units)

    for i, misc in enumerate(report.misc_infos or []):
        _check_misc(c, f"miscInfos[{i}]", misc)
    for i, unit in enumerate(report.sub_units or []):
        _check_sub_unit(c, f"subUnits[{i}]", unit)

    step_ids: dict[int, _Where] = {}
    if report.root is not None:
        _check_steps(c, "root", report.root, step_ids)
    caused = report.uut.step_id_caused_uut_failure if report.uut else None
    if caused is not None and step_ids and caused not in step_ids:
        c.fail("uut.stepIdCausedUUTFailure", f"no step has id {caused}")
    return c.errors


#: id() of each live report that passed :func:`validate` -> a weak reference to it. The
#: reference is checked on lookup (an id is reused once its object is gone) and its
#: callback drops the entry; single dict operations are atomic, so converter threads may
#: share it.
_passed: dict[int, weakref.ref[Report]] = {}


def _forget(key: int) -> None:
    _passed.pop(key, None)


def is_validated(report: Report) -> bool:
    """Whether :func:`validate` has passed this very report object."""
    ref = _passed.get(id(report))
    return ref is not None and ref() is report


def validate(report: Report) -> Report:
    """Return ``report`` if it meets every rule, else raise ReportValidationError.

    A report this function passed before is not checked again (see the module doc).
    """
    if is_validated(report):
        return report
    errors = check(report)
    if errors:
        raise ReportValidationError(errors)
    key = id(report)
    _passed[key] = weakref.ref(report, lambda _, key=key: _forget(key))  # type: ignore[misc]
    return report


def _check_uur_units(c: _Checker, units: Sequence[SubUnit] | None) -> None:
    if units is None:
        c.fail("subUnits", "required for a repair report (type R)")
        return
    for i, unit in enumerate(units):
        if unit.idx is None:
            c.fail(f"subUnits[{i}].idx", "required for a repair report (type R)")
    if units and all(u.idx is not None for u in units) and not any(u.idx == 0 for u in units):
        c.fail("subUnits", "a repair report needs the repaired unit as idx 0")
    if not units:
        c.fail("subUnits", "a repair report needs the repaired unit as idx 0")


def _check_misc(c: _Checker, path: str, misc: MiscInfo) -> None:
    c.length(f"{path}.description", misc.description, 1, 100)
    if misc.text is None and misc.numeric is None:
        c.fail(path, "needs a text or a numeric value")
    c.length(f"{path}.text", misc.text, 0, 100)
    c.length(f"{path}.typedef", misc.typedef, 0, 30)


def _check_sub_unit(c: _Checker, path: str, unit: SubUnit) -> None:
    c.length(f"{path}.partType", unit.part_type, 1, 50)
    c.length(f"{path}.pn", unit.pn, 1, 100)
    c.length(f"{path}.sn", unit.sn, 1, 100)
    c.length(f"{path}.rev", unit.rev, 0, 100)


#: Where a step is, cheaply: ``None`` for the root, else (where its parent is, its index).
_Where = tuple["_Where", int] | None


def _step_path(root_path: str, where: _Where) -> str:
    indexes: list[int] = []
    while where is not None:
        where, index = where
        indexes.append(index)
    return root_path + "".join(f".steps[{i}]" for i in reversed(indexes))


#: compOp -> (numeric, number of limits), looked up once per measurement.
_NUMERIC_OPS = {op: (op.is_numeric, op.limit_count) for op in CompOp}


def _numeric_ok(m: NumericMeasurement) -> bool:
    """True when ``m`` surely breaks no rule (the full check names what it breaks)."""
    if m.status is None:
        return False
    op = m.comp_op
    if op is None:
        return True
    numeric, limits = _NUMERIC_OPS[op]
    if not numeric:
        return False
    if limits == 1:
        return m.low_limit is not None and m.high_limit is None
    if limits == 2:
        return m.low_limit is not None and m.high_limit is not None
    return True


def _names_ok(meas: Sequence[NumericMeasurement | BooleanMeasurement | StringMeasurement]) -> bool:
    names = {m.name for m in meas}
    return len(names) == len(meas) and None not in names


def _check_steps(c: _Checker, root_path: str, root: Step, ids: dict[int, _Where]) -> None:
    # Iterative: a deep tree from a hostile file must not exhaust the Python stack.
    # Paths are formatted only for a step that breaks a rule: nearly every step breaks
    # none, and a path per step was most of the cost of checking a big report.
    stack: list[tuple[Step, _Where]] = [(root, None)]
    pop, push = stack.pop, stack.append
    while stack:
        step, where = pop()
        step_id = step.id
        if step_id is not None:
            if step_id in ids:
                c.fail(
                    f"{_step_path(root_path, where)}.id",
                    f"step id {step_id} is also used by {_step_path(root_path, ids[step_id])}",
                )
            else:
                ids[step_id] = where
        if not _measurements_ok(step):
            _check_measurements(c, _step_path(root_path, where), step)
        children = step.steps
        if children:
            for index in range(len(children) - 1, -1, -1):
                push((children[index], (where, index)))


def _measurements_ok(step: Step) -> bool:
    """True when the step's measurements surely break no rule (the usual case, decided
    without building a path; :func:`_check_measurements` names what a step breaks)."""
    numeric, boolean, string = step.numeric_meas, step.boolean_meas, step.string_meas
    # The usual steps first: one numeric measurement, or one pass/fail, and nothing else.
    if not string:
        if numeric and len(numeric) == 1 and not boolean:
            return _numeric_ok(numeric[0])
        if boolean and len(boolean) == 1 and not numeric:
            return boolean[0].status is not None
    if numeric and not (
        (len(numeric) == 1 or _names_ok(numeric)) and all(map(_numeric_ok, numeric))
    ):
        return False
    if boolean and not (
        (len(boolean) == 1 or _names_ok(boolean)) and all(b.status is not None for b in boolean)
    ):
        return False
    return not string or ((len(string) == 1 or _names_ok(string)) and all(map(_string_ok, string)))


def _string_ok(m: StringMeasurement) -> bool:
    op = m.comp_op
    return m.status is not None and (op is None or op.is_string)


def _check_measurements(c: _Checker, path: str, step: Step) -> None:
    _check_names(c, path, "numericMeas", step.numeric_meas)
    _check_names(c, path, "booleanMeas", step.boolean_meas)
    _check_names(c, path, "stringMeas", step.string_meas)
    for i, num in enumerate(step.numeric_meas or []):
        _check_numeric(c, f"{path}.numericMeas[{i}]", num)
    for i, boolean in enumerate(step.boolean_meas or []):
        if boolean.status is None:
            c.fail(f"{path}.booleanMeas[{i}].status", "required field is missing")
    for i, string in enumerate(step.string_meas or []):
        _check_string(c, f"{path}.stringMeas[{i}]", string)


def _check_names(
    c: _Checker,
    path: str,
    key: str,
    meas: Sequence[NumericMeasurement | BooleanMeasurement | StringMeasurement] | None,
) -> None:
    if not meas or len(meas) == 1:
        return
    seen: dict[str, int] = {}
    for i, m in enumerate(meas):
        if m.name is None:
            c.fail(f"{path}.{key}[{i}].name", "required when a step has several measurements")
        elif m.name in seen:
            c.fail(
                f"{path}.{key}[{i}].name", f"{m.name!r} is also the name of {key}[{seen[m.name]}]"
            )
        else:
            seen[m.name] = i


def _check_numeric(c: _Checker, path: str, m: NumericMeasurement) -> None:
    if m.status is None:
        c.fail(f"{path}.status", "required field is missing")
    op = m.comp_op
    if op is None:
        return
    if not op.is_numeric:
        c.fail(f"{path}.compOp", f"{op.value!r} compares strings, not numbers")
        return
    if op.limit_count >= 1 and m.low_limit is None:
        c.fail(f"{path}.lowLimit", f"required by {op.value}")
    if op.limit_count == 2 and m.high_limit is None:
        c.fail(f"{path}.highLimit", f"required by {op.value}")
    if op.limit_count == 1 and m.high_limit is not None:
        c.fail(
            f"{path}.highLimit",
            f"must be null: {op.value} is a single-limit operator and uses lowLimit",
        )


def _check_string(c: _Checker, path: str, m: StringMeasurement) -> None:
    if m.status is None:
        c.fail(f"{path}.status", "required field is missing")
    if m.comp_op is not None and not m.comp_op.is_string:
        c.fail(f"{path}.compOp", f"{m.comp_op.value!r} is not a string comparison operator")
