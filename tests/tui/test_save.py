"""Saving a text from the TUI (``w``): the file appears whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui.screen import save_whole


def test_a_save_that_fails_half_way_leaves_no_file(tmp_path: Path) -> None:
    # A lone surrogate cannot be encoded: the write fails after the file was opened.
    with pytest.raises(UnicodeEncodeError):
        save_whole(tmp_path / "report.txt", "first line\n" + "\udc80")
    assert os.listdir(tmp_path) == []


def test_a_save_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        save_whole(tmp_path / "report.txt", "new")
    assert (tmp_path / "report.txt").read_text() == "mine"
    assert os.listdir(tmp_path) == ["report.txt"]
    save_whole(tmp_path / "other.txt", "new\n")
    assert (tmp_path / "other.txt").read_text() == "new\n"
