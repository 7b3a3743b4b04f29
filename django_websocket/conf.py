"""Settings, validated when first used and cached until Django says they changed.

Django sends ``setting_changed`` whenever ``override_settings`` (or
``TestCase.settings``) applies or restores a setting; that empties the cache,
so tests see their overrides at once.

============================== ======================= ===========================================
setting                        default                 meaning
============================== ======================= ===========================================
WEBSOCKET_ACCEPT_ALL           ``False``               with the middleware: upgrade requests to
                                                       undecorated views are served too
WEBSOCKET_MAX_MESSAGE_SIZE     ``1048576`` (1 MiB)     largest incoming message, after
                                                       decompression; ``None`` for no limit (1009)
WEBSOCKET_COMPRESSION          ``True``                negotiate permessage-deflate (RFC 7692)
                                                       with ``DeflateConfig()``'s parameters; a
                                                       ``DeflateConfig`` for others; ``False``: off
WEBSOCKET_PING_INTERVAL        ``20.0``                seconds between keepalive pings; ``None``
                                                       disables them
WEBSOCKET_PING_TIMEOUT         ``20.0``                seconds to wait for the pong before closing
                                                       with 1011
WEBSOCKET_CLOSE_TIMEOUT        ``5.0``                 seconds to wait for the peer's close frame
WEBSOCKET_SEND_TIMEOUT         ``30.0``                seconds one send may wait for a peer that
                                                       takes no data before the connection is cut
WEBSOCKET_MAX_QUEUE            ``16``                  messages received ahead of the view before
                                                       reading pauses (TCP then pushes back)
WEBSOCKET_ALLOWED_ORIGINS      ``[]``                  extra origins allowed besides the request's
                                                       own host and ``CSRF_TRUSTED_ORIGINS``
                                                       (``"*"`` allows any)
WEBSOCKET_SHUTDOWN_TIMEOUT     ``10.0``                the package's server exits within this many
                                                       seconds of SIGTERM (WebSockets not closed
                                                       within WEBSOCKET_CLOSE_TIMEOUT are cut)
WEBSOCKET_CLOSE_DB_CONNECTIONS ``True``                while ``receive()`` waits for the client,
                                                       close the database connections Django would
                                                       close between requests (``CONN_MAX_AGE``),
                                                       never one inside a transaction
WEBSOCKET_GROUPS               ``{}`` (in-process)     backend of ``django_websocket.groups``:
                                                       ``{"BACKEND": "redis", "URL": ...}``, keys
                                                       BACKEND URL PREFIX MAX_QUEUE
                                                       MAX_QUEUE_BYTES COUNT_TTL OPTIONS
                                                       (docs/groups.md)
WEBSOCKET_CLOSE_ON_LOGOUT      ``True``                Django's ``user_logged_out`` closes the
                                                       WebSockets of that session, in every
                                                       process, with 4401 "logged out"
============================== ======================= ===========================================
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .protocol import DeflateConfig

__all__ = ["DEFAULTS", "get", "validate"]

DEFAULTS: dict[str, Any] = {
    "WEBSOCKET_ACCEPT_ALL": False,
    "WEBSOCKET_MAX_MESSAGE_SIZE": 1 << 20,
    "WEBSOCKET_COMPRESSION": True,
    "WEBSOCKET_PING_INTERVAL": 20.0,
    "WEBSOCKET_PING_TIMEOUT": 20.0,
    "WEBSOCKET_CLOSE_TIMEOUT": 5.0,
    "WEBSOCKET_SEND_TIMEOUT": 30.0,
    "WEBSOCKET_MAX_QUEUE": 16,
    "WEBSOCKET_ALLOWED_ORIGINS": [],
    "WEBSOCKET_SHUTDOWN_TIMEOUT": 10.0,
    "WEBSOCKET_CLOSE_DB_CONNECTIONS": True,
    "WEBSOCKET_GROUPS": {},
    "WEBSOCKET_CLOSE_ON_LOGOUT": True,
}

_GROUPS_KEYS = (
    "BACKEND",
    "URL",
    "PREFIX",
    "MAX_QUEUE",
    "MAX_QUEUE_BYTES",
    "COUNT_TTL",
    "OPTIONS",
)
_GROUPS_BACKENDS = ("inprocess", "redis")
_GROUPS_URL_SCHEMES = ("redis://", "rediss://", "unix://")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(name: str, value: Any) -> Any:
    """Check one setting's (or decorator option's) value; raise ``ImproperlyConfigured``."""
    if name in (
        "WEBSOCKET_ACCEPT_ALL",
        "WEBSOCKET_CLOSE_ON_LOGOUT",
        "WEBSOCKET_CLOSE_DB_CONNECTIONS",
    ):
        if not isinstance(value, bool):
            raise ImproperlyConfigured(f"{name} must be True or False, not {value!r}")
    elif name == "WEBSOCKET_COMPRESSION":
        if not isinstance(value, (bool, DeflateConfig)):
            raise ImproperlyConfigured(
                f"{name} must be True, False or a django_websocket.protocol.DeflateConfig, "
                f"not {value!r}"
            )
    elif name == "WEBSOCKET_MAX_MESSAGE_SIZE":
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise ImproperlyConfigured(f"{name} must be None or an integer >= 0, not {value!r}")
    elif name in ("WEBSOCKET_PING_INTERVAL", "WEBSOCKET_PING_TIMEOUT"):
        if value is not None and (not _is_number(value) or value <= 0):
            raise ImproperlyConfigured(
                f"{name} must be None or a number of seconds > 0, not {value!r}"
            )
    elif name == "WEBSOCKET_SEND_TIMEOUT":
        if not _is_number(value) or value <= 0:
            raise ImproperlyConfigured(f"{name} must be a number of seconds > 0, not {value!r}")
    elif name == "WEBSOCKET_MAX_QUEUE":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ImproperlyConfigured(f"{name} must be an integer >= 1, not {value!r}")
    elif name in ("WEBSOCKET_CLOSE_TIMEOUT", "WEBSOCKET_SHUTDOWN_TIMEOUT"):
        if not _is_number(value) or value < 0:
            raise ImproperlyConfigured(f"{name} must be a number of seconds >= 0, not {value!r}")
    elif name == "WEBSOCKET_ALLOWED_ORIGINS":
        if isinstance(value, str) or not all(isinstance(item, str) for item in value):
            raise ImproperlyConfigured(f"{name} must be a list of origin strings, not {value!r}")
        for item in value:
            if item != "*" and "://" not in item:
                raise ImproperlyConfigured(
                    f"{name} entries need a scheme, like 'https://example.com', not {item!r}"
                )
    elif name == "WEBSOCKET_GROUPS":
        _validate_groups(name, value)
    return value


def _validate_groups(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a dict, not {value!r}")
    unknown = sorted(str(key) for key in value if key not in _GROUPS_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"{name} has unknown keys {unknown}; known keys: {', '.join(_GROUPS_KEYS)}"
        )
    backend = value.get("BACKEND", "inprocess")
    if backend not in _GROUPS_BACKENDS:
        raise ImproperlyConfigured(
            f"{name}['BACKEND'] must be 'inprocess' or 'redis', not {backend!r}"
        )
    url = value.get("URL")
    if url is not None and (not isinstance(url, str) or not url.startswith(_GROUPS_URL_SCHEMES)):
        raise ImproperlyConfigured(
            f"{name}['URL'] must be a redis://, rediss:// or unix:// URL, not {url!r}"
        )
    prefix = value.get("PREFIX")
    if prefix is not None and (
        not isinstance(prefix, str) or not prefix or not prefix.isascii() or " " in prefix
    ):
        raise ImproperlyConfigured(
            f"{name}['PREFIX'] must be a non-empty ASCII string without spaces, not {prefix!r}"
        )
    for key, may_be_none in (("MAX_QUEUE", False), ("MAX_QUEUE_BYTES", True)):
        if key not in value or (may_be_none and value[key] is None):
            continue
        limit = value[key]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            allowed = "None or an integer >= 1" if may_be_none else "an integer >= 1"
            raise ImproperlyConfigured(f"{name}[{key!r}] must be {allowed}, not {limit!r}")
    if "COUNT_TTL" in value and (not _is_number(value["COUNT_TTL"]) or value["COUNT_TTL"] <= 0):
        raise ImproperlyConfigured(
            f"{name}['COUNT_TTL'] must be a number of seconds > 0, not {value['COUNT_TTL']!r}"
        )
    options = value.get("OPTIONS")
    if options is not None and (
        not isinstance(options, dict) or not all(isinstance(key, str) for key in options)
    ):
        raise ImproperlyConfigured(
            f"{name}['OPTIONS'] must be a dict of redis.Redis keyword arguments, not {options!r}"
        )


_cache: dict[str, Any] = {}


def get(name: str) -> Any:
    """The current value of a ``WEBSOCKET_*`` setting, validated, or its default.

    Read on every WebSocket handshake, so a validated value is kept until
    ``setting_changed`` (an invalid one is not kept: it raises again).
    """
    try:
        return _cache[name]
    except KeyError:
        pass
    value = validate(name, getattr(settings, name, DEFAULTS[name]))
    _cache[name] = value
    return value


def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("WEBSOCKET_"):
        _cache.clear()


setting_changed.connect(_forget, dispatch_uid="django_websocket.conf")
