"""Sans-I/O RFC 6455 (WebSocket) and RFC 7692 (permessage-deflate), server side.

This layer owns no socket and imports only the standard library.  The
opening handshake is :func:`negotiate`; a connection after the handshake is
a :class:`ServerConnection`.
"""

from .connection import Failure, InvalidState, ServerConnection, State
from .deflate import DeflateConfig, DeflateParams, PerMessageDeflate
from .events import BinaryMessage, CloseReceived, Event, Ping, Pong, TextMessage
from .frames import CloseCode, Opcode, is_valid_close_code
from .handshake import Accept, HandshakePolicy, Reject, accept_key, negotiate

__all__ = [
    "Accept",
    "BinaryMessage",
    "CloseCode",
    "CloseReceived",
    "DeflateConfig",
    "DeflateParams",
    "Event",
    "Failure",
    "HandshakePolicy",
    "InvalidState",
    "Opcode",
    "PerMessageDeflate",
    "Ping",
    "Pong",
    "Reject",
    "ServerConnection",
    "State",
    "TextMessage",
    "accept_key",
    "is_valid_close_code",
    "negotiate",
]
