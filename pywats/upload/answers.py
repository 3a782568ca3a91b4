"""What a request got, as text a person can act on: one line per answer or failure."""

from __future__ import annotations

import contextlib
import errno
import json
import re
import socket
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
    """``exc`` and what it was raised from, outermost first; the members of an exception
    group too (trio gathers one error per address tried into a group: the refusal
    itself is only in there)."""
    chain: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current: BaseException | None = todo.pop(0)
        while current is not None and all(current is not seen for seen in chain):
            chain.append(current)
            if isinstance(current, BaseExceptionGroup):
                todo.extend(current.exceptions)
            current = current.__cause__ or current.__context__
    return chain


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "no route to host",
    errno.EHOSTDOWN: "host is down",
    errno.ENETUNREACH: "network unreachable",
    errno.ENETDOWN: "network is down",
    errno.EADDRNOTAVAIL: "address not available",
}
"""Socket errors a station engineer meets, in the words the offline line uses."""

_ERRNO_TEXT = re.compile(r"\[Errno (-?\d+)\]")
_SSL_CODE = re.compile(r"^\[SSL: ([A-Z0-9_]+)\]")
_SSL_NOISE = re.compile(r"^\[SSL: [A-Z0-9_]+\]\s*|\s*\(_ssl\.c:\d+\)$")


def _plain_cause(exc: BaseException) -> str:
    """The cause of a network failure in plain words ("connection refused"), or ``""``
    when none is known: the errno of an ``OSError`` anywhere in the chain, or an
    ``[Errno N]`` in a message that kept only the text."""
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name ({cause.strerror or cause})"
        if isinstance(cause, OSError) and cause.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[cause.errno]
    for cause in causes:
        found = _ERRNO_TEXT.search(str(cause))
        if found and int(found.group(1)) in _ERRNO_WORDS:
            return _ERRNO_WORDS[int(found.group(1))]
    return ""


def _tls_text(exc: ssl.SSLError) -> str:
    """An ``ssl`` error in words, OpenSSL's code kept for searching: ``certificate verify
    failed: self-signed certificate (CERTIFICATE_VERIFY_FAILED)`` rather than
    ``[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ... (_ssl.c:1006)``."""
    raw = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    found = _SSL_CODE.match(raw)
    code = getattr(exc, "reason", None) or (found.group(1) if found else None)
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        text = f"certificate verify failed: {exc.verify_message}"
    else:
        text = one_line(_SSL_NOISE.sub("", raw), 300)
    if text and code:
        return f"{text} ({code})"
    return text or code or type(exc).__name__


def _detail(exc: BaseException) -> str:
    # httpx often re-raises with an empty message; the text is then on a cause.
    for cause in _causes(exc):
        text = one_line(str(cause), 300)
        if text:
            return text
    return ""


def describe(exc: Exception, config: UploaderConfig) -> str:
    """One line saying why a request got no answer, cause in plain words: ``cannot
    connect: connection refused``, ``connecting timed out after 10 s``, ``TLS handshake
    failed: certificate verify failed: ...`` (httpx's own messages can be empty, or
    ``all attempts to connect ... failed`` with the reason buried in an exception group)."""
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
            text, detail = "TLS handshake failed", _tls_text(tls[0])
        else:
            text = "cannot connect"
            detail = _plain_cause(exc) or detail
    elif isinstance(exc, httpx.RemoteProtocolError):
        if "without sending a response" in detail:
            text, detail = "the server closed the connection without answering", ""
        else:
            text = "the server's answer is not valid HTTP"
    elif isinstance(exc, httpx.ReadError):
        text = "connection lost while waiting for the answer"
        detail = _plain_cause(exc) or detail
    elif isinstance(exc, httpx.WriteError):
        text = "connection lost while sending"
        detail = _plain_cause(exc) or detail
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
