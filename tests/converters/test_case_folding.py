"""Letters that fold to ASCII, in every equipment converter's real files.

Four characters outside ASCII case-fold to ASCII letters: the Kelvin sign (U+212A, to
"k"), the long s (U+017F, to "s"), the dotless i (U+0131) and the dotted capital I
(U+0130). A pattern compiled with ``re.IGNORECASE`` takes them for those letters, and a
dictionary lookup by ``upper()`` or ``lower()`` then misses: the GR228X converter once
crashed with ``KeyError: 'K'`` on "100.2K" written with a Kelvin sign. Here such letters
replace a few ASCII ones anywhere in each real file (text, a Klippel folder, an XJTAG
archive's members): the converter must give reports or its own one-line error.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats.converters import Source, load_converter
from pywats.pipeline.steps import read_companions_now
from tests.converters.test_fuzz import check
from tests.converters.test_teradyne import SPECTRUM_SMALL

DATA = Path(__file__).parents[1] / "data" / "equipment"
FOLDING = {"k": "\u212a", "K": "\u212a", "s": "\u017f", "S": "\u017f", "i": "\u0131", "I": "\u0130"}
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FILES = {
    "atml": "ATML 5.00 [2 31 11 PM][5 15 2019].xml",
    "teststand-xml": "TSWithWats.xml",
    "i3070": "PNL0815-250314100012ict02",
    "teradyne-gr228x": "43420_BIO2.LOG",
    "teradyne-spectrum": "sample_ict_data.txt",
    "spea": "testdata_SN9871234012.csv",
    "klippel": "DUT xyz115 2020-05-14 10-01-37-5 UTC+0200.txt",
    "xjtag": "1234_14_25_32_10.08.2018_Pass.xjlog",
}


def fold(data: bytes, rnd: random.Random) -> bytes:
    """``data`` (UTF-8 or, failing that, Latin-1 text) with 1 to 6 foldable letters
    replaced by their non-ASCII twins, written back as UTF-8."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    spots = [at for at, char in enumerate(text) if char in FOLDING]
    chars = list(text)
    for at in rnd.sample(spots, min(len(spots), rnd.randint(1, 6))):
        chars[at] = FOLDING[chars[at]]
    return "".join(chars).encode("utf-8")


def folded_archive(data: bytes, rnd: random.Random) -> bytes:
    """An XJTAG archive whose XML members have folded letters."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            member = old.read(info)
            new.writestr(info, fold(member, rnd) if info.filename.endswith(".xml") else member)
    return out.getvalue()


def sample(name: str, path: Path) -> bytes:
    """The real file, or a whole part of it for the two big ones (each example stays fast)."""
    if name == "spea":  # the first of its ten runs
        data = path.read_bytes()
        return data[: data.index(b"FORMAT", 10)]
    if name == "teradyne-spectrum":  # the header, two sections and the trailer
        return SPECTRUM_SMALL
    return path.read_bytes()


def source(name: str, rnd: random.Random) -> Source:
    path = DATA / name / FILES[name]
    data = sample(name, path)
    if name == "xjtag":
        return Source(path, folded_archive(data, rnd))
    if name == "klippel":
        companions = read_companions_now(load_converter(name).converter, path)
        return Source(
            path, fold(data, rnd), {key: fold(value, rnd) for key, value in companions.items()}
        )
    return Source(path, fold(data, rnd))


@pytest.mark.parametrize("name", sorted(FILES))
@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_letters_that_fold_to_ascii_give_reports_or_a_clear_error(name: str, seed: int) -> None:
    check(load_converter(name), source(name, random.Random(seed)))
