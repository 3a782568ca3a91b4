"""``pywats files list|restore``: the files a running instance could not convert, and
moving one back to its watch folder (``files.errors`` / ``files.restore``).

``list`` prints each file of the error folders (newest first) with the first line of its
``.error.txt`` and the companions filed with it (Klippel's result folder beside its
header); ``--full`` prints the whole text. ``restore FOLDER NAME`` moves it back with its
companions (they first, the file last), to be converted again (its ``.error.txt`` goes;
nothing in the watch folder is ever overwritten: if a name of the group is taken, nothing
moves). Exit codes as :mod:`pywats.cli.control`.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pywats.cli.control import EXIT_OK, add_instance, run_client
from pywats.rpc.client import RpcClient

__all__ = ["register"]

WIDTH = 80


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "(no .error.txt)"


def _cmd_files(args: argparse.Namespace) -> int:
    async def body(client: RpcClient) -> int:
        if args.files_command == "restore":
            moved = await client.call("files.restore", folder=args.folder, name=args.name)
            if args.json:
                print(json.dumps(moved, indent=2, ensure_ascii=False))
                return EXIT_OK
            for companion in moved.get("companions", []):
                print(f"moved back to {companion} (a companion, first)")
            print(f"moved back to {moved['path']}")
            return EXIT_OK
        params: dict[str, Any] = {"limit": args.limit}
        if args.folder:
            params["folder"] = args.folder
        answer = await client.call("files.errors", **params)
        if args.json:
            print(json.dumps(answer, indent=2, ensure_ascii=False))
            return EXIT_OK
        files = answer["files"]
        if not files:
            print("no files in the error folders")
        for entry in files:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry["mtime"]))
            print(f"{entry['folder']}  {entry['name']}  ({when}, {entry['size']} bytes)")
            companions = entry.get("companions") or []
            if companions:
                print(f"    with {', '.join(companions)} (moved back with it)")
            if args.full:
                for line in (entry["error"] or "(no .error.txt)").rstrip().splitlines():
                    print(f"    {line}")
            else:
                line = _first_line(entry["error"])
                print(f"    {line if len(line) <= WIDTH - 4 else line[: WIDTH - 5] + '…'}")
        if answer.get("truncated"):
            print(f"(the newest {len(files)} shown; --limit shows more)")
        return EXIT_OK

    return run_client("files", args.instance, body)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``files`` command."""
    files = subparsers.add_parser(
        "files", help="files a running instance could not convert; move one back"
    )
    sub = files.add_subparsers(dest="files_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="the error folders' files, with why")
    listing.add_argument("--folder", metavar="NAME", help="only this watch folder entry's")
    listing.add_argument("--limit", type=int, default=200, help="at most (default 200)")
    listing.add_argument("--full", action="store_true", help="the whole .error.txt of each")
    restore = sub.add_parser("restore", help="move a file back to its watch folder")
    restore.add_argument("folder", metavar="FOLDER", help="the watch folder entry's name")
    restore.add_argument("name", metavar="NAME", help="the file's name as `files list` shows it")
    for parser in (listing, restore):
        add_instance(parser)
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")
        parser.set_defaults(func=_cmd_files)
