"""The opening handshake: RFC 6455 section 4.2 and RFC 7692 section 7 negotiation."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterable, Mapping

import pytest

from django_websocket.protocol import (
    Accept,
    DeflateConfig,
    DeflateParams,
    HandshakePolicy,
    Reject,
    accept_key,
    negotiate,
)
from django_websocket.protocol.handshake import (
    asks_for_websocket,
    parse_extensions,
    parse_token_list,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

Headers = Mapping[str, str] | Iterable[tuple[str, str]]

#: zlib's own window and no request to the client: the negotiation tests below
#: state their expectations against it (the shipped defaults are tested apart).
WIDE = DeflateConfig(server_max_window_bits=15, client_max_window_bits=None)


def wide_with(**changes: object) -> DeflateConfig:
    return dataclasses.replace(WIDE, **changes)  # type: ignore[arg-type]


def request(**overrides: str | None) -> dict[str, str]:
    """A valid client handshake's headers; ``None`` removes a header."""
    headers = {
        "Host": "server.example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    return headers


def accepted(headers: Headers, policy: HandshakePolicy | None = None, **kwargs: object) -> Accept:
    result = negotiate("GET", "HTTP/1.1", headers, policy, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, Accept), result
    return result


def rejected(
    headers: Headers,
    policy: HandshakePolicy | None = None,
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
) -> Reject:
    result = negotiate(method, version, headers, policy)
    assert isinstance(result, Reject), result
    return result


def response_headers(result: Accept) -> dict[str, str]:
    """The 101 response's header fields, parsed back from the bytes."""
    head, sep, rest = result.response.partition(b"\r\n\r\n")
    assert sep and rest == b""
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        assert name.lower() not in fields
        fields[name.lower()] = value
    return fields


# ----------------------------------------------------------------------
# Section 1.3 / 4.2.2: the accept key


def test_accept_key_rfc_vector() -> None:
    assert accept_key(KEY) == ACCEPT


def test_exact_101_response() -> None:
    result = accepted(request())
    assert result.response == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    )
    assert result.headers == (
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", ACCEPT),
    )
    assert result.subprotocol is None
    assert result.deflate is None


def test_default_policy_is_used_when_none_given() -> None:
    # The default policy allows permessage-deflate and any origin.
    result = accepted(
        request(
            Origin="https://anywhere.example", **{"Sec-WebSocket-Extensions": "permessage-deflate"}
        )
    )
    # The shipped defaults: a 13-bit window, stated since the client did not
    # ask for one; the client, which did not offer client_max_window_bits,
    # keeps its full window.
    assert result.deflate.params == DeflateParams(
        server_max_window_bits=13, state_server_max_window_bits=True
    )


def test_headers_as_pairs_and_names_case_insensitive() -> None:
    pairs = [
        ("HOST", "h"),
        ("upgrade", "WebSocket"),
        ("CONNECTION", "UPGRADE"),
        ("sec-websocket-key", f" {KEY}\t"),
        ("SEC-WEBSOCKET-VERSION", " 13 "),
    ]
    assert response_headers(accepted(pairs))["sec-websocket-accept"] == ACCEPT


# ----------------------------------------------------------------------
# Section 4.2.1: every requirement on the client's request


@pytest.mark.parametrize("method", ["POST", "HEAD", "PUT", "OPTIONS", "CONNECT"])
def test_method_must_be_get(method: str) -> None:
    result = rejected(request(), method=method)
    assert result.status == 400
    assert result.status_line == "400 Bad Request"
    assert method in result.reason


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/0.9", "HTTP/1", "HTTP", "", "1.1", "SPDY/3"])
def test_http_version_below_1_1_rejected(version: str) -> None:
    assert rejected(request(), version=version).status == 400


@pytest.mark.parametrize("version", ["HTTP/1.1", "http/1.1", "HTTP/1.2", "HTTP/2", "HTTP/2.0"])
def test_http_version_1_1_or_later_accepted(version: str) -> None:
    assert isinstance(negotiate("GET", version, request()), Accept)


@pytest.mark.parametrize(
    "upgrade",
    [None, "", "h2c", "websocket2", "web socket", '"websocket"', "websocket/13", ",", "websocket;"],
)
def test_missing_or_invalid_upgrade(upgrade: str | None) -> None:
    result = rejected(request(Upgrade=upgrade))
    assert result.status == 400
    assert "Upgrade" in result.reason


