"""The instance configuration: one TOML file, loaded once into frozen attrs classes.

The file's shape is the classes below (``docs/configuration.md`` documents every key).
:func:`load` reads and checks a file; every error names its key path
(``converters[1].post_action``) and the file, and all of a file's errors are raised at
once (:class:`ConfigCheckError`). Unknown keys are errors: a typo must not silently fall
back to a default on a production station. What needs more than the file (the token,
the converters, the folders on disk) is checked by :func:`pywats.plan.prepare`, the one
check both ``pywats serve`` and ``pywats config check`` run.

Defaults come from :mod:`pywats.defaults` and value rules from :mod:`pywats.checks` (the
URL and token rules from :mod:`pywats.upload.config`): the components' own
configurations use the same ones, so this layer and theirs cannot disagree.

Durations and sizes carry their unit in the key name (``retry_max_s``, ``max_file_bytes``).
Relative paths are taken relative to the directory of the config file, so a config file
and its folders can be moved together.

The server token is never kept in a printable field: :class:`ServerConfig` holds it with
``repr=False`` and :func:`resolve_token` reads it from (in order) ``server.token``,
``server.token_file``, the systemd credential ``$CREDENTIALS_DIRECTORY/token`` and
``$PYWATS_TOKEN``.
"""

from __future__ import annotations

import difflib
import enum
import os
import socket
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import cattrs
import cattrs.gen
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
)

from pywats import defaults as default
from pywats import paths
from pywats.checks import Check, between, non_negative, positive, text
from pywats.errors import ConfigError
from pywats.logs import LogLevel  # [log] level (kept with the logging: see cli/serve.py)
from pywats.upload.config import check_proxy_url, check_server_url, check_token

if TYPE_CHECKING:
    from pywats.converters.registry import LoadedConverter

MiB = default.MiB


class PostAction(enum.StrEnum):
    """What happens to a source file once its reports are committed to the queue."""

    MOVE = "move"
    """Move it to ``done_dir`` (a name clash gets a numbered suffix)."""
    DELETE = "delete"
    """Delete it."""
    ARCHIVE = "archive"
    """Move it to ``done_dir/YYYY-MM-DD/``."""
    KEEP = "keep"
    """Leave it where it is; its content hash keeps it from being queued again."""


CHECK = "pywats.config.check"
"""Field metadata key: a :mod:`pywats.checks` rule that raises ValueError when a value is
out of range. Checked while structuring, so the error carries the key path (attrs
validators would only name the table)."""


def _field(value: Any = attrs.NOTHING, *, check: Check, **kw: Any) -> Any:
    return attrs.field(default=value, metadata={CHECK: check}, **kw)


def _default_station_name() -> str:
    return socket.gethostname()[:100] or "pywats-station"


@attrs.frozen
class StationConfig:
    """``[station]``: header defaults for reports whose source does not carry them."""

    name: str = _field(attrs.Factory(_default_station_name), check=text)
    location: str = _field(default.STATION_LOCATION, check=text)
    purpose: str = _field(default.STATION_PURPOSE, check=text)


@attrs.frozen
class ServerConfig:
    """``[server]``: where reports go. No ``url`` is valid: reports are queued only."""

    # The URL rules are the uploader's own (httpx parses them there), run here too so a
    # bad URL is refused with its key path while the file is read.
    url: str | None = _field(None, check=check_server_url)
    token: str | None = attrs.field(default=None, repr=False)
    token_file: Path | None = None
    connect_timeout_s: float = _field(default.CONNECT_TIMEOUT_S, check=positive)
    read_timeout_s: float = _field(default.READ_TIMEOUT_S, check=positive)
    write_timeout_s: float = _field(default.WRITE_TIMEOUT_S, check=positive)
    pool_timeout_s: float = _field(default.POOL_TIMEOUT_S, check=positive)
    verify_tls: bool = default.VERIFY_TLS
    ca_file: Path | None = None
    proxy: str | None = _field(None, check=check_proxy_url)


@attrs.frozen
class UploadConfig:
    """``[upload]``: upload workers and the retry schedule."""

    workers: int = _field(default.UPLOAD_WORKERS, check=between(1, default.UPLOAD_WORKERS_MAX))
    retry_base_s: float = _field(default.RETRY_BASE_S, check=positive)
    retry_max_s: float = _field(default.RETRY_MAX_S, check=positive)
    shutdown_deadline_s: float = _field(default.SHUTDOWN_DEADLINE_S, check=non_negative)


