"""The server's opening handshake (RFC 6455 section 4.2) as a pure function.

:func:`negotiate` takes a parsed HTTP request and the server's policy and
returns either :class:`Accept` (the exact ``101`` response bytes and what was
agreed) or :class:`Reject` (the HTTP status, headers and body to answer
with).  It performs no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .deflate import DeflateConfig, PerMessageDeflate, negotiate_deflate

__all__ = [
    "GUID",
    "REQUEST_FIELDS",
    "Accept",
    "HandshakePolicy",
    "Reject",
    "accept_key",
    "asks_for_websocket",
    "negotiate",
    "parse_extensions",
    "parse_token_list",
]

#: The fixed GUID of RFC 6455 section 1.3.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

SUPPORTED_VERSION = "13"

#: The request header fields :func:`negotiate` reads (lower-case); any other
#: field may be left out of the headers it is given.
REQUEST_FIELDS = (
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "origin",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
)

_HTTP_VERSION = re.compile(r"HTTP/(\d+)(?:\.(\d+))?")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_OWS = re.compile(r"[ \t]*")

_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    426: "Upgrade Required",
}


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2).

    The base64 of the SHA-1 of the key concatenated with :data:`GUID`.
    """
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class HandshakePolicy:
    """What the server will agree to.

    ``subprotocols`` is in the server's order of preference; ``compression``
    is ``None`` to refuse permessage-deflate; ``origin_allowed`` receives the
    ``Origin`` header (``None`` when absent) and returns whether to accept;
    leave it ``None`` to accept any origin.
    """

    subprotocols: Sequence[str] = ()
    compression: DeflateConfig | None = field(default_factory=DeflateConfig)
    origin_allowed: Callable[[str | None], bool] | None = None


@dataclass(frozen=True, slots=True)
class Accept:
    """An accepted handshake: send ``response`` verbatim, then speak WebSocket.

    ``deflate`` is the connection's permessage-deflate codec, configured by
    the policy's :class:`DeflateConfig` and the agreed parameters (its
    ``params``), ready to hand to the connection; ``None`` when none was agreed.
    """

    response: bytes
    headers: tuple[tuple[str, str], ...]
    subprotocol: str | None
    deflate: PerMessageDeflate | None


@dataclass(frozen=True, slots=True)
class Reject:
    """A refused handshake: answer with this HTTP response and do not upgrade.

    ``reason`` is a short human-readable explanation, also used as the body.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def status_line(self) -> str:
        """The status as WSGI's ``start_response`` wants it, e.g. ``"400 Bad Request"``."""
        return f"{self.status} {_REASONS.get(self.status, 'Error')}"

    @property
    def body(self) -> bytes:
        """A short plain-text body that says why."""
        return f"{self.status_line}: {self.reason}\n".encode()


def parse_token_list(value: str) -> list[str]:
    """Parse an RFC 7230 ``1#token`` list, lower-cased; empty elements are skipped.

    Raises ``ValueError`` when an element is not a token.
    """
    tokens = []
    for item in value.split(","):
        item = item.strip(" \t")
        if not item:
            continue
        if not _TOKEN.fullmatch(item):
            raise ValueError(f"not a token: {item!r}")
        tokens.append(item.lower())
    return tokens


def _has_token(value: str, token: str) -> bool:
    try:
        return token in parse_token_list(value)
    except ValueError:
        return False  # a malformed list names nothing


def asks_for_websocket(upgrade: str) -> bool:
    """Whether an ``Upgrade`` header value asks for a WebSocket.

    The rule :func:`negotiate` applies (RFC 6455 section 4.2.1, item 3): a
    token list, case-insensitive, that contains ``websocket``, such as
    ``websocket`` or ``WebSocket, foo``.  Servers use it to tell an upgrade
    request from plain HTTP before the application runs.
    """
    return _has_token(upgrade, "websocket")