@pytest.mark.parametrize(
    "upgrade", ["websocket", "WebSocket", "WEBSOCKET", "h2c, websocket", " websocket ,"]
)
def test_upgrade_case_insensitive_token_list(upgrade: str) -> None:
    assert isinstance(negotiate("GET", "HTTP/1.1", request(Upgrade=upgrade)), Accept)


@pytest.mark.parametrize(
    "connection",
    [
        "Upgrade",
        "upgrade",
        "UPGRADE",
        "keep-alive, Upgrade",
        "Upgrade, keep-alive",
        "keep-alive,upgrade",
        " , Upgrade , ,",
        "close,\tUpgrade",
    ],
)
def test_connection_token_list_accepted(connection: str) -> None:
    assert isinstance(negotiate("GET", "HTTP/1.1", request(Connection=connection)), Accept)


@pytest.mark.parametrize(
    "connection",
    [None, "", "keep-alive", "close", "Upgrade2", "keep-alive Upgrade", '"Upgrade"', "Upgrade;x"],
)
def test_connection_without_upgrade_token_rejected(connection: str | None) -> None:
    result = rejected(request(Connection=connection))
    assert result.status == 400
    assert "Connection" in result.reason


def test_connection_repeated_header_fields_are_combined() -> None:
    pairs = [(k, v) for k, v in request(Connection=None).items()]
    pairs += [("Connection", "keep-alive"), ("Connection", "Upgrade")]
    assert isinstance(negotiate("GET", "HTTP/1.1", pairs), Accept)


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "not base64!",
        base64.b64encode(b"x" * 15).decode(),
        base64.b64encode(b"x" * 17).decode(),
        base64.b64encode(b"x" * 16).decode().rstrip("="),  # padding missing
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbX BsZSBub25jZQ==",  # space inside
        "-_-_-_-_-_-_-_-_-_-_-A==",  # URL-safe alphabet
        "dGhlIHNhbXBsZSBub25jZQ==\u00e9",
        f"{KEY}, {KEY}",  # two Sec-WebSocket-Key fields combined
    ],
)
def test_invalid_key_rejected(key: str | None) -> None:
    result = rejected(request(**{"Sec-WebSocket-Key": key}))
    assert result.status == 400
    assert "Sec-WebSocket-Key" in result.reason


def test_any_16_byte_key_accepted() -> None:
    for raw in (bytes(16), b"\xff" * 16, bytes(range(16))):
        key = base64.b64encode(raw).decode()
        result = accepted(request(**{"Sec-WebSocket-Key": key}))
        assert response_headers(result)["sec-websocket-accept"] == accept_key(key)


@pytest.mark.parametrize("version", [None, "", "8", "7", "12", "14", "13, 8", "013", "thirteen"])
def test_unsupported_version_426(version: str | None) -> None:
    result = rejected(request(**{"Sec-WebSocket-Version": version}))
    assert result.status == 426
    assert result.status_line == "426 Upgrade Required"
    assert ("Sec-WebSocket-Version", "13") in result.headers
    assert result.body.startswith(b"426 Upgrade Required: ")
    assert result.body.endswith(b"\n")


def test_first_failing_check_decides() -> None:
    # Wrong method and wrong version: the method is checked first.
    bad = request(**{"Sec-WebSocket-Version": "8", "Upgrade": None})
    assert rejected(bad, method="POST").status == 400
    # Invalid key and wrong version: 400 for the key, not 426.
    assert (
        rejected(request(**{"Sec-WebSocket-Key": "x", "Sec-WebSocket-Version": "8"})).status == 400
    )


# ----------------------------------------------------------------------
# Section 10.2: origin


def test_origin_refused_403() -> None:
    seen: list[str | None] = []

    def allowed(origin: str | None) -> bool:
        seen.append(origin)
        return origin == "https://good.example"

    policy = HandshakePolicy(origin_allowed=allowed)
    result = rejected(request(Origin="https://evil.example"), policy)
    assert result.status == 403
    assert result.status_line == "403 Forbidden"
    assert "https://evil.example" in result.reason
    assert result.body == f"403 Forbidden: {result.reason}\n".encode()

    assert isinstance(
        negotiate("GET", "HTTP/1.1", request(Origin="https://good.example"), policy), Accept
    )
    # A missing Origin is passed as None (and refused by this policy).
    assert rejected(request(), policy).status == 403
    assert seen == ["https://evil.example", "https://good.example", None]


