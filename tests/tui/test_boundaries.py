"""Who may import what: the service never imports textual, the ``pywats`` CLI imports it
only when ``pywats tui`` (or ``pywats demo``) runs, and of the TUI's modules only the
bridge imports trio. Checked in a fresh interpreter (``sys.modules`` sees deferred
imports) and in the source (an import that nothing runs yet is still an import)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import tui

TUI = Path(tui.__file__).parent


def loaded(*modules: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout))


def test_the_service_and_the_cli_do_not_import_textual() -> None:
    packages = loaded(
        "pywats.service",
        "pywats.view",
        "pywats.rpc.api",
        "pywats.rpc.client",
        "pywats.cli",
        "pywats.cli.tui",
        "pywats.cli.demo",
    )
    assert "textual" not in packages
    assert "tui" not in packages
    done = subprocess.run(
        [sys.executable, "-c", "import pywats.cli; pywats.cli.build_parser()"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.returncode == 0


def test_the_app_runs_without_trio_until_the_bridge_is_made() -> None:
    assert "trio" not in loaded("tui.app", "tui.run", "tui.driver")


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_bridge_imports_trio() -> None:
    importing = sorted(p.name for p in TUI.glob("*.py") if "trio" in imports_of(p))
    assert importing == ["bridge.py"]


def test_no_service_module_imports_textual_or_the_tui() -> None:
    pywats = TUI.parent / "pywats"
    for path in sorted(pywats.rglob("*.py")):
        found = imports_of(path) & {"textual", "tui"}
        # The two commands that start the TUI import it inside their handler only.
        if path.relative_to(pywats).as_posix() in ("cli/tui.py", "cli/demo.py"):
            assert "textual" not in found, path
            continue
        assert not found, path
