"""The instance configuration: TOML into frozen attrs, every error with its key path."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from pywats import config, defaults
from pywats.cli.config import SAMPLE
from pywats.config import Config, ConfigCheckError, PostAction
from pywats.errors import ConfigError
from pywats.upload import DEFAULT_WORKERS, UploaderConfig

DOC = Path(__file__).parent.parent / "docs" / "configuration.md"


def errors_of(document: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigCheckError) as info:
        config.parse(document)
    return [f"{e.key}: {e.reason}" for e in info.value.errors]


def write(tmp_path: Path, text: str, name: str = "ict.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    loaded = config.load(write(tmp_path, ""))
    assert loaded == Config()
    assert loaded.server.url is None
    assert loaded.upload.workers == 5
    assert loaded.upload.retry_base_s == 1.0
    assert loaded.upload.retry_max_s == 300.0
    assert loaded.upload.shutdown_deadline_s == 10.0
    assert loaded.convert.workers == 4
    assert loaded.queue.retention_days == 7.0
    assert loaded.converters == ()


def test_a_full_file_reads_into_the_classes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [station]
        name = "ICT-07"
        location = "Line 2"
        purpose = "Debug"
        [server]
        url = "https://wats.example.com/"
        token_file = "secret/token"
        connect_timeout_s = 3
        verify_tls = false
        ca_file = "/etc/ssl/ca.pem"
        proxy = "http://proxy:3128"
        [upload]
        workers = 8
        retry_base_s = 0.5
        retry_max_s = 60
        [convert]
        workers = 2
        [queue]
        retention_days = 1.5
        path = "db/queue.db"
        [rpc]
        allowed_group = "operators"
        [log]
        level = "debug"
        [[converters]]
        name = "csv"
        watch = "in/csv"
        patterns = ["*.csv", "*.CSV"]
        post_action = "archive"
        done_dir = "/data/done"
        settle_s = 0.5
        use_inotify = false
        max_file_bytes = 1000
        [converters.arguments]
        delimiter = ";"
        [[converters]]
        module = "acme.conv:AcmeConverter"
        watch = "/data/acme"
        recursive = true
        enabled = false
        """,
    )
    loaded = config.load(path)
    assert loaded.station == config.StationConfig("ICT-07", "Line 2", "Debug")
    assert loaded.server.url == "https://wats.example.com/"
    # Relative paths are anchored at the config file's folder; absolute ones are kept.
    assert loaded.server.token_file == tmp_path / "secret" / "token"
    assert loaded.server.ca_file == Path("/etc/ssl/ca.pem")
    assert loaded.server.connect_timeout_s == 3.0
    assert loaded.server.verify_tls is False
    assert loaded.queue.path == tmp_path / "db" / "queue.db"
    assert loaded.upload.workers == 8
    assert loaded.rpc.allowed_group == "operators"
    assert loaded.log.level is config.LogLevel.DEBUG
    csv, acme = loaded.converters
    assert csv.watch == tmp_path / "in" / "csv"
    assert csv.patterns == ("*.csv", "*.CSV")
    assert csv.post_action is PostAction.ARCHIVE
    assert csv.arguments == {"delimiter": ";"}
    assert csv.spec == "csv"
    assert acme.spec == "acme.conv:AcmeConverter"
    assert acme.label == "AcmeConverter"
    assert acme.recursive is True
    assert acme.enabled is False


def test_config_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Config().upload.workers = 3  # type: ignore[misc]