def test_origin_checked_after_version() -> None:
    policy = HandshakePolicy(origin_allowed=lambda origin: False)
    assert rejected(request(**{"Sec-WebSocket-Version": "8"}), policy).status == 426


def test_reject_status_line_for_other_status() -> None:
    assert Reject(500, "boom").status_line == "500 Error"


# ----------------------------------------------------------------------
# Section 4.2.2: subprotocol


def _protocols(server: tuple[str, ...], offered: str | None) -> Accept:
    headers = request()
    if offered is not None:
        headers["Sec-WebSocket-Protocol"] = offered
    return accepted(headers, HandshakePolicy(subprotocols=server))


def test_subprotocol_server_preference_wins() -> None:
    result = _protocols(("chat", "superchat"), "superchat, chat")
    assert result.subprotocol == "chat"
    assert response_headers(result)["sec-websocket-protocol"] == "chat"
    # Never the client's list, only the one chosen value.
    assert b"superchat" not in result.response


def test_subprotocol_single_match() -> None:
    result = _protocols(("v2", "v1"), "v0,v1")
    assert result.subprotocol == "v1"
    assert response_headers(result)["sec-websocket-protocol"] == "v1"


def test_subprotocol_exact_match_only() -> None:
    # Subprotocol names are case-sensitive tokens.
    assert _protocols(("chat",), "Chat").subprotocol is None


@pytest.mark.parametrize(
    ("server", "offered"),
    [(("chat",), "other, more"), (("chat",), None), ((), "chat"), (("chat",), "")],
)
def test_no_subprotocol_no_header(server: tuple[str, ...], offered: str | None) -> None:
    result = _protocols(server, offered)
    assert result.subprotocol is None
    assert "sec-websocket-protocol" not in response_headers(result)


def test_subprotocol_repeated_fields_combined() -> None:
    pairs = [*request().items(), ("Sec-WebSocket-Protocol", "a"), ("Sec-WebSocket-Protocol", "b")]
    assert accepted(pairs, HandshakePolicy(subprotocols=("b",))).subprotocol == "b"


# ----------------------------------------------------------------------
# RFC 7692 section 7: permessage-deflate negotiation


def _deflate(offer: str | None, config: DeflateConfig | None = None) -> Accept:
    headers = request()
    if offer is not None:
        headers["Sec-WebSocket-Extensions"] = offer
    policy = HandshakePolicy(compression=config if config is not None else WIDE)
    return accepted(headers, policy)


def _ext_header(result: Accept) -> str | None:
    return response_headers(result).get("sec-websocket-extensions")


def test_deflate_plain_offer() -> None:
    result = _deflate("permessage-deflate")
    assert result.deflate.params == DeflateParams()
    assert _ext_header(result) == "permessage-deflate"


def test_deflate_not_offered() -> None:
    result = _deflate(None)
    assert result.deflate is None
    assert _ext_header(result) is None


def test_deflate_refused_by_policy() -> None:
    headers = request(**{"Sec-WebSocket-Extensions": "permessage-deflate"})
    result = accepted(headers, HandshakePolicy(compression=None))
    assert result.deflate is None
    assert _ext_header(result) is None


