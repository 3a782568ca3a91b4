"""The shared HTTP client and transport of the uploader (TLS, proxy, pool, headers)."""

from __future__ import annotations

import ssl

import httpx

from pywats import __version__
from pywats.upload.config import UploaderConfig


def headers(config: UploaderConfig) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": f"pywats/{__version__}"}
    if config.token is not None:
        headers["Authorization"] = f"Basic {config.token}"
    return headers


def timeout(config: UploaderConfig) -> httpx.Timeout:
    return httpx.Timeout(
        connect=config.connect_timeout_s,
        read=config.read_timeout_s,
        write=config.write_timeout_s,
        pool=config.pool_timeout_s,
    )


def make_client(
    config: UploaderConfig, transport: httpx.AsyncBaseTransport | None
) -> tuple[httpx.AsyncClient, httpx.AsyncBaseTransport]:
    """Build the shared client and the transport under it. Runs in a worker thread:
    loading CA files is disk work.

    Uploads go to the transport directly (see ``Uploader._post``); the client, over the
    same transport and connection pool, serves the health probe.
    """
    if transport is None:  # else tests: TLS, proxy and pool belong to the given transport
        verify: ssl.SSLContext | bool = False
        if config.verify_tls:
            # verify=True would load certifi's bundle on first use, on the event loop; an
            # explicit context loads it here, in the thread. ca_file replaces it (like curl
            # --cacert): an on-premise CA is usually all that should be trusted.
            if config.ca_file is not None:
                verify = ssl.create_default_context(cafile=str(config.ca_file))
            else:
                import certifi

                verify = ssl.create_default_context(cafile=certifi.where())
        # One connection per worker plus one for the probe, all kept alive between uploads.
        pool = config.workers + 1
        transport = httpx.AsyncHTTPTransport(
            verify=verify,
            proxy=config.proxy,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            # Environment proxies and SSL_CERT_FILE would change behaviour behind the
            # configuration's back.
            trust_env=False,
        )
    client = httpx.AsyncClient(
        headers=headers(config),
        timeout=timeout(config),
        transport=transport,
        follow_redirects=False,
        # ~/.netrc could replace our Authorization header.
        trust_env=False,
    )
    return client, transport


def display_url(url: str) -> str:
    # What status and logs show: the configured server, never a user or password.
    return str(httpx.URL(url).copy_with(userinfo=b""))