def test_unknown_keys_are_named_with_their_path_and_a_suggestion() -> None:
    assert errors_of(
        {
            "sever": {},
            "server": {"tokn": "x"},
            "converters": [{"watch": "a", "name": "wsjf", "setle_s": 1}],
        }
    ) == [
        "sever: unknown key (did you mean 'server'?)",
        "server.tokn: unknown key (did you mean 'token'?)",
        "converters[0].setle_s: unknown key (did you mean 'settle_s'?)",
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"upload": {"workers": "5"}}, "upload.workers: expected an integer, got a string '5'"),
        ({"upload": {"workers": True}}, "upload.workers: expected an integer, got a boolean True"),
        ({"upload": {"workers": 0}}, "upload.workers: must be a whole number from 1 to 64, got 0"),
        ({"upload": {"workers": 65}}, "upload.workers: must be a whole number from 1 to 64, got 65"),
        ({"convert": {"workers": 65}}, "convert.workers: must be a whole number from 1 to 64, got 65"),
        ({"upload": {"retry_max_s": 0}}, "upload.retry_max_s: must be a number greater than 0, got 0.0"),
        ({"upload": {"retry_max_s": float("nan")}}, "upload.retry_max_s: must be a number greater than 0, got nan"),
        ({"upload": {"retry_base_s": float("inf")}}, "upload.retry_base_s: must be a number greater than 0, got inf"),
        ({"upload": {"shutdown_deadline_s": float("nan")}}, "upload.shutdown_deadline_s: must be a number, 0 or more, got nan"),
        ({"server": {"read_timeout_s": float("inf")}}, "server.read_timeout_s: must be a number greater than 0, got inf"),
        ({"queue": {"retention_days": float("nan")}}, "queue.retention_days: must be a number, 0 or more, got nan"),
        ({"server": {"verify_tls": "yes"}}, "server.verify_tls: expected true or false, got 'yes'"),
        ({"server": {"url": "wats.example.com"}}, "server.url: must start with http:// or https://"),
        ({"server": {"url": "https://w/?a=1"}}, "server.url: must not have a query (?...) or fragment (#...)"),
        ({"server": {"url": "https://me:pw@w"}}, "server.url: must not contain a user name or password (use the token)"),
        ({"server": {"proxy": "ftp://x"}}, "server.proxy: must start with http:// or https://"),
        ({"server": {"proxy": "not a url"}}, "server.proxy: must start with http:// or https://"),
        ({"server": {"proxy": "http://"}}, "server.proxy: must name a host (https://wats.example.com)"),
        ({"server": {"proxy": "http://p:99999"}}, "server.proxy: port must be from 1 to 65535, got 99999"),
        ({"station": {"name": ""}}, "station.name: must be 1 to 100 characters, got 0"),
        ({"station": {"location": "x" * 101}}, "station.location: must be 1 to 100 characters, got 101"),
        ({"station": 3}, "station: expected a table, got an integer"),
        ({"queue": {"retention_days": -1}}, "queue.retention_days: must be a number, 0 or more, got -1.0"),
        ({"log": {"level": "loud"}}, "log.level: 'loud' is not one of 'debug', 'info', 'warning', 'error'"),
        ({"converters": {"name": "wsjf"}}, "converters: expected an array of tables ([[converters]]), got dict"),
        ({"converters": [{"name": "wsjf"}]}, "converters[0].watch: required key is missing"),
        ({"converters": [{"watch": "a", "name": "wsjf", "post_action": "moove"}]}, "converters[0].post_action: 'moove' is not one of 'move', 'delete', 'archive', 'keep'"),
        ({"converters": [{"watch": "a", "name": "wsjf", "max_file_bytes": 0}]}, "converters[0].max_file_bytes: must be a number greater than 0, got 0"),
        ({"converters": [{"watch": "a", "name": "wsjf", "settle_s": float("nan")}]}, "converters[0].settle_s: must be a number, 0 or more, got nan"),
        ({"converters": [{"watch": "a", "name": "wsjf", "rescan_s": float("inf")}]}, "converters[0].rescan_s: must be a number greater than 0, got inf"),
        ({"converters": [{"watch": "a", "name": "wsjf", "arguments": 3}]}, "converters[0].arguments: expected a table, got an integer"),
        ({"converters": [{"watch": "a"}]}, "converters[0]: give exactly one of name (built-in or entry point) or module"),
        ({"converters": [{"watch": "a", "name": "x", "module": "a:B"}]}, "converters[0]: give exactly one of name (built-in or entry point) or module"),
        ({"converters": [{"watch": "a", "module": "acme"}]}, "converters[0].module: 'acme' is not 'package.module:Class'"),
        ({"server": {"token": "a", "token_file": "/b"}}, "server.token: give either token or token_file, not both"),
        ({"upload": {"retry_base_s": 10, "retry_max_s": 5}}, "upload.retry_base_s: must not be greater than upload.retry_max_s"),
    ],
)  # fmt: skip
def test_each_bad_value_is_named_with_its_key_path(
    document: dict[str, object], expected: str
) -> None:
    assert errors_of(document) == [expected]