@pytest.mark.parametrize(
    ("offer", "config", "expected"),
    [
        # server_no_context_takeover (7.1.1.1): echoed when offered.
        (
            "permessage-deflate; server_no_context_takeover",
            WIDE,
            "permessage-deflate; server_no_context_takeover",
        ),
        # ... and the server MAY add it on its own.
        (
            "permessage-deflate",
            wide_with(server_no_context_takeover=True),
            "permessage-deflate; server_no_context_takeover",
        ),
        # client_no_context_takeover (7.1.1.2): echoed, or added by the server.
        (
            "permessage-deflate; client_no_context_takeover",
            WIDE,
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            "permessage-deflate",
            wide_with(client_no_context_takeover=True),
            "permessage-deflate; client_no_context_takeover",
        ),
        # server_max_window_bits (7.1.2.1): the same or a smaller value.
        (
            "permessage-deflate; server_max_window_bits=10",
            WIDE,
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_max_window_bits=15",
            WIDE,
            "permessage-deflate; server_max_window_bits=15",
        ),
        (
            "permessage-deflate; server_max_window_bits=14",
            wide_with(server_max_window_bits=12),
            "permessage-deflate; server_max_window_bits=12",
        ),
        (
            "permessage-deflate; server_max_window_bits=9",
            wide_with(server_max_window_bits=12),
            "permessage-deflate; server_max_window_bits=9",
        ),
        # The server may state its window even when the client did not ask.
        (
            "permessage-deflate",
            wide_with(server_max_window_bits=11),
            "permessage-deflate; server_max_window_bits=11",
        ),
        # client_max_window_bits (7.1.2.2): valueless, the client only says it
        # supports the parameter; the server states one only if it wants one.
        ("permessage-deflate; client_max_window_bits", WIDE, "permessage-deflate"),
        (
            "permessage-deflate; client_max_window_bits",
            wide_with(client_max_window_bits=10),
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            "permessage-deflate; client_max_window_bits=12",
            wide_with(client_max_window_bits=10),
            "permessage-deflate; client_max_window_bits=10",
        ),
        # "a value equal to or smaller than the received value".
        (
            "permessage-deflate; client_max_window_bits=9",
            wide_with(client_max_window_bits=12),
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            "permessage-deflate; client_max_window_bits=8",
            wide_with(client_max_window_bits=12),
            "permessage-deflate; client_max_window_bits=8",
        ),
        # A hint with no server limit: the parameter is not stated.
        ("permessage-deflate; client_max_window_bits=11", WIDE, "permessage-deflate"),
        # Without the parameter in the offer, it MUST NOT appear in the response.
        ("permessage-deflate", wide_with(client_max_window_bits=10), "permessage-deflate"),
    ],
)
def test_deflate_parameters(offer: str, config: DeflateConfig, expected: str) -> None:
    result = _deflate(offer, config)
    assert result.deflate is not None
    assert _ext_header(result) == expected
    assert result.deflate.params.response_header() == expected


def test_deflate_all_four_parameters() -> None:
    offer = (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits"
    )
    result = _deflate(offer, wide_with(client_max_window_bits=11))
    assert result.deflate.params == DeflateParams(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=11,
        state_server_max_window_bits=True,
        state_client_max_window_bits=True,
    )
    assert _ext_header(result) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=11"
    )


def test_deflate_client_hint_without_server_limit_keeps_full_window() -> None:
    # The client may still use any window up to 15 bits: inflate with 15.
    result = _deflate("permessage-deflate; client_max_window_bits=9")
    assert result.deflate is not None
    assert result.deflate.params.client_max_window_bits == 15


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=0",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; server_max_window_bits",
        # Valid, but zlib cannot compress with a 256-byte window.
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=09",
        "permessage-deflate; client_max_window_bits=x",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=true",
        "x-webkit-deflate-frame",
        "permessage-foo, deflate",
    ],
)
def test_invalid_offer_declined(offer: str) -> None:
    result = _deflate(offer, wide_with(client_max_window_bits=12))
    assert result.deflate is None
    assert _ext_header(result) is None


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        # First acceptable offer in the client's order wins.
        (
            "permessage-deflate; server_no_context_takeover, permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            "permessage-deflate; server_max_window_bits=16, "
            "permessage-deflate; client_no_context_takeover, permessage-deflate",
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=12",
            "permessage-deflate; server_max_window_bits=12",
        ),
        # Empty list elements and optional whitespace.
        (
            " , permessage-deflate ;\tserver_no_context_takeover , ,",
            "permessage-deflate; server_no_context_takeover",
        ),
        # Names are case-insensitive.
        (
            "Permessage-Deflate; Server_No_Context_Takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
    ],
)
def test_several_offers(offer: str, expected: str) -> None:
    assert _ext_header(_deflate(offer)) == expected


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        (
            'permessage-deflate; server_max_window_bits="10"',
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            'permessage-deflate; server_max_window_bits = "1\\1"',
            "permessage-deflate; server_max_window_bits=11",
        ),
        (
            'permessage-deflate; client_max_window_bits="10"',
            "permessage-deflate; client_max_window_bits=10",
        ),
    ],
)
def test_quoted_string_values(offer: str, expected: str) -> None:
    assert _ext_header(_deflate(offer, wide_with(client_max_window_bits=12))) == expected


