"""From one incoming message to the text of its answer: :class:`Dispatcher`. No I/O.

The dispatcher parses (:mod:`pywats.rpc.codec`), looks the method up in the
:class:`~pywats.rpc.methods.Registry`, binds the params, awaits the handler and turns
whatever it raised into an error response: :class:`~pywats.rpc.errors.RpcError` as it
is, the service's own errors mapped to their codes (:func:`error_of`), and anything
else into ``INTERNAL_ERROR`` with the traceback logged (a bug's details stay in the log).
"""

from __future__ import annotations

import logging
from typing import Any, Generic, TypeVar

from pywats.errors import NotFoundError, PywatsError, StoreError
from pywats.rpc import codec
from pywats.rpc.errors import ErrorCode, RpcError
from pywats.rpc.methods import Registry
from pywats.view import ServiceStartingError

__all__ = ["Dispatcher", "error_of"]

log = logging.getLogger("pywats.rpc")

C = TypeVar("C")


def error_of(exc: Exception) -> RpcError:
    """The error answer for an exception a handler raised."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, ServiceStartingError):
        return RpcError(ErrorCode.SERVICE_STARTING, str(exc))
    if isinstance(exc, NotFoundError):
        return RpcError(ErrorCode.REPORT_NOT_FOUND, str(exc))
    if isinstance(exc, StoreError):
        return RpcError(ErrorCode.QUEUE_ERROR, str(exc))
    if isinstance(exc, PywatsError):
        return RpcError(ErrorCode.NOT_ALLOWED, str(exc))
    log.error("internal error in a control method", exc_info=exc)
    return RpcError(
        ErrorCode.INTERNAL_ERROR, f"internal error ({type(exc).__name__}); see the service's log"
    )


class Dispatcher(Generic[C]):
    """Answers messages with the methods of ``registry``."""

    def __init__(self, registry: Registry[C]) -> None:
        self.registry = registry

    async def call(self, entry: codec.Request | codec.Invalid, context: C) -> dict[str, Any] | None:
        """The response object for one entry (``None`` for a notification)."""
        if isinstance(entry, codec.Invalid):
            return codec.error_response(entry.id, entry.code, entry.message)
        try:
            spec = self.registry.get(entry.method)
            kwargs = spec.bind(entry.params)
            result = await spec.handler(context, **kwargs)
        except Exception as exc:  # every failure becomes an error answer
            error = error_of(exc)
            if entry.notification:
                return None
            return codec.error_response(entry.id, error.code, error.message, error.data)
        if entry.notification:
            return None
        return codec.result_response(entry.id, result)

    async def handle(self, data: str | bytes, context: C) -> str | None:
        """The answer to one message, as text; ``None`` when nothing is to be sent
        (a notification, or a batch of only notifications).

        Batch entries run one after the other, in order.
        """
        return await self.answer(codec.parse_incoming(data), context)

    def inline(self, incoming: codec.Incoming) -> bool:
        """Whether every entry of ``incoming`` may be answered on the reader's task
        (:attr:`~pywats.rpc.methods.MethodSpec.inline` methods, and invalid entries)."""
        methods = self.registry.methods
        for entry in incoming.entries:
            if isinstance(entry, codec.Request):
                spec = methods.get(entry.method)
                if spec is not None and not spec.inline:
                    return False
        return True

    async def answer(self, incoming: codec.Incoming, context: C) -> str | None:
        """The answer to a parsed message (see :meth:`handle`)."""
        answers = []
        for entry in incoming.entries:
            answer = await self.call(entry, context)
            if answer is not None:
                answers.append(answer)
        if not answers:
            return None
        try:
            return codec.dumps(answers if incoming.batch else answers[0])
        except (TypeError, ValueError):
            # A result that is not JSON (a NaN, an object nobody unstructured) is a bug;
            # the caller gets an error answer for it, not a dead connection.
            return codec.dumps(
                [self._encodable(a) for a in answers]
                if incoming.batch
                else self._encodable(answers[0])
            )

    @staticmethod
    def _encodable(answer: dict[str, Any]) -> dict[str, Any]:
        try:
            codec.dumps(answer)
        except (TypeError, ValueError) as exc:
            error = error_of(exc)
            return codec.error_response(answer.get("id"), error.code, error.message)
        return answer
