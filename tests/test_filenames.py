"""File names the kernel allows but UTF-8 does not (:mod:`pywats.filenames`): pure functions."""

from __future__ import annotations

import json
import os

from hypothesis import given
from hypothesis import strategies as st

from pywats import filenames

NAMES = st.binary(min_size=1, max_size=255).filter(lambda b: b"/" not in b and b"\0" not in b)


def test_shown_escapes_undecodable_bytes_and_control_characters() -> None:
    assert filenames.shown(os.fsdecode(b"caf\xe9.csv")) == "caf\\xe9.csv"
    assert filenames.shown(os.fsdecode(b"bad-\xff\xfe.json")) == "bad-\\xff\\xfe.json"
    assert filenames.shown("two\nlines.json") == "two\\nlines.json"
    assert filenames.shown("café.csv") == "café.csv"  # valid UTF-8 stays as it is
    assert filenames.shown("-leading and spaces .json") == "-leading and spaces .json"


@given(NAMES)
def test_any_name_is_shown_as_one_line_of_valid_text(raw: bytes) -> None:
    text = filenames.shown(os.fsdecode(raw))
    text.encode("utf-8")  # never raises
    assert "\n" not in text
    assert json.loads(json.dumps(text, ensure_ascii=False)) == text


@given(NAMES)
def test_the_database_form_is_lossless(raw: bytes) -> None:
    name = os.fsdecode(raw)
    stored = filenames.to_db(name)
    assert filenames.from_db(stored) == name
    assert os.fsencode(filenames.from_db(stored)) == raw
    # Valid UTF-8 is stored as text exactly as before (old databases read the same).
    assert isinstance(stored, bytes) == (raw.decode("utf-8", "ignore").encode() != raw)


def test_matching_finds_a_file_by_its_shown_name() -> None:
    real = os.fsdecode(b"caf\xe9.csv")
    names = [real, "other.csv", "caf\\xe9.csv"]
    assert filenames.matching("caf\\xe9.csv", names) == [real, "caf\\xe9.csv"]
    assert filenames.matching("other.csv", names) == ["other.csv"]
    assert filenames.matching("none", names) == []


@given(NAMES, st.integers(min_value=0, max_value=40))
def test_fit_keeps_short_names_and_shortens_long_ones_to_the_limit(
    raw: bytes, reserve: int
) -> None:
    name = os.fsdecode(raw)
    fitted = filenames.fit(name, reserve)
    size = len(os.fsencode(fitted))
    if len(raw) + reserve <= filenames.NAME_MAX:
        assert fitted == name
    else:
        assert 0 < size <= filenames.NAME_MAX - reserve
        assert "/" not in fitted
        assert "\0" not in fitted


def test_fit_keeps_the_extension_and_whole_characters() -> None:
    long = "é" * 200 + ".json"  # 405 bytes
    fitted = filenames.fit(long, len(".error.txt"))
    assert fitted.endswith(".json")
    assert len(fitted.encode("utf-8")) <= 245
    fitted.encode("utf-8")  # no character was cut in half
