"""How the uploader reaches the server: :class:`UploaderConfig` and the URL rules."""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import httpx

from pywats import retry
from pywats.errors import ConfigError

DEFAULT_WORKERS = 5
"""Uploads that run at once."""

SUBMIT_PATH = "/Report/WSJF"
VERSION_PATH = "/App/Version"


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (value > 0 and math.isfinite(value)):  # also refuses NaN
        raise ConfigError(attribute.name, f"must be a positive number, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(attribute.name, f"must be a number >= 0, got {value!r}")


def _worker_count(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ConfigError(attribute.name, f"must be a whole number from 1 to 100, got {value!r}")


def _http_url(name: str, value: str, *, allow_userinfo: bool) -> httpx.URL:
    # The text is only echoed when it cannot hold a password.
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ConfigError(name, f"not a valid URL ({exc})") from exc
    if url.scheme not in ("http", "https"):
        raise ConfigError(name, "must start with http:// or https://")
    if not url.host:
        raise ConfigError(name, "must name a host (https://wats.example.com)")
    if url.userinfo and not allow_userinfo:
        raise ConfigError(name, "must not contain a user name or password (use the token)")
    if url.query or url.fragment:
        raise ConfigError(name, "must not have a query (?...) or fragment (#...)")
    return url


def _server_url(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None:
        _http_url(attribute.name, value, allow_userinfo=False)


def _proxy_url(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None:
        _http_url(attribute.name, value, allow_userinfo=True)


def _token(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    # Never echo the value: it is the credential.
    if value is None:
        return
    if not value:
        raise ConfigError(attribute.name, "is empty (leave it out to send no token)")
    if value != value.strip() or not value.isprintable() or not value.isascii():
        raise ConfigError(
            attribute.name, "must be one line of printable ASCII without surrounding blanks"
        )


@attrs.frozen
class UploaderConfig:
    """How an :class:`Uploader` reaches the server. Invalid values raise
    :class:`~pywats.errors.ConfigError` naming the field (never showing the token)."""

    url: str | None = attrs.field(default=None, validator=_server_url)
    """The WATS server, ``https://wats.example.com`` (a trailing ``/api`` and slashes are
    fine, and so is a path prefix behind a reverse proxy). ``None``: upload nothing."""
    token: str | None = attrs.field(default=None, repr=False, validator=_token)
    """Sent as ``Authorization: Basic <token>``, as is (it already is the base64
    credential from the WATS Control Panel). ``None``: no Authorization header."""
    workers: int = attrs.field(default=DEFAULT_WORKERS, validator=_worker_count)
    """How many uploads run at once (each on its own keep-alive connection)."""
    connect_timeout_s: float = attrs.field(default=10.0, validator=_positive)
    """Longest wait for a TCP (and TLS) connection to be established."""
    read_timeout_s: float = attrs.field(default=60.0, validator=_positive)
    """Longest wait for the next piece of the answer once the report is sent."""
    write_timeout_s: float = attrs.field(default=60.0, validator=_positive)
    """Longest wait to hand the next piece of the report to the network."""
    pool_timeout_s: float = attrs.field(default=10.0, validator=_positive)
    """Longest wait for a free connection of the pool."""
    verify_tls: bool = True
    """Check the server's certificate. Turn off only for a test server."""
    ca_file: Path | None = None
    """PEM file of the CA certificates to trust *instead of* the built-in (certifi) ones,
    e.g. a company CA for an on-premise server."""
    proxy: str | None = attrs.field(default=None, validator=_proxy_url)
    """HTTP(S) proxy URL (``http://user:password@proxy:3128``). Proxy environment
    variables are ignored: the configuration is the only source."""
    retry_base_s: float = attrs.field(default=retry.DEFAULT_BASE_S, validator=_positive)
    """Upper bound of the first retry delay; it doubles per failed attempt."""
    retry_max_s: float = attrs.field(default=retry.DEFAULT_CAP_S, validator=_positive)
    """Cap of the retry delay's upper bound (full jitter: the delay is uniform below it)."""
    probe_max_s: float = attrs.field(default=60.0, validator=_positive)
    """Cap of the health probe's backoff while the server is offline."""
    health_interval_s: float = attrs.field(default=60.0, validator=_positive)
    """How often the probe checks an online server (version, latency, still there)."""
    shutdown_deadline_s: float = attrs.field(default=10.0, validator=_non_negative)
    """How long uploads in flight may take to finish at shutdown or reconfiguration."""


def api_base(url: str) -> str:
    """The ``.../api`` root of the endpoints for a configured server URL.

    ``https://h``, ``https://h/``, ``https://h/api`` and ``https://h/api/`` all give
    ``https://h/api``; a path prefix is kept (``https://h/wats/api/`` -> ``https://h/wats/api``).

    Raises:
        ConfigError: not an http(s) URL with a host (key ``url``).
    """
    parsed = _http_url("url", url, allow_userinfo=False)
    path = parsed.path.rstrip("/")
    if path.lower().endswith("/api"):
        path = path[: -len("/api")].rstrip("/")
    return str(parsed.copy_with(path=f"{path}/api"))
