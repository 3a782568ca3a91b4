"""The control protocol's wire format: the one cattrs converter for everything it sends.

Snapshots (:class:`~pywats.view.ServiceSnapshot` and its parts) and events are frozen
attrs classes; :data:`converter` turns them into JSON-able dicts (enums as their value,
tuples as lists). :func:`notification_of` names an event's notification and adds the
hub's ``stream`` id.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from pywats.events import Event, Gap

__all__ = ["GAP", "converter", "event_fields", "notification_of", "unstructure"]

GAP = "events.gap"
"""The notification that says how many events a slow subscriber lost."""

converter = cattrs.Converter()
converter.register_unstructure_hook(enum.Enum, lambda value: value.value)
converter.register_unstructure_hook(tuple, lambda value: [converter.unstructure(v) for v in value])
converter.register_unstructure_hook(bytes, lambda value: value.decode("utf-8", "replace"))
converter.register_unstructure_hook(
    Mapping, lambda value: {str(k): converter.unstructure(v) for k, v in value.items()}
)


def unstructure(value: Any) -> Any:
    """``value`` as JSON-able data."""
    return converter.unstructure(value)


def event_fields(kind: type[Event]) -> tuple[str, ...]:
    """The fields a notification of event class ``kind`` carries (besides ``stream``)."""
    return ("stream", *(field.name for field in attrs.fields(kind)))


def notification_of(event: Event, stream: str, last_seq: int) -> tuple[str, dict[str, Any]]:
    """The notification (method, params) for ``event`` from the stream ``stream``.

    A :class:`~pywats.events.Gap` has no sequence number of its own: it carries the
    hub's latest (``last_seq``) when it was noticed, so a client knows where it stands.
    """
    params: dict[str, Any] = {"stream": stream, **converter.unstructure(event)}
    if isinstance(event, Gap):
        params["seq"] = last_seq
        return GAP, params
    return event.kind, params
