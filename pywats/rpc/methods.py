"""The method registry: each method declares its params, result and errors once.

A :class:`Registry` is what :mod:`pywats.rpc.dispatch` calls, what ``rpc.discover``
answers and what ``docs/ipc.md`` is checked against. A method's parameters are checked
here (:meth:`MethodSpec.bind`) before its handler runs, so handlers get typed keyword
arguments and every ``-32602`` names the parameter that was wrong.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs

from pywats.rpc.errors import ErrorCode, RpcError

__all__ = ["MethodSpec", "NotificationSpec", "Param", "ParamType", "Registry"]

C = TypeVar("C")
Handler = Callable[..., Awaitable[Any]]
"""``async handler(context, **params) -> JSON-able result``."""


class ParamType(enum.StrEnum):
    """The JSON types a parameter may have (names as ``rpc.discover`` shows them)."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRINGS = "array of string"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (decoded JSON) is of this type."""
        # bool is an int in Python but not in JSON.
        if self is ParamType.STRING:
            return isinstance(value, str)
        if self is ParamType.INTEGER:
            return isinstance(value, int) and not isinstance(value, bool)
        if self is ParamType.NUMBER:
            return isinstance(value, int | float) and not isinstance(value, bool)
        if self is ParamType.BOOLEAN:
            return isinstance(value, bool)
        return isinstance(value, list) and all(isinstance(item, str) for item in value)


@attrs.frozen
class Param:
    """One parameter of a method."""

    name: str
    type: ParamType
    doc: str
    required: bool = False
    default: Any = None
    """The value a handler gets when the parameter is left out (``None``: not given)."""
    minimum: int | None = None
    maximum: int | None = None

    def check(self, value: Any) -> Any:
        """``value`` if it fits, else :class:`RpcError` ``INVALID_PARAMS`` naming the parameter."""
        if not self.type.accepts(value):
            raise RpcError(
                ErrorCode.INVALID_PARAMS,
                f"invalid params: {self.name!r} must be {_article(self.type)},"
                f" got {_json_type(value)}",
                {"param": self.name},
            )
        if self.minimum is not None and value < self.minimum:
            raise RpcError(
                ErrorCode.INVALID_PARAMS,
                f"invalid params: {self.name!r} must be at least {self.minimum}, got {value}",
                {"param": self.name},
            )
        if self.maximum is not None and value > self.maximum:
            raise RpcError(
                ErrorCode.INVALID_PARAMS,
                f"invalid params: {self.name!r} must be at most {self.maximum}, got {value}",
                {"param": self.name},
            )
        return value

    def describe(self) -> dict[str, Any]:
        """The parameter as ``rpc.discover`` shows it."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "required": self.required,
        }
        if not self.required:
            out["default"] = self.default
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        out["doc"] = self.doc
        return out


def _article(kind: ParamType) -> str:
    return f"an {kind.value}" if kind.value[0] in "aeiou" else f"a {kind.value}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


INLINE = frozenset({"service.status", "queue.stats"})
"""The service's methods answered from memory on the connection's reader task
(:attr:`MethodSpec.inline`): the ones a client gathers into one batch when several of its
tasks call them at once (:data:`pywats.rpc.client.GATHERED`). Here, not in the method
registry, so a client knows them without importing the service's handlers.
"""


@attrs.frozen
class MethodSpec:
    """One method: name, what it does, its params, what it answers and which errors."""

    name: str
    doc: str
    params: tuple[Param, ...]
    result: str
    """The result's shape, in words (the docs and ``rpc.discover`` show it)."""
    errors: tuple[ErrorCode, ...]
    handler: Handler = attrs.field(eq=False, repr=False)
    inline: bool = False
    """Answered on the connection's reader task, without a task of its own: for methods
    that answer from memory at once (a status poll), where a task per call would cost
    more than the answer. Other calls of the same connection wait behind it."""

    def bind(self, params: Mapping[str, Any] | Sequence[Any] | None) -> dict[str, Any]:
        """The handler's keyword arguments from a request's ``params``.

        By name (an object) or by position (an array, in the declared order). Left-out
        optional parameters get their default.

        Raises:
            RpcError: ``INVALID_PARAMS`` naming the parameter (missing, unknown, wrong type).
        """
        if params is None:
            given: dict[str, Any] = {}
        elif isinstance(params, Mapping):
            given = dict(params)
        else:
            if len(params) > len(self.params):
                raise RpcError(
                    ErrorCode.INVALID_PARAMS,
                    f"invalid params: {self.name} takes at most {len(self.params)} parameter(s),"
                    f" got {len(params)}",
                )
            given = {param.name: value for param, value in zip(self.params, params, strict=False)}
        known = {param.name for param in self.params}
        for name in given:
            if name not in known:
                raise RpcError(
                    ErrorCode.INVALID_PARAMS,
                    f"invalid params: unknown parameter {name!r} for {self.name}",
                    {"param": name},
                )
        bound: dict[str, Any] = {}
        for param in self.params:
            if param.name in given:
                bound[param.name] = param.check(given[param.name])
            elif param.required:
                raise RpcError(
                    ErrorCode.INVALID_PARAMS,
                    f"invalid params: missing required parameter {param.name!r}",
                    {"param": param.name},
                )
            else:
                bound[param.name] = param.default
        return bound

    def describe(self) -> dict[str, Any]:
        """The method as ``rpc.discover`` shows it."""
        return {
            "name": self.name,
            "doc": self.doc,
            "params": [param.describe() for param in self.params],
            "result": self.result,
            "errors": [{"code": int(code), "name": code.name.lower()} for code in self.errors],
        }


@attrs.frozen
class NotificationSpec:
    """One notification the service may push to a subscriber."""

    name: str
    doc: str
    fields: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        """The notification as ``rpc.discover`` shows it."""
        return {"name": self.name, "doc": self.doc, "fields": list(self.fields)}


class Registry(Generic[C]):
    """Every method and notification of the protocol; ``C`` is the handlers' context type."""

    def __init__(self) -> None:
        self._methods: dict[str, MethodSpec] = {}
        self._notifications: dict[str, NotificationSpec] = {}

    def method(
        self,
        name: str,
        *,
        doc: str,
        result: str,
        params: Iterable[Param] = (),
        errors: Iterable[ErrorCode] = (),
        inline: bool | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated ``async handler(context, **params)`` as method ``name``
        (``inline``: see :attr:`MethodSpec.inline`; by default, whether :data:`INLINE`
        names it)."""

        def register(handler: Handler) -> Handler:
            if name in self._methods:
                raise ValueError(f"method {name!r} registered twice")
            answered_inline = name in INLINE if inline is None else inline
            self._methods[name] = MethodSpec(
                name, doc, tuple(params), result, tuple(errors), handler, answered_inline
            )
            return handler

        return register

    def notification(self, spec: NotificationSpec) -> None:
        """Register a notification."""
        self._notifications[spec.name] = spec

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        """The methods by name, in registration order."""
        return self._methods

    @property
    def notifications(self) -> Mapping[str, NotificationSpec]:
        """The notifications by name, in registration order."""
        return self._notifications

    def get(self, name: str) -> MethodSpec:
        """The method ``name``.

        Raises:
            RpcError: ``METHOD_NOT_FOUND``.
        """
        try:
            return self._methods[name]
        except KeyError:
            raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"method not found: {name!r}") from None

    def discover(self) -> dict[str, Any]:
        """What ``rpc.discover`` answers: every method and every notification."""
        return {
            "methods": [spec.describe() for spec in self._methods.values()],
            "notifications": [spec.describe() for spec in self._notifications.values()],
        }
