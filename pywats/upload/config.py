"""How the uploader reaches the server: :class:`UploaderConfig` and the URL and token rules.

The rules here (:func:`check_server_url`, :func:`check_proxy_url`, :func:`check_token`)
are :mod:`pywats.checks`-style checks: they raise :class:`ValueError` with a reason and
leave the key path to the caller. The configuration layer (``pywats.config``) runs the
same functions while it reads the TOML file, so a bad URL is refused there with its key
path (``server.proxy``), and :class:`UploaderConfig` runs them as validators, so an
uploader built in code obeys the same rules. Defaults come from :mod:`pywats.defaults`.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import httpx

from pywats import defaults
from pywats.checks import between, non_negative, positive, validator
from pywats.errors import ConfigError

DEFAULT_WORKERS = defaults.UPLOAD_WORKERS
"""Uploads that run at once (kept for ``pywats.upload.DEFAULT_WORKERS`` users)."""

SUBMIT_PATH = "/Report/WSJF"
VERSION_PATH = "/App/Version"


def http_url(value: str, *, allow_userinfo: bool) -> httpx.URL:
    """``value`` parsed the way the uploader will use it: an http(s) URL with a host.

    Raises:
        ValueError: the reason. It never repeats ``value``, which may hold a password.
    """
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if url.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not url.host:
        raise ValueError("must name a host (https://wats.example.com)")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise ValueError(f"port must be from 1 to 65535, got {url.port}")
    if url.userinfo and not allow_userinfo:
        raise ValueError("must not contain a user name or password (use the token)")
    if url.query or url.fragment:
        raise ValueError("must not have a query (?...) or fragment (#...)")
    return url


def check_server_url(value: str | None) -> None:
    """The WATS server's URL: http(s), a host, no user or password, no query (or None)."""
    if value is not None:
        http_url(value, allow_userinfo=False)


def check_proxy_url(value: str | None) -> None:
    """A proxy URL: http(s) and a host; a user and password are allowed (or None)."""
    if value is not None:
        http_url(value, allow_userinfo=True)


def check_token(value: str | None) -> None:
    """A token that can go into an ``Authorization`` header as is (or None).

    The messages never hold the value: it is the credential.
    """
    if value is None:
        return
    if not value:
        raise ValueError("is empty (leave it out to send no token)")
    if value != value.strip() or not value.isprintable() or not value.isascii():
        raise ValueError("must be one line of printable ASCII without surrounding blanks")


@attrs.frozen
class UploaderConfig:
    """How an :class:`Uploader` reaches the server. Invalid values raise
    :class:`~pywats.errors.ConfigError` naming the field (never showing the token)."""

    url: str | None = attrs.field(default=None, validator=validator(check_server_url))
    """The WATS server, ``https://wats.example.com`` (a trailing ``/api`` and slashes are
    fine, and so is a path prefix behind a reverse proxy). ``None``: upload nothing."""
    token: str | None = attrs.field(default=None, repr=False, validator=validator(check_token))
    """Sent as ``Authorization: Basic <token>``, as is (it already is the base64
    credential from the WATS Control Panel). ``None``: no Authorization header."""
    workers: int = attrs.field(
        default=DEFAULT_WORKERS, validator=validator(between(1, defaults.UPLOAD_WORKERS_MAX))
    )
    """How many uploads run at once (each on its own keep-alive connection)."""
    connect_timeout_s: float = attrs.field(
        default=defaults.CONNECT_TIMEOUT_S, validator=validator(positive)
    )
    """Longest wait for a TCP (and TLS) connection to be established."""
    read_timeout_s: float = attrs.field(
        default=defaults.READ_TIMEOUT_S, validator=validator(positive)
    )
    """Longest wait for the next piece of the answer once the report is sent."""
    write_timeout_s: float = attrs.field(
        default=defaults.WRITE_TIMEOUT_S, validator=validator(positive)
    )
    """Longest wait to hand the next piece of the report to the network."""
    pool_timeout_s: float = attrs.field(
        default=defaults.POOL_TIMEOUT_S, validator=validator(positive)
    )
    """Longest wait for a free connection of the pool."""
    verify_tls: bool = defaults.VERIFY_TLS
    """Check the server's certificate. Turn off only for a test server."""
    ca_file: Path | None = None
    """PEM file of the CA certificates to trust *instead of* the built-in (certifi) ones,
    e.g. a company CA for an on-premise server."""
    proxy: str | None = attrs.field(default=None, validator=validator(check_proxy_url))
    """HTTP(S) proxy URL (``http://user:password@proxy:3128``). Proxy environment
    variables are ignored: the configuration is the only source."""
    retry_base_s: float = attrs.field(default=defaults.RETRY_BASE_S, validator=validator(positive))
    """Upper bound of the first retry delay; it doubles per failed attempt."""
    retry_max_s: float = attrs.field(default=defaults.RETRY_MAX_S, validator=validator(positive))
    """Cap of the retry delay's upper bound (full jitter: the delay is uniform below it)."""
    probe_max_s: float = attrs.field(default=defaults.PROBE_MAX_S, validator=validator(positive))
    """Cap of the health probe's backoff while the server is offline."""
    health_interval_s: float = attrs.field(
        default=defaults.HEALTH_INTERVAL_S, validator=validator(positive)
    )
    """How often the probe checks an online server (version, latency, still there)."""
    shutdown_deadline_s: float = attrs.field(
        default=defaults.SHUTDOWN_DEADLINE_S, validator=validator(non_negative)
    )
    """How long uploads in flight may take to finish at shutdown or reconfiguration."""


def api_base(url: str) -> str:
    """The ``.../api`` root of the endpoints for a configured server URL.

    ``https://h``, ``https://h/``, ``https://h/api`` and ``https://h/api/`` all give
    ``https://h/api``; a path prefix is kept (``https://h/wats/api/`` -> ``https://h/wats/api``).

    Raises:
        ConfigError: not an http(s) URL with a host (key ``url``).
    """
    try:
        parsed = http_url(url, allow_userinfo=False)
    except ValueError as exc:
        raise ConfigError("url", str(exc)) from None
    path = parsed.path.rstrip("/")
    if path.lower().endswith("/api"):
        path = path[: -len("/api")].rstrip("/")
    return str(parsed.copy_with(path=f"{path}/api"))