def test_defaults_and_rules_agree_with_the_uploaders() -> None:
    # Both layers take their defaults from pywats.defaults and their rules from pywats.checks
    # (and the URL rules from pywats.upload.config): what one accepts, the other accepts.
    server, upload, entry = (
        Config().server,
        Config().upload,
        config.ConverterConfig(watch=Path("/a")),
    )
    uploader = UploaderConfig()
    for name in (
        "connect_timeout_s",
        "read_timeout_s",
        "write_timeout_s",
        "pool_timeout_s",
        "verify_tls",
    ):
        assert (
            getattr(server, name) == getattr(uploader, name) == getattr(defaults, name.upper())
        ), name
    assert upload.workers == uploader.workers == DEFAULT_WORKERS == defaults.UPLOAD_WORKERS
    assert upload.retry_base_s == uploader.retry_base_s == defaults.RETRY_BASE_S
    assert upload.retry_max_s == uploader.retry_max_s == defaults.RETRY_MAX_S
    assert (
        upload.shutdown_deadline_s == uploader.shutdown_deadline_s == defaults.SHUTDOWN_DEADLINE_S
    )
    assert (entry.settle_s, entry.rescan_s, entry.max_file_bytes) == (
        defaults.SETTLE_S,
        defaults.RESCAN_S,
        defaults.MAX_FILE_BYTES,
    )
    values: list[tuple[str, str, object]] = [
        ("upload", "workers", 1),
        ("upload", "workers", 64),
        ("upload", "workers", 0),
        ("upload", "workers", 65),
        ("upload", "retry_max_s", math.nan),
        ("upload", "retry_base_s", math.inf),
        ("upload", "retry_max_s", 2.5),
        ("upload", "shutdown_deadline_s", 0.0),
        ("upload", "shutdown_deadline_s", -math.inf),
        ("server", "connect_timeout_s", math.nan),
        ("server", "pool_timeout_s", 1e-9),
        ("server", "url", "https://wats.example.com/api"),
        ("server", "url", "ftp://wats"),
        ("server", "url", "https://user:pw@wats"),
        ("server", "proxy", "http://user:pw@proxy:3128"),
        ("server", "proxy", "not a url"),
        ("server", "proxy", "socks5://p:1080"),
    ]
    for table, key, value in values:
        try:
            config.parse({table: {key: value}})
        except ConfigCheckError as exc:
            ((error,),) = [exc.errors]
            assert error.key == f"{table}.{key}"
            refused_here = error.reason
        else:
            refused_here = None
        try:
            UploaderConfig(**{key: value})  # type: ignore[arg-type]
        except ConfigError as exc:
            refused_there = exc.reason
        else:
            refused_there = None
        assert refused_here == refused_there, (table, key, value)


def test_every_error_of_a_file_is_reported_at_once() -> None:
    errors = errors_of(
        {"server": {"url": "x", "timeout_s": 1}, "upload": {"workers": 0}, "queue": []}
    )
    assert len(errors) == 4, errors


def test_unreadable_and_non_toml_files_say_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing.toml: no such file"):
        config.load(tmp_path / "missing.toml")
    bad = write(tmp_path, "[server\nurl = 1\n")
    with pytest.raises(ConfigError, match=r"ict.toml: not valid TOML: .*line 1"):
        config.load(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[station]\nname = "Gr\xfcn"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(latin)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[upload]\nworkers = 0\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value) == f"{path}: upload.workers: must be a whole number from 1 to 64, got 0"


def test_converter_arguments_are_checked_with_the_converter_and_key() -> None:
    loaded = config.parse(
        {
            "converters": [
                {"watch": "/a", "name": "nope"},
                {"watch": "/b", "name": "csv", "arguments": {"delimitr": ";"}},
                {"watch": "/c", "name": "nope", "enabled": False},
            ]
        }
    )
    with pytest.raises(ConfigCheckError) as info:
        config.load_converters(loaded)
    keys = [e.key for e in info.value.errors]
    assert keys == ["converters[0]", "converters[1].arguments.delimitr"]
    assert "unknown converter 'nope'" in info.value.errors[0].reason


