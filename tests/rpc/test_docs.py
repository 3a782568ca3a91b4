"""docs/ipc.md agrees with the registry (the source of ``rpc.discover``)."""

from __future__ import annotations

from pathlib import Path

from pywats.rpc import docs
from pywats.rpc.api import REGISTRY
from pywats.rpc.errors import ErrorCode

IPC = Path(__file__).parents[2] / "docs" / "ipc.md"


def test_the_reference_in_ipc_md_is_the_registry_rendered() -> None:
    text = IPC.read_text(encoding="utf-8")
    _, _, rest = text.partition(docs.BEGIN)
    reference, found, _ = rest.partition(docs.END)
    assert found, "docs/ipc.md lost its reference markers"
    assert reference.strip() == docs.render().strip(), (
        "docs/ipc.md is behind the registry: run `python -m pywats.rpc.docs`"
    )


def test_ipc_md_names_every_method_notification_and_code() -> None:
    text = IPC.read_text(encoding="utf-8")
    for name in [*REGISTRY.methods, *REGISTRY.notifications]:
        assert f"`{name}`" in text, name
    for code in ErrorCode:
        assert f"`{int(code)}`" in text, code


def test_every_method_documents_itself() -> None:
    for spec in REGISTRY.methods.values():
        assert spec.doc
        assert spec.result
        for param in spec.params:
            assert param.doc, (spec.name, param.name)
