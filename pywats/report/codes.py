"""The closed vocabularies of a WATS report: types, results, statuses, groups, operators.

Each enum's value is the WSJF spelling; ``wsxf`` gives the WSXF word where the XML format
spells it differently.
"""

from __future__ import annotations

import enum
import math


class ReportType(enum.StrEnum):
    """``type``: a test report (UUT) or a repair report (UUR)."""

    UUT = "T"
    UUR = "R"

    @property
    def wsxf(self) -> str:
        return {"T": "UUT", "R": "UUR"}[self.value]


class Status(enum.StrEnum):
    """Step and measurement ``status`` codes (wats-format.md 2.14)."""

    PASSED = "P"
    FAILED = "F"
    SKIPPED = "S"
    DONE = "D"
    ERROR = "E"
    TERMINATED = "T"

    @property
    def wsxf(self) -> str:
        return self.name.capitalize()


class Result(enum.StrEnum):
    """A report's overall ``result``: the REST API accepts only these four."""

    PASSED = "P"
    FAILED = "F"
    ERROR = "E"
    TERMINATED = "T"

    @property
    def wsxf(self) -> str:
        return self.name.capitalize()


class StepGroup(enum.StrEnum):
    """A step's ``group``: Setup, Main or Cleanup."""

    SETUP = "S"
    MAIN = "M"
    CLEANUP = "C"

    @property
    def wsxf(self) -> str:
        return self.name.capitalize()


class CompOp(enum.StrEnum):
    """Comparison operators (TestStand set) with the WATS limit encoding.

    Single-limit operators (EQ, NE, GT, GE, LT, LE) keep their one limit in ``lowLimit``;
    ``highLimit`` stays null. That is how the server exports them, and it differs from
    what several pyWATS converters write (wats-format.md 2.15, 8.2).
    """

    LOG = "LOG"
    EQ = "EQ"
    NE = "NE"
    GT = "GT"
    GE = "GE"
    LT = "LT"
    LE = "LE"
    GTLT = "GTLT"
    GELE = "GELE"
    GELT = "GELT"
    GTLE = "GTLE"
    LTGT = "LTGT"
    LEGE = "LEGE"
    LEGT = "LEGT"
    LTGE = "LTGE"
    CASESENSIT = "CASESENSIT"
    IGNORECASE = "IGNORECASE"

    @property
    def limit_count(self) -> int:
        """How many numeric limits the operator uses: 0, 1 (``lowLimit``) or 2."""
        if self in _NO_LIMIT:
            return 0
        if self in _ONE_LIMIT:
            return 1
        return 2

    @property
    def is_numeric(self) -> bool:
        """True for operators a numeric measurement may use."""
        return self not in _STRING_ONLY

    @property
    def is_string(self) -> bool:
        """True for operators a string measurement may use."""
        return self in _STRING_OPS

    def evaluate(self, value: float, low: float | None = None, high: float | None = None) -> bool:
        """Whether ``value`` passes against the limits, as WATS defines the operator.

        Raises ValueError when a limit the operator needs is missing, or when the operator
        compares strings.
        """
        if self is CompOp.LOG:
            return True
        if self in _STRING_ONLY:
            raise ValueError(f"{self.value} compares strings, not numbers")
        if low is None:
            raise ValueError(f"{self.value} needs lowLimit")
        if self.limit_count == 2 and high is None:
            raise ValueError(f"{self.value} needs highLimit")
        if math.isnan(value):
            return False
        match self:
            case CompOp.EQ:
                return value == low
            case CompOp.NE:
                return value != low
            case CompOp.GT:
                return value > low
            case CompOp.GE:
                return value >= low
            case CompOp.LT:
                return value < low
            case CompOp.LE:
                return value <= low
        assert high is not None
        match self:
            case CompOp.GTLT:
                return low < value < high
            case CompOp.GELE:
                return low <= value <= high
            case CompOp.GELT:
                return low <= value < high
            case CompOp.GTLE:
                return low < value <= high
            case CompOp.LTGT:
                return value < low or value > high
            case CompOp.LEGE:
                return value <= low or value >= high
            case CompOp.LEGT:
                return value <= low or value > high
            case CompOp.LTGE:
                return value < low or value >= high
        raise AssertionError(self)  # pragma: no cover - every member is matched above

    def evaluate_string(self, value: str, limit: str | None) -> bool:
        """Whether a string measurement passes: EQ/CASESENSIT exact, IGNORECASE casefolded."""
        if self is CompOp.LOG:
            return True
        if not self.is_string:
            raise ValueError(f"{self.value} compares numbers, not strings")
        if limit is None:
            raise ValueError(f"{self.value} needs a limit")
        if self is CompOp.IGNORECASE:
            return value.casefold() == limit.casefold()
        if self is CompOp.NE:
            return value != limit
        return value == limit


_NO_LIMIT = frozenset({CompOp.LOG})
_ONE_LIMIT = frozenset({CompOp.EQ, CompOp.NE, CompOp.GT, CompOp.GE, CompOp.LT, CompOp.LE})
_STRING_ONLY = frozenset({CompOp.CASESENSIT, CompOp.IGNORECASE})
_STRING_OPS = frozenset({CompOp.LOG, CompOp.EQ, CompOp.NE, *_STRING_ONLY})