def test_loaded_converters_skip_disabled_entries() -> None:
    loaded = config.parse(
        {
            "converters": [
                {"watch": "/a", "name": "wsjf"},
                {"watch": "/b", "name": "x", "enabled": False},
            ]
        }
    )
    ((entry, converter),) = config.load_converters(loaded)
    assert entry.watch == Path("/a")
    assert converter.name == "wsjf"


# --- the token ------------------------------------------------------------------------------


def test_token_sources_in_order(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "token").write_text("from-credential\n")
    token_file = write(tmp_path, "from-file\n", "token")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "PYWATS_TOKEN": "from-env"}
    server = config.ServerConfig
    assert config.resolve_token(server(token="inline"), environ=env) == "inline"
    assert config.resolve_token(server(token_file=token_file), environ=env) == "from-file"
    assert config.resolve_token(server(), environ=env) == "from-credential"
    assert config.resolve_token(server(), environ={"PYWATS_TOKEN": "from-env"}) == "from-env"
    assert config.resolve_token(server(), environ={}) is None


def test_a_bad_token_file_is_named_without_the_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server.token_file: cannot read .*nope"):
        config.resolve_token(config.ServerConfig(token_file=tmp_path / "nope"), environ={})
    empty = write(tmp_path, "\n", "empty")
    with pytest.raises(ConfigError, match="is empty"):
        config.resolve_token(config.ServerConfig(token_file=empty), environ={})


def test_the_token_is_checked_where_it_comes_from(tmp_path: Path) -> None:
    # The uploader's rule, with the key of the source: the uploader's field would not say
    # which file or variable to fix. The token itself is never in the message.
    two_lines = write(tmp_path, "abc\ndef\n", "token")
    with pytest.raises(ConfigError) as info:
        config.resolve_token(config.ServerConfig(token_file=two_lines), environ={})
    assert info.value.key == "server.token_file"
    assert "must be one line of printable ASCII" in info.value.reason
    assert "abc" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        config.resolve_token(config.ServerConfig(), environ={"PYWATS_TOKEN": "gr\u00fcn"})
    assert info.value.key == "PYWATS_TOKEN"
    assert "gr" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        config.resolve_token(config.ServerConfig(token="a b\tc"), environ={})
    assert info.value.key == "server.token"


def test_a_server_url_option_follows_the_server_url_rule() -> None:
    assert config.with_server_url(Config(), "http://127.0.0.1:8780").server.url == (
        "http://127.0.0.1:8780"
    )
    with pytest.raises(ConfigError) as info:
        config.with_server_url(Config(), "127.0.0.1:8780")
    assert (info.value.key, info.value.reason) == (
        "--server-url",
        "must start with http:// or https://",
    )


def test_the_token_never_shows_in_repr() -> None:
    loaded = config.parse({"server": {"url": "http://127.0.0.1:1", "token": "s3cr3t"}})
    assert "s3cr3t" not in repr(loaded)
    assert "s3cr3t" not in str(loaded.server)


# --- where the file is ----------------------------------------------------------------------


def test_find_prefers_systemd_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "sd"))
    assert config.find("ict") == tmp_path / "sd" / "ict.toml"
    monkeypatch.delenv("CONFIGURATION_DIRECTORY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    if not Path("/etc/pywats/ict.toml").exists():
        assert config.find("ict") == tmp_path / "xdg" / "pywats" / "ict.toml"
    with pytest.raises(ConfigError, match="invalid instance name"):
        config.find("../etc")


def test_an_instance_without_a_file_runs_on_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "none"))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    loaded = config.load_instance("ict")
    assert loaded.server.url is None
    assert {c.name for c in loaded.converters} == {"wsjf", "wsxf", "wstf"}
    assert {c.watch for c in loaded.converters} == {tmp_path / "state" / "inbox"}
    assert len(config.load_converters(loaded)) == 3
    with pytest.raises(ConfigError, match="no such file"):
        config.load_instance("ict", tmp_path / "given-but-missing.toml")


# --- the sample and the docs ----------------------------------------------------------------


def _uncommented(sample: str) -> str:
    """The sample with every commented-out ``key = value`` line switched on."""
    return re.sub(r"(?m)^# ([a-z_]+ = )", r"\1", sample).replace(
        "# [converters.arguments]", "[converters.arguments]"
    )


