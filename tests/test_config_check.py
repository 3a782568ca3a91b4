"""``pywats config check`` and ``pywats serve`` refuse the same configs, naming the same key.

Both run :func:`pywats.plan.prepare`. Every kind of config that ``serve`` refuses before it
opens anything is checked here through ``prepare`` and through ``config check`` run
in-process; a handful are also run as real ``config check`` and ``serve`` processes, to
show that the two commands agree end to end (``serve`` refuses a bad config before it
starts, so this takes about half a second each).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from pywats import cli
from pywats.config import ConfigCheckError
from pywats.errors import ConfigError
from pywats.plan import Plan, prepare

# Every case is a config file (``{tmp}`` stands for the test's folder), the key path the
# error must name, and a piece of its reason.
WSJF = '[[converters]]\nname = "wsjf"\nwatch = "{tmp}/in"\n'


@attrs.frozen
class Case:
    toml: str
    key: str
    reason: str
    files: dict[str, str] = attrs.Factory(dict)
    """Files to create first (path below ``{tmp}`` -> content)."""


CASES = {
    "nan duration": Case("[upload]\nretry_max_s = nan\n" + WSJF, "upload.retry_max_s", "got nan"),
    "inf duration": Case("[server]\nread_timeout_s = inf\n", "server.read_timeout_s", "got inf"),
    "negative nan": Case(
        "[upload]\nshutdown_deadline_s = -nan\n", "upload.shutdown_deadline_s", "nan"
    ),
    "inf settle time": Case(WSJF + "settle_s = inf\n", "converters[0].settle_s", "got inf"),
    "inf retention": Case("[queue]\nretention_days = inf\n", "queue.retention_days", "got inf"),
    "ftp proxy": Case('[server]\nproxy = "ftp://x"\n', "server.proxy", "http:// or https://"),
    "proxy not a url": Case('[server]\nproxy = "not a url"\n', "server.proxy", "http://"),
    "proxy without host": Case('[server]\nproxy = "http://"\n', "server.proxy", "host"),
    "server url without scheme": Case(
        '[server]\nurl = "wats.example.com"\n', "server.url", "http://"
    ),
    "server url with password": Case('[server]\nurl = "https://u:p@w"\n', "server.url", "password"),
    "no workers": Case("[upload]\nworkers = 0\n", "upload.workers", "1 to 64"),
    "65 workers": Case("[upload]\nworkers = 65\n", "upload.workers", "1 to 64"),
    "true workers": Case("[upload]\nworkers = true\n", "upload.workers", "integer"),
    "65 converter workers": Case("[convert]\nworkers = 65\n", "convert.workers", "1 to 64"),
    "retry base above max": Case(
        "[upload]\nretry_base_s = 10\nretry_max_s = 5\n", "upload.retry_base_s", "retry_max_s"
    ),
    "unknown converter": Case(
        '[[converters]]\nname = "nope"\nwatch = "{tmp}/in"\n', "converters[0]", "unknown converter"
    ),
    "bad converter arguments": Case(
        '[[converters]]\nname = "csv"\nwatch = "{tmp}/in"\n[converters.arguments]\nbogus = 1\n',
        "converters[0].arguments.bogus",
        "unknown argument",
    ),
    "done_dir is the watch folder": Case(
        WSJF + 'done_dir = "{tmp}/in"\n', "converters[0]", "done_dir {tmp}/in is the watch folder"
    ),
    "error_dir is the watch folder": Case(
        WSJF + 'error_dir = "{tmp}/in"\n', "converters[0]", "error_dir {tmp}/in is the watch folder"
    ),
    "no patterns": Case(WSJF + "patterns = []\n", "converters[0]", "at least one glob"),
    "a pattern with a slash": Case(WSJF + 'patterns = ["a/*.json"]\n', "converters[0]", "'/'"),
    "done_dir is error_dir": Case(
        WSJF + 'done_dir = "{tmp}/x"\nerror_dir = "{tmp}/x"\n', "converters[0]", "same folder"
    ),
    "done_dir inside a recursive watch": Case(
        WSJF + 'recursive = true\ndone_dir = "{tmp}/in/done"\n', "converters[0]", "converted again"
    ),
    "one folder watched two ways": Case(
        WSJF + 'settle_s = 1\n[[converters]]\nname = "wsxf"\nwatch = "{tmp}/in"\nsettle_s = 3\n',
        "converters[1]",
        "different settle_s",
    ),
    "watch inside a recursive watch": Case(
        WSJF + 'recursive = true\n[[converters]]\nname = "wsxf"\nwatch = "{tmp}/in/sub"\n',
        "converters[1]",
        "recursively",
    ),
    "done_dir is another entry's watch": Case(
        WSJF + 'done_dir = "{tmp}/b"\n[[converters]]\nname = "wsxf"\nwatch = "{tmp}/b"\n',
        "converters[1]",
        "converted again",
    ),
    "unknown allowed group": Case(
        '[rpc]\nallowed_group = "no-such-pywats-group"\n',
        "rpc.allowed_group",
        "no group named 'no-such-pywats-group'",
    ),
    "watch is a file": Case(
        WSJF, "converters[0].watch", "{tmp}/in exists and is not a folder", files={"in": "x"}
    ),
    "watch is below a file": Case(
        '[[converters]]\nname = "wsjf"\nwatch = "{tmp}/f/in"\n',
        "converters[0].watch",
        "{tmp}/f/in cannot be created: {tmp}/f exists and is not a folder",
        files={"f": "x"},
    ),
    "error_dir is a file": Case(
        WSJF + 'error_dir = "{tmp}/err"\n',
        "converters[0].error_dir",
        "not a folder",
        files={"err": ""},
    ),
    "default done folder is a file": Case(
        WSJF, "converters[0].done_dir", "not a folder", files={"state/done": ""}
    ),
    "queue folder is a file": Case(
        '[queue]\npath = "{tmp}/db/queue.db"\n', "queue.path", "{tmp}/db exists", files={"db": ""}
    ),
    "queue path is a folder": Case(
        '[queue]\npath = "{tmp}/db"\n', "queue.path", "is a folder", files={"db/x": ""}
    ),
    "token_file missing": Case(
        '[server]\ntoken_file = "{tmp}/nope"\n', "server.token_file", "cannot read"
    ),
    "token_file empty": Case(
        '[server]\ntoken_file = "{tmp}/token"\n',
        "server.token_file",
        "is empty",
        files={"token": "\n"},
    ),
    "token_file of two lines": Case(
        '[server]\ntoken_file = "{tmp}/token"\n',
        "server.token_file",
        "one line",
        files={"token": "abc\ndef\n"},
    ),
    "inline token not ascii": Case('[server]\ntoken = "tökén"\n', "server.token", "ASCII"),
}

# Run as real processes too: one of each family, each one that `config check` said ok to
# before it ran the same check as serve.
PROCESS_CASES = [
    "nan duration",
    "ftp proxy",
    "one folder watched two ways",
    "watch is a file",
    "token_file of two lines",
    "queue folder is a file",
    "unknown allowed group",
]


def environment(tmp_path: Path) -> dict[str, str]:
    """The variables that decide where an instance keeps things, all inside ``tmp_path``."""
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
        "XDG_DATA_HOME": str(tmp_path / "home" / ".local" / "share"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "STATE_DIRECTORY": str(tmp_path / "state"),
        "RUNTIME_DIRECTORY": str(tmp_path / "run"),
        "CONFIGURATION_DIRECTORY": str(tmp_path / "etc"),
    }
    return env


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path``, with this process's instance paths pointed into it and no token."""
    for name, value in environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    for name in ("PYWATS_TOKEN", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def write_case(tmp_path: Path, case: Case) -> Path:
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    config = tmp_path / "ict.toml"
    config.write_text(case.toml.replace("{tmp}", str(tmp_path)))
    return config


def run_pywats(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYWATS_TOKEN", "NOTIFY_SOCKET")}
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.update(environment(tmp_path))
    return subprocess.run(
        [sys.executable, "-m", "pywats.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def expected(case: Case, tmp_path: Path) -> tuple[str, str]:
    return case.key, case.reason.replace("{tmp}", str(tmp_path))


@pytest.mark.parametrize("name", CASES)
def test_prepare_refuses_it_naming_the_key_path(isolated: Path, name: str) -> None:
    case = CASES[name]
    path = write_case(isolated, case)
    key, reason = expected(case, isolated)
    with pytest.raises(ConfigCheckError) as info:
        prepare("ict", path)
    found = [(e.key, e.reason, e.file) for e in info.value.errors]
    assert any(k == key and reason in r for k, r, _ in found), found
    # Each error names the file it is about (or nothing, for what is not in a file).
    assert {file for _, _, file in found} <= {str(path), ""}


@pytest.mark.parametrize("name", CASES)
def test_config_check_refuses_it_naming_the_key_path(
    isolated: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]
    path = write_case(isolated, case)
    key, reason = expected(case, isolated)
    assert cli.main(["config", "check", "--instance", "ict", "--config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    line = f"pywats config check: {path}: {key}: "
    assert any(x.startswith(line) and reason in x for x in err.splitlines()), err


@pytest.mark.slow
@pytest.mark.parametrize("name", PROCESS_CASES)
def test_serve_and_config_check_refuse_it_with_the_same_key_path(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    path = write_case(tmp_path, case)
    key, reason = expected(case, tmp_path)
    checked = run_pywats(tmp_path, "config", "check", "--instance", "ict", "--config", str(path))
    served = run_pywats(tmp_path, "serve", "--instance", "ict", "--config", str(path))
    for command, result in (("config check", checked), ("serve", served)):
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        line = f"pywats {command}: {path}: {key}: "
        assert any(x.startswith(line) and reason in x for x in result.stderr.splitlines()), (
            command,
            result.stderr,
        )
    # The same errors, word for word, and nothing opened or created by serve.
    assert checked.stderr.replace("pywats config check:", "pywats serve:") == served.stderr
    assert not (tmp_path / "state" / "queue.db").exists()
    assert not (tmp_path / "state" / "lock").exists()


def test_every_problem_is_reported_at_once(isolated: Path) -> None:
    (isolated / "in").write_text("a file where the watch folder should be")
    path = write_case(
        isolated,
        Case(
            '[server]\nproxy = "ftp://x"\ntoken_file = "{tmp}/nope"\n'
            '[[converters]]\nname = "nope"\nwatch = "{tmp}/a"\n'
            '[[converters]]\nname = "wsjf"\nwatch = "{tmp}/in"\n'
            '[[converters]]\nname = "csv"\nwatch = "{tmp}/c"\n[converters.arguments]\nx = 1\n',
            "",
            "",
        ),
    )
    # The TOML layer finds the proxy; nothing else can be checked without a Config.
    with pytest.raises(ConfigCheckError) as info:
        prepare("ict", path)
    assert [e.key for e in info.value.errors] == ["server.proxy"]
    path.write_text(path.read_text().replace('proxy = "ftp://x"\n', ""))
    with pytest.raises(ConfigCheckError) as info:
        prepare("ict", path, server_url="ftp://w")
    assert [e.key for e in info.value.errors] == [
        "--server-url",
        "server.token_file",
        "converters[0]",
        "converters[1].watch",
        "converters[2].arguments.x",
    ]


def test_a_good_config_is_ok_and_prepare_returns_what_serve_runs(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (isolated / "token").write_text("s3cr3t-token\n")
    path = write_case(
        isolated,
        Case(
            '[server]\nurl = "https://wats.example.com"\ntoken_file = "{tmp}/token"\n'
            'proxy = "http://user:pw@proxy:3128"\n[upload]\nworkers = 64\n' + WSJF,
            "",
            "",
        ),
    )
    config, token, plan = prepare("ict", path)
    assert isinstance(plan, Plan)
    assert token == "s3cr3t-token"
    assert plan.uploader.token == token
    assert plan.uploader.workers == 64
    assert plan.uploader.proxy == "http://user:pw@proxy:3128"
    assert [f.watch for f in plan.folders] == [isolated / "in"]
    assert plan.db_path == isolated / "state" / "queue.db"
    assert config.source == path
    # Nothing was created: serve makes the folders when it starts.
    assert not (isolated / "in").exists()
    assert not (isolated / "state").exists()
    assert cli.main(["config", "check", "--instance", "ict", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == f"{path}: ok: 1 converter(s), server https://wats.example.com\n"
    assert "s3cr3t" not in out


def test_config_check_takes_the_server_url_serve_takes(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_case(isolated, Case(WSJF, "", ""))
    args = ["config", "check", "--instance", "ict", "--config", str(path)]
    assert cli.main([*args, "--server-url", "http://127.0.0.1:8780"]) == 0
    assert "server http://127.0.0.1:8780" in capsys.readouterr().out
    assert cli.main([*args, "--server-url", "wats.example.com"]) == 1
    err = capsys.readouterr().err
    assert err == "pywats config check: --server-url: must start with http:// or https://\n"


def test_the_token_environment_is_checked_under_its_own_name(isolated: Path) -> None:
    path = write_case(isolated, Case("", "", ""))
    with pytest.raises(ConfigCheckError) as info:
        prepare("ict", path, environ={"PYWATS_TOKEN": "two\nlines"})
    ((error,),) = [info.value.errors]
    assert (error.key, error.file) == ("PYWATS_TOKEN", "")
    assert "two" not in str(error)  # the token is never shown
    creds = isolated / "creds"
    creds.mkdir()
    (creds / "token").write_text("")
    with pytest.raises(ConfigCheckError) as info:
        prepare("ict", path, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert [e.key for e in info.value.errors] == ["CREDENTIALS_DIRECTORY/token"]
    _, token, plan = prepare("ict", path, environ={"PYWATS_TOKEN": " from-env \n"})
    assert token == plan.uploader.token == "from-env"


def test_an_instance_without_a_file_prepares_its_defaults(isolated: Path) -> None:
    config, token, plan = prepare("ict")
    assert config.source is None
    assert token is None
    assert [f.name for f in plan.folders] == ["wsjf", "wsxf", "wstf"]
    with pytest.raises(ConfigError, match="invalid instance name"):
        prepare("../etc")


def test_config_check_still_names_a_missing_file_and_the_defaults(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["config", "check", "--instance", "ict"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"pywats config check: {isolated}/etc/ict.toml: no such file "
        "(instance 'ict' would run on the built-in defaults)\n"
    )