def test_quoted_invalid_value_declined() -> None:
    assert _deflate('permessage-deflate; server_max_window_bits="16"').deflate is None


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate;",
        "permessage-deflate; ",
        "permessage-deflate; =10",
        "permessage-deflate server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=",
        'permessage-deflate; server_max_window_bits="10',
        'permessage-deflate; server_max_window_bits="1 0"',
        "permessage-deflate;; server_no_context_takeover",
        "@",
        "permessage-deflate, @",
        "permessage-deflate; server_max_window_bits=10 11",
    ],
)
def test_malformed_extension_header_declined_not_rejected(offer: str) -> None:
    result = _deflate(offer)
    assert result.deflate is None
    assert _ext_header(result) is None


def test_repeated_extension_fields_combined() -> None:
    pairs = [
        *request().items(),
        ("Sec-WebSocket-Extensions", "x-foo"),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_no_context_takeover"),
    ]
    result = accepted(pairs)
    assert _ext_header(result) == (
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=13"
    )


# ----------------------------------------------------------------------
# Response assembly


def test_response_header_order_and_extra_headers() -> None:
    headers = request(
        **{"Sec-WebSocket-Protocol": "chat", "Sec-WebSocket-Extensions": "permessage-deflate"}
    )
    result = accepted(
        headers,
        HandshakePolicy(subprotocols=("chat",)),
        extra_headers=[("Set-Cookie", "a=b; Path=/"), ("X-Trace", "1")],
    )
    assert result.response == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Protocol: chat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=13\r\n"
        b"Set-Cookie: a=b; Path=/\r\n"
        b"X-Trace: 1\r\n"
        b"\r\n"
    )
    assert result.headers[-2:] == (("Set-Cookie", "a=b; Path=/"), ("X-Trace", "1"))


@pytest.mark.parametrize(
    "header",
    [
        ("X-Evil", "a\r\nSet-Cookie: x=y"),
        ("X-Evil", "a\nb"),
        ("X-Evil", "a\rb"),
        ("X-Evil", "a\0b"),
        ("X-Evil\r\nSet-Cookie", "x"),
        ("X-Evil\n", "x"),
    ],
)
def test_header_injection_raises(header: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid character"):
        negotiate("GET", "HTTP/1.1", request(), extra_headers=[header])


# ----------------------------------------------------------------------
# The parsers on their own


def test_parse_token_list() -> None:
    assert parse_token_list("a, B ,,\tc") == ["a", "b", "c"]
    assert parse_token_list("") == []
    with pytest.raises(ValueError, match="not a token"):
        parse_token_list("a, b c")


def test_parse_extensions() -> None:
    assert parse_extensions('A; x=1; Y="2"; z, b ,') == [
        ("a", [("x", "1"), ("y", "2"), ("z", None)]),
        ("b", []),
    ]
    assert parse_extensions("") == []
    with pytest.raises(ValueError, match="quoted parameter value must be a token"):
        parse_extensions('a; x="1,2"')
    with pytest.raises(ValueError, match="expected a token"):
        parse_extensions("a; ")
    with pytest.raises(ValueError, match="expected ','"):
        parse_extensions("a b")


@pytest.mark.parametrize(
    ("upgrade", "expected"),
    [
        ("websocket", True),
        ("WebSocket, foo", True),
        ("foo, websocket", True),
        (" websocket ,", True),
        ("", False),
        ("h2c", False),
        ("websocket/13", False),  # a product with a version is not the token
        ("web socket", False),  # not a token list: names nothing
    ],
)
def test_asks_for_websocket_is_the_upgrade_rule_of_negotiate(upgrade: str, expected: bool) -> None:
    """Servers decide "is this an upgrade?" by the very rule the handshake applies."""
    assert asks_for_websocket(upgrade) is expected
    assert isinstance(negotiate("GET", "HTTP/1.1", request(Upgrade=upgrade)), Accept) is expected
