"""Memory per format, and of ``pywats serve`` end to end. Prints figures; not a test.

    .venv/bin/python bench/memory.py [--mb MB] [--format NAME ...] [--serve]
        [--serve-files N] [--serve-mb MB] [--budget-mb MB]

Per format (``docs/performance.md``, "Memory per format"): every real file of
``tests/data/equipment/<format>/`` (wsjf and wsxf: the WATS exports in ``tests/data``),
and a scaled-up file of about ``--mb`` MB where the format allows (a WSJF or WSXF report
with many steps, a SPEA/CSV/WSTF file with many rows or runs, a log repeated), each
converted in a fresh subprocess the way the pipeline does it (read + convert + validate
+ ``wsjf.dumps``, :func:`pywats.pipeline.steps.convert`). Printed: the file's size S, the
peak RSS increase over the process before it read the file (``VmHWM`` after resetting it
through ``/proc/self/clear_refs``), that increase as a factor of S, the seconds taken,
and the size of the WSJF made. Small files show mostly the fixed cost of converting
anything; the factor of the scaled files is the one that matters for big files
(:data:`pywats.pipeline.budget.FACTORS`).

``--serve``: ``pywats serve`` (default config except the folders) with a real
``pywats receiver`` on 127.0.0.1, ``--serve-files`` WSJF files of ``--serve-mb`` MB each
dropped at once; prints the serve process's peak RSS (``VmHWM``) once every file is
uploaded or in the error folder, and the receiver's. ``--budget-mb`` sets
``[convert] memory_budget_mb`` (0 leaves the default).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

# bench/ holds queue.py, named like the stdlib module trio imports: replace this script's
# folder on the path by the repository root (for the test harness).
if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.faults.test_memory import big_wsjf, vm_hwm  # noqa: E402
from tests.integration.harness import (  # noqa: E402
    Instance,
    ReceiverProcess,
    running,
    stop,
    wait_for,
)

DATA = ROOT / "tests" / "data"
EQUIPMENT = DATA / "equipment"
MiB = 1024 * 1024


def _convert_bench() -> Any:
    # bench/ is not a package: load bench/convert.py by its path, for the one list of
    # formats and the one csv configuration both benchmarks use.
    spec = importlib.util.spec_from_file_location("bench_convert", ROOT / "bench" / "convert.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_CONVERT = _convert_bench()
FORMATS: tuple[str, ...] = _CONVERT.FORMATS
CSV_ARGUMENTS: dict[str, Any] = _CONVERT.CSV_ARGUMENTS


# --- The child: one file, one fresh process ---------------------------------------------


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def child(name: str, path: Path, arguments: dict[str, Any]) -> dict[str, Any]:
    """Convert ``path`` as the pipeline does; the peak RSS it took (this process only)."""
    from pywats import defaults, postaction
    from pywats.converters import BUILTINS, ConversionContext
    from pywats.converters.registry import check_converter_class, import_spec
    from pywats.pipeline import steps

    spec = BUILTINS[name]
    cls = check_converter_class(import_spec(spec, key=name), key=name, origin=spec)
    converter = cls()
    context = ConversionContext(arguments=arguments) if arguments else ConversionContext()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    before = _status("VmRSS:")
    start = time.perf_counter()
    got = postaction.read_source(path, defaults.MAX_FILE_BYTES * 4)
    assert got is not None
    companions = steps.read_companions_now(converter, path)
    size = got.size + sum(len(b) for b in companions.values())
    try:
        reports = steps.convert(converter, context, path, got.data, companions)
    except steps.Rejection as exc:
        return {"error": exc.reason}
    seconds = time.perf_counter() - start
    peak = _status("VmHWM:")
    return {
        "size": size,
        "peak": peak - before,
        "seconds": seconds,
        "reports": len(reports),
        "body": sum(len(r.body) for r in reports),
    }


def measure(name: str, path: Path, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, str(path), json.dumps(arguments or {})],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- Scaled-up inputs -------------------------------------------------------------------


_IDS = {"Id", "ID", "id"}


def _scale_xml(data: bytes, target: int) -> bytes | None:
    """The document with the children of its most repeated element copied until it holds
    about ``target`` bytes (None if nothing repeats)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    if root.tag.startswith("{"):  # keep the default namespace unprefixed
        ET.register_namespace("", root.tag[1:].split("}")[0])
    best: tuple[int, ET.Element | None, str] = (0, None, "")
    for element in root.iter():
        counts = Counter(child.tag for child in element)
        for tag, count in counts.items():
            if count > best[0]:
                best = (count, element, tag)
    count, parent, tag = best
    if parent is None or count < 2:
        return None
    kids = [c for c in parent if c.tag == tag]
    each = sum(len(ET.tostring(kid)) for kid in kids)
    times = max(1, (target - len(data)) // max(1, each) + 1)
    where = list(parent).index(kids[-1]) + 1
    fresh = 1 + max(
        (int(v) for e in root.iter() for k, v in e.attrib.items() if k in _IDS and v.isdigit()),
        default=0,
    )
    for _ in range(times - 1):
        for kid in kids:
            twin = copy.deepcopy(kid)
            for element in twin.iter():  # numeric ids stay unique (step ids must)
                for key in _IDS & element.attrib.keys():
                    if element.attrib[key].isdigit():
                        element.attrib[key] = str(fresh)
                        fresh += 1
            parent.insert(where, twin)
            where += 1
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _scale_lines(data: bytes, target: int) -> list[bytes]:
    """Candidates: the whole file repeated (many runs), and its most common kind of line
    repeated in place (many rows)."""
    times = max(1, target // max(1, len(data)) + 1)
    out = [data * times]
    lines = data.splitlines(keepends=True)
    heads = Counter(line.split(b";")[0].split(b"\t")[0].split(b" ")[0] for line in lines)
    if heads:
        head = heads.most_common(1)[0][0]
        rows = [i for i, line in enumerate(lines) if line.startswith(head)]
        first, last = rows[0], rows[-1]
        block = b"".join(lines[first : last + 1])
        more = max(1, (target - len(data)) // max(1, len(block)) + 1)
        out.append(b"".join(lines[:first]) + block * more + b"".join(lines[last + 1 :]))
    return out


def _wstf(target: int) -> bytes:
    steps = 250
    one = len(_wstf_uut(0, steps))
    return b"".join(_wstf_uut(u, steps) for u in range(max(1, target // one)))


def _wstf_uut(u: int, steps: int) -> bytes:
    parts = [
        f"--Header-Start--\nSerialNumber\tSN-{u:05d}\nPartNumber\tPCBA-100\nRevision\tA\n"
        "StartDateTime\t2026-02-01T09:15:00+01:00\nOperatorName\tola\n"
        "--Step-Data-Start--\nSequenceCall\tPower\n"
    ]
    parts.extend(
        f"NumericLimitTest\tVCC {s}\t\t{5 + s / 1e4:.4f}\t4.9\t5.1\tGELE\tV\n" for s in range(steps)
    )
    parts.append("EndSequenceCall\n--Step-Data-End--\nUUTStatus\tPassed\n--UUT-End--\n")
    return "".join(parts).encode()


def _csv(target: int) -> bytes:
    lines = ["Serial,Date,Operator,VCC,VCC_min,VCC_max,Idle,Result"]
    row = 60
    lines.extend(
        f"SN-{n:06d},2026-02-01T09:15:00+01:00,ola,{5 + n % 7 / 100:.2f},4.9,5.1,0.3,"
        for n in range(max(1, target // row))
    )
    return ("\n".join(lines) + "\n").encode()


def real_files(name: str) -> list[Path]:
    if name == "wsjf":
        return sorted(DATA.glob("*.json"))
    if name == "wsxf":
        return sorted(DATA.glob("*.xml"))
    folder = EQUIPMENT / name
    if not folder.is_dir():
        return []
    companion_dirs = {p.with_suffix("") for p in folder.glob("*.txt") if p.with_suffix("").is_dir()}
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name != "README.md" and p not in companion_dirs
    )


def scaled(name: str, target: int, tmp: Path) -> list[tuple[str, bytes]]:
    """(label, data) candidates of about ``target`` bytes for ``name``."""
    if name == "wsjf":
        return [("steps", big_wsjf(target)), ("steps, compact", big_wsjf(target, compact=True))]
    if name == "wstf":
        return [("runs", _wstf(target))]
    if name == "csv":
        return [("rows", _csv(target))]
    if name == "klippel":
        return []  # a header and a companion folder: nothing that grows alone
    files = real_files(name)
    if not files:
        return []
    biggest = max(files, key=lambda p: p.stat().st_size)
    data = biggest.read_bytes()
    if data.lstrip()[:1] == b"<":
        xml = _scale_xml(data, target)
        return [] if xml is None else [(f"{biggest.name}, repeated elements", xml)]
    return [
        (f"{biggest.name}, {how}", got)
        for how, got in zip(
            ("file repeated", "rows repeated"), _scale_lines(data, target), strict=False
        )
    ]


def _suffix(name: str) -> str:
    return {"wsjf": ".json", "wsxf": ".xml", "wstf": ".txt", "csv": ".csv"}.get(name, "")


def per_format(names: list[str], target: int) -> None:
    print(
        f"{'format':<18} {'file':<44} {'S MB':>8} {'peak MiB':>9} {'x S':>6} {'s':>6} "
        f"{'WSJF MB':>8}"
    )
    with tempfile.TemporaryDirectory(prefix="pywats-memory-") as tmp_name:
        tmp = Path(tmp_name)
        for name in names:
            arguments = CSV_ARGUMENTS if name == "csv" else None
            rows: list[tuple[str, dict[str, Any]]] = []
            for path in real_files(name):
                if name == "csv":
                    continue  # the real CSV files need their own column mappings
                rows.append((path.name, measure(name, path, arguments)))
            for label, data in scaled(name, target, tmp):
                path = tmp / f"{name}-{len(rows)}{_suffix(name)}"
                path.write_bytes(data)
                got = measure(name, path, arguments)
                rows.append((f"scaled: {label}", got))
                path.unlink()
            for label, got in rows:
                short = label if len(label) <= 44 else label[:41] + "..."
                if "error" in got:
                    print(f"{name:<18} {short:<44} does not convert: {got['error'][:60]}")
                    continue
                print(
                    f"{name:<18} {short:<44} {got['size'] / 1e6:>8.3f} "
                    f"{got['peak'] / MiB:>9.1f} {got['peak'] / got['size']:>6.1f} "
                    f"{got['seconds']:>6.2f} {got['body'] / 1e6:>8.2f}",
                    flush=True,
                )


# --- pywats serve end to end --------------------------------------------------------------


def serve(files: int, size: int, budget_mb: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pywats-memory-serve-") as tmp_name:
        tmp = Path(tmp_name)
        receiver = ReceiverProcess(tmp / "receiver.db")
        try:
            instance = Instance(tmp, "mem", server_url=receiver.url)
            if budget_mb:
                text = instance.config.read_text()
                instance.config.write_text(
                    text.replace(
                        "[[converters]]",
                        f"[convert]\nmemory_budget_mb = {budget_mb}\n[[converters]]",
                        1,
                    )
                )
            proc = instance.serve()
            with running(proc):
                instance.wait_ready()
                idle = vm_hwm(proc.pid)
                start = time.monotonic()
                for index in range(files):
                    data = big_wsjf(size, seed=index)
                    tmp_path = instance.watch / f".big{index}.tmp"
                    tmp_path.write_bytes(data)
                    tmp_path.rename(instance.watch / f"big{index}.json")
                    del data

                def settled() -> bool:
                    errors = list(instance.error.glob("*.json")) if instance.error.exists() else []
                    # The receiver's database, not its HTTP API: busy with big bodies, it
                    # may answer late.
                    return len(receiver.ids()) + len(errors) >= files

                wait_for(settled, timeout=900, what="every file uploaded or rejected")
                elapsed = time.monotonic() - start
                peak = vm_hwm(proc.pid)
                rejected = len(list(instance.error.glob("*.json")))
                receiver_peak = vm_hwm(receiver.proc.pid)
                stop(proc)
            print(
                f"serve: {files} x {size / 1e6:.0f} MB WSJF, budget "
                f"{budget_mb or 'default'} MiB: peak RSS {peak / MiB:.0f} MiB (idle "
                f"{idle / MiB:.0f} MiB), {files - rejected} uploaded, {rejected} to the error "
                f"folder, {elapsed:.1f} s; receiver peak RSS {receiver_peak / MiB:.0f} MiB"
            )
        finally:
            receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="size of the scaled files")
    parser.add_argument("--format", action="append", default=[], help="only these formats")
    parser.add_argument("--serve", action="store_true", help="measure pywats serve end to end")
    parser.add_argument("--serve-files", type=int, default=6)
    parser.add_argument("--serve-mb", type=float, default=40.0)
    parser.add_argument("--budget-mb", type=int, default=0)
    options = parser.parse_args()
    print(f"machine: nproc={os.cpu_count()}, python {platform.python_version()}")
    print(f"         {platform.platform()}")
    if options.serve:
        serve(options.serve_files, int(options.serve_mb * 1e6), options.budget_mb)
        return
    names = [n for n in FORMATS if not options.format or n in options.format]
    per_format(names, int(options.mb * 1e6))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        name, path, arguments = sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
        print(json.dumps(child(name, path, arguments)))
        sys.exit(0)
    main()