def test_the_sample_is_valid_as_written_and_with_every_key_switched_on() -> None:
    plain = config.parse(__import__("tomllib").loads(SAMPLE))
    assert plain.converters[0].name == "wsjf"
    switched = _uncommented(SAMPLE)
    assert switched.count("\n# ") < SAMPLE.count("\n# ")
    full = config.parse(__import__("tomllib").loads(switched))
    assert full.server.url == "https://wats.example.com"
    assert full.converters[0].max_file_bytes == 50 * 1024 * 1024


def test_the_sample_shows_the_real_defaults() -> None:
    # "# key = value" lines that are plain numbers/booleans must equal the code's defaults.
    full = config.parse(__import__("tomllib").loads(_uncommented(SAMPLE)))
    default = Config()
    assert full.upload == default.upload
    assert full.convert == default.convert
    assert full.queue.retention_days == default.queue.retention_days
    entry = full.converters[0]
    base = config.ConverterConfig(watch=entry.watch, name="wsjf")
    for name in (
        "recursive",
        "post_action",
        "settle_s",
        "rescan_s",
        "use_inotify",
        "max_file_bytes",
    ):
        assert getattr(entry, name) == getattr(base, name), name
    for name in ("connect_timeout_s", "read_timeout_s", "write_timeout_s", "pool_timeout_s"):
        assert getattr(full.server, name) == getattr(default.server, name), name


def test_docs_describe_every_key() -> None:
    text = DOC.read_text()
    sections = {
        "station": config.StationConfig,
        "server": config.ServerConfig,
        "upload": config.UploadConfig,
        "convert": config.ConvertConfig,
        "queue": config.QueueConfig,
        "rpc": config.RpcConfig,
        "log": config.LogConfig,
        "converters": config.ConverterConfig,
    }
    missing = [
        f"{section}.{f.name}"
        for section, cls in sections.items()
        for f in attrs.fields(cls)
        if f"`{section}.{f.name}`" not in text
    ]
    assert missing == []


# --- the commands ---------------------------------------------------------------------------


def pywats(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pywats.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_config_check_prints_every_error_with_its_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\nurl = "x"\n[[converters]]\nname = "csv"\nwatch = "in"\nsettle_s = -1\n'
        "[converters.arguments]\nbogus = 1\n",
    )
    result = pywats("config", "check", "--config", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines == [
        f"pywats config check: {path}: server.url: must start with http:// or https://",
        f"pywats config check: {path}: converters[0].settle_s: must be a number, 0 or more, got -1.0",
    ]
    assert "Traceback" not in result.stderr


def test_config_check_reports_converter_argument_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[[converters]]\nname = "csv"\nwatch = "in"\n[converters.arguments]\nbogus = 1\n'
    )
    result = pywats("config", "check", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"pywats config check: {path}: converters[0].arguments.bogus: unknown argument"
    )


def test_config_init_writes_a_sample_that_checks_ok(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "ict.toml"
    result = pywats("config", "init", "--output", str(path))
    assert result.returncode == 0, result.stderr
    assert path.read_text() == SAMPLE
    checked = pywats("config", "check", "--config", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "ok: 1 converter(s), server none" in checked.stdout
    again = pywats("config", "init", "--output", str(path))
    assert again.returncode == 1
    assert "already exists (use --force to overwrite)" in again.stderr


def test_config_check_names_a_missing_file(tmp_path: Path) -> None:
    result = pywats("config", "check", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 1
    assert "nope.toml: no such file" in result.stderr


def test_the_config_knows_which_keys_its_file_set() -> None:
    document = {
        "server": {"url": "https://wats.example.com"},
        "converters": [{"name": "a", "watch": "/in/a"}, {"name": "b", "watch": "/in/b"}],
    }
    loaded = config.parse(document, source=Path("/etc/pywats/x.toml"))
    assert loaded.given == {
        "server",
        "server.url",
        "converters",
        "converters[0]",
        "converters[0].name",
        "converters[0].watch",
        "converters[1]",
        "converters[1].name",
        "converters[1].watch",
    }
    assert config.parse({}).given == frozenset()
