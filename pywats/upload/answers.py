"""What a request got, as text a person can act on: one line per answer or failure."""

from __future__ import annotations

import contextlib
import json
import re
import ssl

import httpx

from pywats.upload.config import UploaderConfig

MAX_ERROR_CHARS = 500
"""Longest error text kept (in the queue's ``last_error``, the status and the log)."""

_TAG = re.compile(r"<[^>]*>")


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _detail(exc: BaseException) -> str:
    # httpx often re-raises with an empty message; the text is then on a cause.
    for cause in _causes(exc):
        text = one_line(str(cause), 300)
        if text:
            return text
    return ""


def describe(exc: Exception, config: UploaderConfig) -> str:
    """One line saying why a request got no answer (httpx messages can be empty)."""
    detail = _detail(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        text = f"connecting timed out after {config.connect_timeout_s:g} s"
        detail = ""
    elif isinstance(exc, httpx.ReadTimeout):
        text = f"no answer within {config.read_timeout_s:g} s (read timeout)"
        detail = ""
    elif isinstance(exc, httpx.WriteTimeout):
        text = f"sending timed out after {config.write_timeout_s:g} s"
        detail = ""
    elif isinstance(exc, httpx.PoolTimeout):
        text = f"no free connection within {config.pool_timeout_s:g} s"
        detail = ""
    elif isinstance(exc, httpx.ProxyError):
        text = "proxy error"
    elif isinstance(exc, httpx.ConnectError):
        tls = [c for c in _causes(exc) if isinstance(c, ssl.SSLError)]
        if tls:
            text, detail = "TLS handshake failed", one_line(str(tls[0]), 300)
        else:
            text = "cannot connect"
    elif isinstance(exc, httpx.RemoteProtocolError):
        if "without sending a response" in detail:
            text, detail = "the server closed the connection without answering", ""
        else:
            text = "the server's answer is not valid HTTP"
    elif isinstance(exc, httpx.ReadError):
        text = "connection lost while waiting for the answer"
    elif isinstance(exc, httpx.WriteError):
        text = "connection lost while sending"
    elif isinstance(exc, httpx.RequestError):
        text = f"request failed ({type(exc).__name__})"
    else:
        text = f"unexpected error ({type(exc).__name__})"
    return one_line(f"{text}: {detail}" if detail else text)


def _message_from_json(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return None
    # pyWATS reads message/Message/error; ASP.NET problem details use title/detail/errors.
    for key in ("message", "Message", "error", "Error", "detail", "title"):
        found = value.get(key)
        if isinstance(found, str) and found.strip():
            text = found
            break
    else:
        text = ""
    errors = value.get("errors")
    if isinstance(errors, dict) and errors:
        listed = "; ".join(
            f"{field}: {', '.join(map(str, problems)) if isinstance(problems, list) else problems}"
            for field, problems in errors.items()
        )
        text = f"{text} ({listed})" if text else listed
    return text or None


def server_message(response: httpx.Response) -> str:
    """``<status> <reason>: <the server's message>`` on one bounded line."""
    head = f"{response.status_code} {response.reason_phrase}".strip()
    message: str | None = None
    # Not JSON raises ValueError (so does UnicodeDecodeError); then the text is the message.
    with contextlib.suppress(ValueError):
        message = _message_from_json(json.loads(response.content))
    if message is None:
        text = response.text
        if "html" in response.headers.get("content-type", "").lower():
            text = _TAG.sub(" ", text)
        message = text
    if response.status_code in range(300, 400) and "location" in response.headers:
        message = f"redirected to {response.headers['location']} {message}"
    message = one_line(message)
    return one_line(f"{head}: {message}" if message else head)


def version_text(response: httpx.Response) -> str:
    try:
        value: object = response.json()
    except ValueError:
        value = response.text
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"))
    return one_line(value, 100) or "(empty)"
