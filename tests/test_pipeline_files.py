"""The pipeline's file handling (:mod:`pywats.postaction`) on real files, without the pipeline.

Rules: real files under ``tmp_path`` (and ``/dev/shm`` for moves across file systems); the
assertions are about what ends up where, byte for byte.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pywats import filenames
from pywats.postaction import (
    SourceChanged,
    TooBig,
    delete_file,
    ensure_dir,
    file_sig,
    move_file,
    move_files,
    numbered,
    read_source,
    reject_file,
)


@pytest.fixture
def other_fs() -> Iterator[Path]:
    """A folder on another file system than tmp_path (tmpfs), or skip."""
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm")
    folder = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="pywats-test-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("name", "n", "expected"),
    [
        ("a.json", 0, "a.json"),
        ("a.json", 1, "a.1.json"),
        ("a.tar.gz", 2, "a.tar.2.gz"),
        ("README", 3, "README.3"),
        ("r.", 1, "r.1."),
    ],
)
def test_numbered_names(name: str, n: int, expected: str) -> None:
    assert numbered(name, n) == expected


def test_read_source(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"12345")
    got = read_source(path, 5)
    assert got is not None
    assert (got.data, got.size) == (b"12345", 5)
    assert got.sha256 == "5994471abb01112afcc18159f6cc74b4f511b99806da59b3caf5a9c173cacfc5"
    assert got.sig == file_sig(path)
    with pytest.raises(TooBig) as info:
        read_source(path, 4)
    assert info.value.size == 5
    assert read_source(tmp_path / "gone.json", 5) is None
    (tmp_path / "dir.json").mkdir()
    assert read_source(tmp_path / "dir.json", 5) is None


def test_move_never_overwrites(tmp_path: Path) -> None:
    source = tmp_path / "in" / "a.json"
    source.parent.mkdir()
    done = tmp_path / "done" / "sub"  # created, parents too
    for n in range(3):
        source.write_bytes(f"version {n}".encode())
        assert move_file(source, done) == done / numbered("a.json", n)
    assert listing(done) == ["a.1.json", "a.2.json", "a.json"]
    assert (done / "a.json").read_bytes() == b"version 0"
    assert (done / "a.2.json").read_bytes() == b"version 2"
    assert listing(source.parent) == []


def test_concurrent_moves_of_one_name_never_clobber(tmp_path: Path) -> None:
    done = tmp_path / "done"
    sources = []
    for n in range(20):
        folder = tmp_path / f"in{n}"
        folder.mkdir()
        sources.append(folder / "r.json")
        sources[-1].write_bytes(f"{n}".encode())
    barrier = threading.Barrier(len(sources))
    errors: list[BaseException] = []

    def move(source: Path) -> None:
        barrier.wait()
        try:
            move_file(source, done)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    contents = sorted(int(p.read_bytes()) for p in done.iterdir())
    assert contents == list(range(20))


def test_a_changed_file_is_not_touched(tmp_path: Path) -> None:
    source = tmp_path / "a.json"
    source.write_bytes(b"one")
    sig = file_sig(source)
    assert sig is not None
    source.write_bytes(b"two!")  # rewritten after it was read
    with pytest.raises(SourceChanged):
        move_file(source, tmp_path / "done", expect=sig)
    with pytest.raises(SourceChanged):
        reject_file(source, tmp_path / "error", "why", expect=sig)
    with pytest.raises(SourceChanged):
        delete_file(source, expect=sig)
    assert source.read_bytes() == b"two!"
    assert listing(tmp_path / "done") == []
    assert listing(tmp_path / "error") == []  # no sidecar without its file
    delete_file(source, expect=file_sig(source))
    assert not source.exists()


def test_reject_numbers_the_file_and_its_sidecar_alike(tmp_path: Path) -> None:
    error = tmp_path / "error"
    error.mkdir()
    (error / "a.json.error.txt").write_text("an explanation whose file was taken away")
    (error / "a.1.json").write_bytes(b"an older a.1 without explanation")
    source = tmp_path / "a.json"
    source.write_bytes(b"bad")
    placed = reject_file(source, error, "reason: bad\n")
    assert placed.path == error / "a.2.json"
    assert placed.sidecar == error / "a.2.json.error.txt"
    assert placed.path.read_bytes() == b"bad"
    assert placed.sidecar.read_text() == "reason: bad\n"
    assert (error / "a.1.json").read_bytes() == b"an older a.1 without explanation"
    assert not source.exists()


def test_moves_across_file_systems(tmp_path: Path, other_fs: Path) -> None:
    if os.stat(other_fs).st_dev == tmp_path.stat().st_dev:
        pytest.skip("/dev/shm is on the same file system as tmp_path")
    source = tmp_path / "a.json"
    source.write_bytes(b"payload")
    os.utime(source, (1_600_000_000, 1_600_000_000))
    (other_fs / "a.json").write_bytes(b"taken")
    assert move_file(source, other_fs) == other_fs / "a.1.json"
    assert (other_fs / "a.1.json").read_bytes() == b"payload"
    assert (other_fs / "a.1.json").stat().st_mtime == 1_600_000_000
    assert not source.exists()
    source.write_bytes(b"bad payload")
    placed = reject_file(source, other_fs / "error", "why\n")
    assert placed.path.read_bytes() == b"bad payload"
    assert placed.sidecar is not None
    assert placed.sidecar.read_text() == "why\n"
    assert not source.exists()
    # No temporary copies are left behind.
    assert listing(other_fs) == ["a.1.json", "a.json", "error"]
    assert listing(other_fs / "error") == ["a.json", "a.json.error.txt"]


def test_a_move_cut_off_by_a_crash_is_finished_not_duplicated(tmp_path: Path) -> None:
    source = tmp_path / "a.json"
    source.write_bytes(b"payload")
    done = tmp_path / "done"
    done.mkdir()
    os.link(source, done / "a.json")  # what a kill between link and unlink leaves
    assert move_file(source, done) == done / "a.json"
    assert listing(done) == ["a.json"]
    assert not source.exists()
    # The same bytes written again later are another file: it gets its own name.
    source.write_bytes(b"payload")
    os.utime(source, (1_600_000_000, 1_600_000_000))
    assert move_file(source, done) == done / "a.1.json"


def test_a_reject_cut_off_by_a_crash_is_finished_with_its_sidecar(tmp_path: Path) -> None:
    source = tmp_path / "a.json"
    source.write_bytes(b"bad")
    error = tmp_path / "error"
    error.mkdir()
    (error / "a.json.error.txt").write_text("first reason\n")
    os.link(source, error / "a.json")
    placed = reject_file(source, error, "second reason\n")
    assert placed.path == error / "a.json"
    assert placed.sidecar == error / "a.json.error.txt"
    assert placed.sidecar.read_text() == "first reason\n"
    assert listing(error) == ["a.json", "a.json.error.txt"]
    assert not source.exists()


def test_a_copy_across_file_systems_cut_off_by_a_crash_is_finished(
    tmp_path: Path, other_fs: Path
) -> None:
    if os.stat(other_fs).st_dev == tmp_path.stat().st_dev:
        pytest.skip("/dev/shm is on the same file system as tmp_path")
    source = tmp_path / "a.json"
    source.write_bytes(b"payload")
    shutil.copy2(source, other_fs / "a.json")  # the copy kept the mtime, as the move does
    (other_fs / "b.json").write_bytes(b"payload")  # same bytes, another time
    os.utime(other_fs / "b.json", (1_600_000_000, 1_600_000_000))
    assert move_file(source, other_fs) == other_fs / "a.json"
    assert not source.exists()
    source = tmp_path / "b.json"
    source.write_bytes(b"payload")
    assert move_file(source, other_fs) == other_fs / "b.1.json"
    assert listing(other_fs) == ["a.json", "b.1.json", "b.json"]


def test_move_files_moves_each_and_reports_each_failure(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    done = tmp_path / "done"
    (done / "b.json").parent.mkdir(parents=True)
    (done / "b.json").write_bytes(b"an older b")
    sources = {name: inbox / name for name in ("a.json", "b.json", "gone.json", "changed.json")}
    for name, path in sources.items():
        path.write_bytes(name.encode())
    changed_sig = file_sig(sources["changed.json"])
    sources["changed.json"].write_bytes(b"rewritten after it was read")
    sources["gone.json"].unlink()
    results = move_files(
        [
            (sources["a.json"], done, file_sig(sources["a.json"])),
            (sources["b.json"], done / "sub", None),
            (sources["b.json"].with_name("missing.json"), done, None),
            (sources["changed.json"], done, changed_sig),
        ]
    )
    assert results[0] == done / "a.json"
    assert results[1] == done / "sub" / "b.json"
    assert isinstance(results[2], FileNotFoundError)
    assert isinstance(results[3], SourceChanged)
    assert listing(inbox) == ["changed.json"]  # the changed file is left for another round
    assert listing(done) == ["a.json", "b.json", "sub"]
    assert (done / "a.json").read_bytes() == b"a.json"
    assert (done / "b.json").read_bytes() == b"an older b"
    # A name clash within one call is numbered too.
    (inbox / "x").mkdir()
    (inbox / "y").mkdir()
    (inbox / "x" / "r.json").write_bytes(b"x")
    (inbox / "y" / "r.json").write_bytes(b"y")
    moved = move_files([(inbox / "x" / "r.json", done, None), (inbox / "y" / "r.json", done, None)])
    assert moved == [done / "r.json", done / "r.1.json"]
    assert (done / "r.1.json").read_bytes() == b"y"


def test_ensure_dir(tmp_path: Path) -> None:
    ensure_dir(tmp_path / "a" / "b" / "c")
    assert (tmp_path / "a" / "b" / "c").is_dir()
    ensure_dir(tmp_path / "a" / "b" / "c")  # already there: fine
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        ensure_dir(tmp_path / "file" / "sub")


# --- Names the kernel allows: not UTF-8, newlines, 255 bytes, leading '-' --------------

ODD_NAMES = [
    b"caf\xe9.csv",
    b"bad-\xff\xfe.json",
    b"two\nlines.json",
    b"-leading and trailing .json",
    b" spaced name.json",
    b"x" * 250 + b".json",  # 255 bytes: NAME_MAX
]
ODD_IDS = ["latin-1", "invalid", "newline", "leading-dash", "leading-space", "255-bytes"]


@pytest.mark.parametrize("raw", ODD_NAMES, ids=ODD_IDS)
def test_a_move_keeps_any_name_byte_for_byte(tmp_path: Path, raw: bytes) -> None:
    watch, done = tmp_path / "in", tmp_path / "done"
    watch.mkdir()
    source = Path(os.fsdecode(os.path.join(os.fsencode(watch), raw)))
    source.write_bytes(b"{}")
    moved = move_file(source, done, expect=file_sig(source))
    assert os.fsencode(moved.name) == raw
    assert os.listdir(os.fsencode(done)) == [raw]
    # A second file of that name is numbered, still within the name limit.
    source.write_bytes(b"{ }")
    again = move_file(source, done)
    assert again != moved
    assert len(os.fsencode(again.name)) <= 255
    assert again.read_bytes() == b"{ }"


@pytest.mark.parametrize("raw", ODD_NAMES, ids=ODD_IDS)
def test_a_reject_of_any_name_writes_a_readable_sidecar(tmp_path: Path, raw: bytes) -> None:
    from pywats.errorfiles import list_error_files, restore_error_file

    watch, error = tmp_path / "in", tmp_path / "error"
    watch.mkdir()
    source = Path(os.fsdecode(os.path.join(os.fsencode(watch), raw)))
    source.write_bytes(b"not a report")
    placed = reject_file(source, error, f"file:      {source}\nreason:    bad\n")
    assert placed.sidecar is not None
    assert placed.path.read_bytes() == b"not a report"
    assert not source.exists()
    text = placed.sidecar.read_bytes().decode("utf-8")  # valid UTF-8, whatever the name
    assert "reason:    bad" in text
    # The file's path is one line of text, its undecodable bytes as \\xNN.
    assert f"file:      {filenames.shown(source)}\n" in text
    if raw == b"caf\xe9.csv":
        assert placed.path.name == source.name
        assert "caf\\xe9.csv" in text
    if len(raw) == 255:
        # name + ".error.txt" would not fit: the file is filed under a shortened name,
        # with its sidecar beside it, and the sidecar names the original.
        assert placed.path.name.endswith(".json")
        assert placed.sidecar.name == placed.path.name + ".error.txt"
    # Listed as valid text; restored by the name the listing shows.
    [listed], _ = list_error_files(error)
    listed.name.encode("utf-8")
    listed.path.encode("utf-8")
    assert "\n" not in listed.name
    back = restore_error_file(error, watch, listed.name).path
    assert back.parent == watch
    assert back.read_bytes() == b"not a report"
    assert os.listdir(error) == []


def test_a_restore_by_shown_name_prefers_the_exact_name(tmp_path: Path) -> None:
    from pywats.errorfiles import (
        ErrorFileNotFoundError,
        RestoreRefusedError,
        restore_error_file,
    )

    watch, error = tmp_path / "in", tmp_path / "error"
    watch.mkdir()
    error.mkdir()
    odd = Path(os.fsdecode(os.path.join(os.fsencode(error), b"caf\xe9.csv")))
    odd.write_bytes(b"latin-1 name")
    literal = error / "caf\\xe9.csv"  # a real backslash: shows the same
    literal.write_bytes(b"backslash name")
    assert restore_error_file(error, watch, "caf\\xe9.csv").path.read_bytes() == b"backslash name"
    assert restore_error_file(error, watch, "caf\\xe9.csv").path.read_bytes() == b"latin-1 name"
    with pytest.raises(ErrorFileNotFoundError):
        restore_error_file(error, watch, "caf\\xe9.csv")  # both are back
    with pytest.raises(RestoreRefusedError):
        restore_error_file(error, watch, "../in/caf\\xe9.csv")