@attrs.frozen
class ConvertConfig:
    """``[convert]``: converter workers shared by every watch folder."""

    workers: int = _field(default.CONVERT_WORKERS, check=between(1, default.CONVERT_WORKERS_MAX))
    memory_budget_mb: int = _field(default.CONVERT_MEMORY_BUDGET_MB, check=positive)
    """The memory the workers may take together for the files they convert (MiB),
    estimated per file before it is read; see :mod:`pywats.pipeline.budget`."""

    @property
    def memory_budget_bytes(self) -> int:
        """``memory_budget_mb`` in bytes (what :class:`~pywats.pipeline.Pipeline` takes)."""
        return self.memory_budget_mb * default.MiB


@attrs.frozen
class QueueConfig:
    """``[queue]``: the local queue database."""

    path: Path | None = None
    retention_days: float = _field(default.RETENTION_DAYS, check=non_negative)


@attrs.frozen
class RpcConfig:
    """``[rpc]``: who may use the control socket besides the service's own user and root."""

    allowed_group: str | None = None


@attrs.frozen
class LogConfig:
    """``[log]``."""

    level: LogLevel = LogLevel.INFO


def _patterns(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _optional(check: Check) -> Check:
    def run(value: Any) -> None:
        if value is not None:
            check(value)

    return run


@attrs.frozen
class ConverterConfig:
    """One ``[[converters]]`` entry: a converter and the folder it watches."""

    watch: Path
    name: str | None = None
    module: str | None = None
    patterns: tuple[str, ...] | None = attrs.field(default=None, converter=_patterns)
    recursive: bool = False
    post_action: PostAction = PostAction.MOVE
    done_dir: Path | None = None
    error_dir: Path | None = None
    settle_s: float = _field(default.SETTLE_S, check=non_negative)
    settle_after_close: bool = False
    rescan_s: float = _field(default.RESCAN_S, check=positive)
    use_inotify: bool = True
    max_file_bytes: int = _field(default.MAX_FILE_BYTES, check=positive)
    enabled: bool = True
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    command: tuple[str, ...] | None = attrs.field(default=None, converter=_patterns)
    """A program to run on each file instead of a converter class (``{path}`` is the file);
    see :mod:`pywats.converters.process`."""
    timeout_s: float | None = _field(None, check=_optional(positive))
    """A command's time limit per file (default ``PROCESS_TIMEOUT_S``); only with ``command``."""
    max_output_bytes: int | None = _field(None, check=_optional(positive))
    """The most a command may print on stdout per file (default ``PROCESS_MAX_OUTPUT_BYTES``)."""

    @property
    def spec(self) -> str:
        """What :func:`pywats.converters.load_converter` is given: name or module."""
        return self.module or self.name or ""

    @property
    def label(self) -> str:
        """A short name for logs and status: the name, else the module's class, else the
        command's program (:func:`pywats.converters.process.command_label`)."""
        if self.command is not None and self.name is None and self.module is None:
            from pywats.converters.process import command_label

            return command_label(self.command)
        return self.name or (self.module or "").rpartition(":")[2]


@attrs.frozen
class Config:
    """A whole instance configuration."""

    station: StationConfig = attrs.Factory(StationConfig)
    server: ServerConfig = attrs.Factory(ServerConfig)
    upload: UploadConfig = attrs.Factory(UploadConfig)
    convert: ConvertConfig = attrs.Factory(ConvertConfig)
    queue: QueueConfig = attrs.Factory(QueueConfig)
    rpc: RpcConfig = attrs.Factory(RpcConfig)
    log: LogConfig = attrs.Factory(LogConfig)
    converters: tuple[ConverterConfig, ...] = ()
    source: Path | None = attrs.field(default=None, eq=False)
    """The file this was loaded from (``None`` for the built-in defaults)."""
    given: frozenset[str] = attrs.field(default=frozenset(), eq=False)
    """Every key path the file sets (``server.url``, ``converters[0].watch``): what is not
    here is a default (``config.get`` tells a client which is which)."""


def key_paths(document: Mapping[str, Any], prefix: str = "") -> frozenset[str]:
    """Every key path a decoded TOML document sets, tables and arrays of tables included
    (``server``, ``server.url``, ``converters[0]``, ``converters[0].watch``)."""
    keys: set[str] = set()
    for key, value in document.items():
        path = f"{prefix}{key}"
        keys.add(path)
        if isinstance(value, Mapping):
            keys |= key_paths(value, f"{path}.")
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                keys.add(f"{path}[{index}]")
                keys |= key_paths(item, f"{path}[{index}].")
    return frozenset(keys)


def _unknown_key(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


def _noted(exc: Exception, name: str, ftype: Any) -> Exception:
    # The note is what cattrs.transform_error turns into the ``.name`` of the key path.
    exc.__notes__ = [AttributeValidationNote(f"Checking {name}", name, ftype)]
    return exc


def _toml_type(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    if isinstance(value, list):
        return "an array"
    return names.get(type(value), type(value).__name__)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()

    def path_hook(value: object, _: type) -> Path:
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a path (a non-empty string), got {value!r}")
        return Path(os.path.expanduser(value))

    def str_hook(value: object, _: type) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {_toml_type(value)} {value!r}")
        return value

    def int_hook(value: object, _: type) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {_toml_type(value)} {value!r}")
        return value

    def float_hook(value: object, _: type) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {_toml_type(value)} {value!r}")
        return float(value)

    def bool_hook(value: object, _: type) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value

    def table_hook(value: object, _: type) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise TypeError(f"expected a table, got {_toml_type(value)}")
        return dict(value)

    def enum_hook(value: object, cls: type[enum.StrEnum]) -> enum.StrEnum:
        allowed = ", ".join(repr(m.value) for m in cls)
        if not isinstance(value, str):
            raise TypeError(f"expected one of {allowed}, got {_toml_type(value)} {value!r}")
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{value!r} is not one of {allowed}") from None

    def table_first(cls: type) -> Any:
        # The generated hook would fail on a non-table with an AttributeError; say what
        # the user wrote instead.
        inner: Callable[[Any, Any], Any] = cattrs.gen.make_dict_structure_fn(cls, conv)
        fields = attrs.fields(cls)
        known = {f.name for f in fields}
        checks = [(f.name, f.type, f.metadata[CHECK]) for f in fields if CHECK in f.metadata]

        def structure(value: object, _: type) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a table, got {_toml_type(value)}")
            errors: list[Exception] = []
            # Unknown keys are reported with, not instead of, the other errors of the table.
            extra = set(value) - known
            for key in sorted(extra):
                errors.append(_noted(ValueError(_unknown_key(key, known)), key, Any))
            if extra:
                value = {k: v for k, v in value.items() if k in known}
            try:
                obj = inner(value, cls)
            except ClassValidationError as exc:
                raise ClassValidationError(exc.message, [*errors, *exc.exceptions], cls) from None
            for name, ftype, check in checks:
                try:
                    check(getattr(obj, name))
                except ValueError as exc:
                    errors.append(_noted(exc, name, ftype))
            if errors:
                raise ClassValidationError(f"While checking {cls.__name__}", errors, cls)
            return obj

        return structure

    conv.register_structure_hook_factory(attrs.has, table_first)

    def converters_hook(value: object, _: type) -> tuple[ConverterConfig, ...]:
        if not isinstance(value, list):
            raise TypeError(
                f"expected an array of tables ([[converters]]), got {_toml_type(value)}"
            )
        return tuple(conv.structure(value, list[ConverterConfig]))

    conv.register_structure_hook_func(lambda t: t == tuple[ConverterConfig, ...], converters_hook)

    def strings_hook(value: object, _: type) -> tuple[str, ...]:
        # cattrs would take a string as the sequence of its characters.
        if not isinstance(value, list):
            raise TypeError(f"expected an array of strings, got {_toml_type(value)} {value!r}")
        return tuple(conv.structure(value, list[str]))

    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], strings_hook)
    conv.register_structure_hook(Path, path_hook)
    conv.register_structure_hook(str, str_hook)
    conv.register_structure_hook(int, int_hook)
    conv.register_structure_hook(float, float_hook)
    conv.register_structure_hook(bool, bool_hook)
    conv.register_structure_hook_func(lambda t: t == Mapping[str, Any], table_hook)
    conv.register_structure_hook(PostAction, enum_hook)
    conv.register_structure_hook(LogLevel, enum_hook)
    return conv


_converter = _make_converter()


def _key_path(cattrs_path: str) -> str:
    # cattrs paths look like ``$.converters[1].post_action``; we show ``converters[1].post_action``.
    return cattrs_path.removeprefix("$").removeprefix(".")


def _format(exc: BaseException, _: type | None) -> str:
    if isinstance(exc, KeyError):
        return "required key is missing"
    if isinstance(exc, ValueError | TypeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"  # pragma: no cover - a bug in a hook, still shown


def _errors_of(exc: Exception) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in cattrs.transform_error(exc, path="$", format_exception=_format):
        message, _, where = line.rpartition(" @ ")
        out.append((_key_path(where), message))
    return out


def _check_semantics(config: Config) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    server = config.server
    if server.token is not None and server.token_file is not None:
        out.append(("server.token", "give either token or token_file, not both"))
    if server.token is not None and not server.token.strip():
        out.append(("server.token", "must not be empty"))
    if config.upload.retry_base_s > config.upload.retry_max_s:
        out.append(("upload.retry_base_s", "must not be greater than upload.retry_max_s"))
    for index, entry in enumerate(config.converters):
        key = f"converters[{index}]"
        if entry.command is not None:
            out.extend(_check_command_entry(entry, key))
            continue
        if (entry.name is None) == (entry.module is None):
            out.append((key, "give exactly one of name (built-in or entry point) or module"))
        if entry.module is not None and ":" not in entry.module:
            out.append((f"{key}.module", f"{entry.module!r} is not 'package.module:Class'"))
        for option in ("timeout_s", "max_output_bytes"):
            if getattr(entry, option) is not None:
                out.append((f"{key}.{option}", "only a command entry takes it (command = [...])"))
    # The folder rules (patterns, done and error folders against the watch folders) are
    # the pipeline's own: pywats.plan builds each FolderConfig, so they are checked there,
    # once, with the converter's default patterns and folders filled in.
    return out


def _check_command_entry(entry: ConverterConfig, key: str) -> list[tuple[str, str]]:
    """The rules of an entry that runs a program (``command``) instead of a converter class."""
    from pywats.converters.process import check_command

    out: list[tuple[str, str]] = []
    if entry.name is not None or entry.module is not None:
        taken = "name" if entry.name is not None else "module"
        out.append((f"{key}.{taken}", "give a command or a converter (name or module), not both"))
    problem = check_command(entry.command or ())
    if problem is not None:
        out.append((f"{key}.command", problem))
    if entry.patterns is None:
        out.append(
            (
                f"{key}.patterns",
                'required with a command: the file names the program takes (["*.dat"])',
            )
        )
    if entry.arguments:
        out.append(
            (
                f"{key}.arguments",
                "a command entry takes no arguments table: write them into command",
            )
        )
    return out


def _anchor_command(base: Path | None, command: tuple[str, ...] | None) -> tuple[str, ...] | None:
    # Only the program is a path pywats knows of; a bare name is looked up on PATH.
    if base is None or not command or "/" not in command[0] or os.path.isabs(command[0]):
        return command
    return (str(base / command[0]), *command[1:])


def _relative_to(base: Path | None, value: Path | None) -> Path | None:
    if value is None or base is None or value.is_absolute():
        return value
    return base / value


def _anchor(config: Config) -> Config:
    """Resolve relative paths against the config file's directory."""
    base = config.source.parent if config.source is not None else None
    server = attrs.evolve(
        config.server,
        token_file=_relative_to(base, config.server.token_file),
        ca_file=_relative_to(base, config.server.ca_file),
    )
    queue = attrs.evolve(config.queue, path=_relative_to(base, config.queue.path))
    converters = tuple(
        attrs.evolve(
            c,
            watch=_relative_to(base, c.watch) or c.watch,
            done_dir=_relative_to(base, c.done_dir),
            error_dir=_relative_to(base, c.error_dir),
            command=_anchor_command(base, c.command),
        )
        for c in config.converters
    )
    return attrs.evolve(config, server=server, queue=queue, converters=converters)


def parse(document: Mapping[str, Any], *, source: Path | None = None) -> Config:
    """Build a :class:`Config` from a decoded TOML document.

    Raises:
        ConfigCheckError: one or more keys are wrong; ``errors`` lists every one.
    """
    where = str(source) if source is not None else ""
    try:
        config = _converter.structure(dict(document), Config)
    except (ClassValidationError, IterableValidationError) as exc:
        raise ConfigCheckError(
            [ConfigError(key, reason, file=where) for key, reason in _errors_of(exc)]
        ) from exc
    config = _anchor(attrs.evolve(config, source=source, given=key_paths(document)))
    problems = _check_semantics(config)
    if problems:
        raise ConfigCheckError([ConfigError(key, reason, file=where) for key, reason in problems])
    return config


class ConfigCheckError(ConfigError):
    """Several configuration errors at once; ``errors`` holds each :class:`ConfigError`."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0]
        super().__init__(first.key, first.reason, file=first.file)
        more = len(self.errors) - 1
        if more:
            self.args = (f"{self.args[0]} (and {more} more)",)


def load(path: str | os.PathLike[str]) -> Config:
    """Read and check the TOML file at ``path``.

    Raises:
        ConfigError: the file cannot be read or is not TOML (names the file and line);
            ConfigCheckError (a ConfigError) for wrong keys, naming each key path.
    """
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("", "no such file", file=str(file)) from None
    except OSError as exc:
        raise ConfigError("", f"cannot read: {exc.strerror or exc}", file=str(file)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"not UTF-8 text ({exc.reason})", file=str(file)) from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"not valid TOML: {exc}", file=str(file)) from exc
    return parse(document, source=file.absolute())


def find(instance: str) -> Path:
    """The config file of ``instance``: where systemd says, else /etc, else the user's.

    ``$CONFIGURATION_DIRECTORY/<instance>.toml`` under systemd; else
    ``/etc/pywats/<instance>.toml`` if it exists; else
    ``$XDG_CONFIG_HOME/pywats/<instance>.toml`` (``~/.config/pywats/...``). The file need not
    exist: with no file the built-in defaults apply.
    """
    return paths.default_config_path(instance)


def default_inbox(instance: str) -> Path:
    """The drop folder the built-in default configuration watches."""
    return paths.state_dir(instance) / "inbox"


def defaults(instance: str) -> Config:
    """The configuration used when an instance has no config file.

    It watches one drop folder, ``<state dir>/inbox``, with the wsjf (``*.json``), wsxf
    (``*.xml``) and wstf (``*.txt``) converters, queues what it converts and, with no
    server set, uploads nothing until one is configured.
    """
    inbox = default_inbox(instance)
    return Config(
        converters=tuple(
            ConverterConfig(watch=inbox, name=name) for name in ("wsjf", "wsxf", "wstf")
        )
    )


def load_instance(instance: str, path: str | os.PathLike[str] | None = None) -> Config:
    """The config of ``instance``: ``path`` if given (it must exist), else :func:`find`'s
    file if it exists, else :func:`defaults`."""
    if path is not None:
        return load(path)
    found = find(instance)
    if not found.exists():
        return defaults(instance)
    return load(found)


@attrs.frozen
class TokenSource:
    """Where the server token came from: what may be shown instead of the token.

    ``key`` is the source as errors name it (``server.token``, ``server.token_file``,
    ``CREDENTIALS_DIRECTORY/token``, ``PYWATS_TOKEN``); ``path`` is the file it was read
    from, for the two file sources.
    """

    key: str
    path: Path | None = None

    def describe(self) -> str:
        """One line for people: ``server.token_file (/etc/pywats/ict.token)``."""
        return self.key if self.path is None else f"{self.key} ({self.path})"


def resolve_token(server: ServerConfig, *, environ: Mapping[str, str] | None = None) -> str | None:
    """The server token, from the first source that has one.

    ``server.token``, then ``server.token_file``, then ``$CREDENTIALS_DIRECTORY/token``
    (systemd ``LoadCredential=token:...``), then ``$PYWATS_TOKEN``. Surrounding whitespace
    (a trailing newline in a file) is dropped.

    The token is checked with the uploader's rule (:func:`~pywats.upload.config.check_token`)
    here, where its source is known, so an error names that source rather than the
    uploader's field.

    Raises:
        ConfigError: ``token_file`` cannot be read or is empty, or the token is not one
            line of printable ASCII; the key names the source (``server.token``,
            ``server.token_file``, ``CREDENTIALS_DIRECTORY/token``, ``PYWATS_TOKEN``) and the
            message never holds the token.
    """
    return resolve_token_source(server, environ=environ)[0]


def resolve_token_source(
    server: ServerConfig, *, environ: Mapping[str, str] | None = None
) -> tuple[str | None, TokenSource | None]:
    """:func:`resolve_token` and where the token came from (``None``: no token).

    One function picks the source, so what is shown as the source is the one whose token
    is used.

    Raises:
        ConfigError: as :func:`resolve_token`.
    """
    env = os.environ if environ is None else environ
    if server.token is not None:
        return _checked_token(server.token.strip(), "server.token"), TokenSource("server.token")
    if server.token_file is not None:
        source = TokenSource("server.token_file", Path(os.path.abspath(server.token_file)))
        return _read_token(server.token_file, "server.token_file"), source
    credentials = env.get("CREDENTIALS_DIRECTORY", "")
    if credentials:
        candidate = Path(credentials) / "token"
        if candidate.exists():
            key = "CREDENTIALS_DIRECTORY/token"
            return _read_token(candidate, key), TokenSource(key, candidate)
    value = env.get("PYWATS_TOKEN", "").strip()
    if not value:
        return None, None
    return _checked_token(value, "PYWATS_TOKEN"), TokenSource("PYWATS_TOKEN")


def _read_token(path: Path, key: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(key, f"cannot read {path}: {reason}") from exc
    if not value:
        raise ConfigError(key, f"{path} is empty")
    return _checked_token(value, key, f"the token in {path} ")


def _checked_token(value: str, key: str, what: str = "") -> str:
    try:
        check_token(value)
    except ValueError as exc:
        raise ConfigError(key, f"{what}{exc}") from None
    return value


def with_server_url(config: Config, url: str) -> Config:
    """``config`` with ``server.url`` replaced (``pywats serve --server-url``).

    Raises:
        ConfigError: ``url`` is not an http(s) URL with a host (key ``--server-url``).
    """
    try:
        check_server_url(url)
    except ValueError as exc:
        raise ConfigError("--server-url", str(exc)) from None
    return attrs.evolve(config, server=attrs.evolve(config.server, url=url))


def load_converters(config: Config) -> list[tuple[ConverterConfig, LoadedConverter]]:
    """Load every enabled converter of ``config`` and check its ``arguments``.

    Raises:
        ConfigCheckError: naming ``converters[i]`` (unknown converter, bad module) or
            ``converters[i].arguments.<key>`` for each entry that is wrong.
    """
    loaded: list[tuple[ConverterConfig, LoadedConverter]] = []
    errors: list[ConfigError] = []
    for _, entry, result in load_each_converter(config):
        if isinstance(result, ConfigCheckError):
            errors.extend(result.errors)
        else:
            loaded.append((entry, result))
    if errors:
        raise ConfigCheckError(errors)
    return loaded


def load_each_converter(
    config: Config,
) -> Iterator[tuple[int, ConverterConfig, LoadedConverter | ConfigCheckError]]:
    """Load the enabled converters of ``config`` one by one, going on past those that fail.

    Yields each enabled entry with its index in ``config.converters`` and either the
    loaded converter or the entry's errors (as :func:`load_converters` raises them), so a
    caller can check each loaded one further and still report everything, in file order.
    """
    from pywats.converters.process import load_process_converter
    from pywats.converters.registry import discover, load_converter

    available = discover()
    where = str(config.source) if config.source is not None else ""
    for index, entry in enumerate(config.converters):
        if not entry.enabled:
            continue
        key = f"converters[{index}]"
        try:
            if entry.command is not None:
                # A program, not a class: checked (found, executable) here, at start-up.
                converter = load_process_converter(
                    entry.command,
                    patterns=entry.patterns or (),
                    key=key,
                    timeout_s=entry.timeout_s,
                    max_output_bytes=entry.max_output_bytes,
                    label=entry.label,
                )
            else:
                converter = load_converter(
                    entry.spec, entry.arguments, key=key, available=available
                )
        except ConfigCheckError as exc:
            yield index, entry, ConfigCheckError([_filed(e, where) for e in exc.errors])
        except ConfigError as exc:
            yield index, entry, ConfigCheckError([_filed(exc, where)])
        else:
            yield index, entry, converter


def _filed(error: ConfigError, where: str) -> ConfigError:
    return ConfigError(error.key, error.reason, file=where)