def parse_extensions(value: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Parse a ``Sec-WebSocket-Extensions`` value (RFC 6455 section 9.1).

    Returns ``[(extension, [(param, value or None), ...]), ...]`` with names
    lower-cased.  Quoted values are unescaped and, as the RFC requires, must
    then be tokens.  Raises ``ValueError`` on a malformed header.
    """
    result: list[tuple[str, list[tuple[str, str | None]]]] = []
    pos = 0
    end = len(value)

    def skip_ows(at: int) -> int:
        match = _OWS.match(value, at)
        assert match is not None
        return match.end()

    def token(at: int) -> tuple[str, int]:
        match = _TOKEN.match(value, at)
        if match is None:
            raise ValueError(f"expected a token at offset {at}")
        return match.group(0), match.end()

    pos = skip_ows(pos)
    while pos < end:
        if value[pos] == ",":  # empty list element
            pos = skip_ows(pos + 1)
            continue
        name, pos = token(pos)
        params: list[tuple[str, str | None]] = []
        pos = skip_ows(pos)
        while pos < end and value[pos] == ";":
            pos = skip_ows(pos + 1)
            param, pos = token(pos)
            pos = skip_ows(pos)
            param_value: str | None = None
            if pos < end and value[pos] == "=":
                pos = skip_ows(pos + 1)
                quoted = _QUOTED.match(value, pos)
                if quoted is not None:
                    param_value = re.sub(r"\\(.)", r"\1", quoted.group(1))
                    if not _TOKEN.fullmatch(param_value):
                        raise ValueError("a quoted parameter value must be a token")
                    pos = quoted.end()
                else:
                    param_value, pos = token(pos)
                pos = skip_ows(pos)
            params.append((param.lower(), param_value))
        result.append((name.lower(), params))
        if pos < end:
            if value[pos] != ",":
                raise ValueError(f"expected ',' at offset {pos}")
            pos = skip_ows(pos + 1)
    return result


def _normalise(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; repeated fields are joined with ", " as RFC 7230 allows."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    merged: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _http_version_ok(version: str) -> bool:
    if version == "HTTP/1.1":
        return True
    match = _HTTP_VERSION.fullmatch(version.strip().upper())
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2) or 0)) >= (1, 1)


def negotiate(
    method: str,
    http_version: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    policy: HandshakePolicy | None = None,
    *,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> Accept | Reject:
    """Validate a client's opening handshake and build the server's answer.

    ``headers`` is a mapping or a sequence of pairs; names are matched
    case-insensitively.  ``extra_headers`` are appended to a ``101`` response
    (for example ``Set-Cookie``).  Every check of RFC 6455 section 4.2.1 is
    made; the first that fails decides the rejection.
    """
    if policy is None:
        policy = HandshakePolicy()
    fields = _normalise(headers)

    # "An HTTP/1.1 or higher GET request" (RFC 6455 section 4.2.1, item 1).
    if method.upper() != "GET":
        return Reject(400, f"a WebSocket handshake must use GET, not {method}")
    if not _http_version_ok(http_version):
        return Reject(400, f"a WebSocket handshake needs HTTP/1.1 or later, not {http_version}")

    # "An |Upgrade| header field containing the value "websocket",
    # treated as an ASCII case-insensitive value" (item 3).
    if not asks_for_websocket(fields.get("upgrade", "")):
        return Reject(400, "missing or invalid Upgrade: websocket header")

    # "A |Connection| header field that includes the token "Upgrade",
    # treated as an ASCII case-insensitive value" (item 4).
    if not _has_token(fields.get("connection", ""), "upgrade"):
        return Reject(400, "missing or invalid Connection: Upgrade header")

    # "A |Sec-WebSocket-Key| header field with a base64-encoded value that,
    # when decoded, is 16 bytes in length" (item 5).
    key = fields.get("sec-websocket-key", "").strip(" \t")
    try:
        raw_key = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw_key = b""
    if len(raw_key) != 16:
        return Reject(400, "missing or invalid Sec-WebSocket-Key header")

    # "If this version does not match a version understood by the server,
    # the server MUST abort the WebSocket handshake ... and instead send an
    # appropriate HTTP error code (such as 426 Upgrade Required) and a
    # |Sec-WebSocket-Version| header field indicating the version(s) the
    # server is capable of understanding" (section 4.2.2).
    version = fields.get("sec-websocket-version", "").strip(" \t")
    if version != SUPPORTED_VERSION:
        return Reject(
            426,
            f"unsupported Sec-WebSocket-Version {version or '(none)'}; this server speaks 13",
            (("Sec-WebSocket-Version", SUPPORTED_VERSION), ("Upgrade", "websocket")),
        )

    # Cross-site WebSocket hijacking protection (section 10.2): "If the
    # origin indicated is unacceptable to the server, then it SHOULD respond
    # ... with a reply containing HTTP 403 Forbidden status code."
    origin = fields.get("origin")
    if policy.origin_allowed is not None and not policy.origin_allowed(origin):
        return Reject(403, f"origin {origin!r} is not allowed")

    # Subprotocol: the server's most preferred value that the client
    # offered; no header at all when none matches (section 4.2.2, /subprotocol/).
    subprotocol = None
    if policy.subprotocols and "sec-websocket-protocol" in fields:
        offered = {item.strip(" \t") for item in fields["sec-websocket-protocol"].split(",")}
        for candidate in policy.subprotocols:
            if candidate in offered:
                subprotocol = candidate
                break

    deflate = None
    if policy.compression is not None and "sec-websocket-extensions" in fields:
        try:
            offers = parse_extensions(fields["sec-websocket-extensions"])
        except ValueError:
            offers = []  # a malformed header is declined, not refused
        params = negotiate_deflate(offers, policy.compression)
        if params is not None:
            deflate = PerMessageDeflate(params, policy.compression)

    response_headers: list[tuple[str, str]] = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if subprotocol is not None:
        response_headers.append(("Sec-WebSocket-Protocol", subprotocol))
    if deflate is not None:
        response_headers.append(("Sec-WebSocket-Extensions", deflate.params.response_header()))
    response_headers.extend(extra_headers)
    for name, value in response_headers:
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError(f"invalid character in response header {name!r}")
    lines = ["HTTP/1.1 101 Switching Protocols"]
    lines.extend(f"{name}: {value}" for name, value in response_headers)
    response = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Accept(response, tuple(response_headers), subprotocol, deflate)
