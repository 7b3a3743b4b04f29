"""Events that the protocol core reports to the layer above.

Every event is a small frozen dataclass.  The connection object never raises
on peer misbehaviour; it reports what happened through these events and its
``failure`` attribute.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A complete text message, decoded and validated as UTF-8."""

    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    """A complete binary message."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping from the peer.  The core has already queued the matching pong."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong from the peer (solicited or not)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame.

    ``code`` is ``None`` when the frame carried no status code; the RFC then
    reports the status as 1005 (no status received), which is what
    ``effective_code`` gives.
    """

    code: int | None
    reason: str

    @property
    def effective_code(self) -> int:
        """The code as the RFC reports it: 1005 when the frame carried none."""
        return 1005 if self.code is None else self.code


Event = TextMessage | BinaryMessage | Ping | Pong | CloseReceived

__all__ = ["BinaryMessage", "CloseReceived", "Event", "Ping", "Pong", "TextMessage"]
