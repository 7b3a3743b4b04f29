"""dwebsocket's settings: ``WEBSOCKET_ACCEPT_ALL`` is shared; ``WEBSOCKET_FACTORY_CLASS`` is not."""

from __future__ import annotations

import logging
import warnings

from django.conf import settings

__all__ = ["BUILTIN_FACTORIES", "warn_about_factory_class"]

logger = logging.getLogger("django_websocket")

#: Values of ``WEBSOCKET_FACTORY_CLASS`` that named dwebsocket's default
#: backend, which the built-in WebSocket replaces as it is: no warning.
BUILTIN_FACTORIES = frozenset(
    {
        "dwebsocket.backends.default.factory.WebSocketFactory",
        "dwebsocket.factory.WebSocketFactory",
        "django_websocket.compat.dwebsocket.backends.default.factory.WebSocketFactory",
    }
)

_warned = False


def warn_about_factory_class() -> bool:
    """Warn once per process that a custom ``WEBSOCKET_FACTORY_CLASS`` is ignored.

    Returns whether this call warned.  The warning goes both to
    :mod:`warnings` (``RuntimeWarning``) and to the ``django_websocket``
    logger, so it shows in consoles and in server logs.
    """
    global _warned
    if _warned:
        return False
    factory = getattr(settings, "WEBSOCKET_FACTORY_CLASS", None)
    if factory is None or factory in BUILTIN_FACTORIES:
        return False
    _warned = True
    message = (
        f"WEBSOCKET_FACTORY_CLASS = {factory!r} is ignored: custom WebSocket factories "
        "(such as dwebsocket's uWSGI backend) are not supported, and django-websocket's "
        "built-in WebSocket is used for every connection (under uWSGI too). Serve the "
        "project with `python -m django_websocket`, `manage.py runserver`, gunicorn -k "
        "gevent or uWSGI --gevent, and remove the setting."
    )
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    logger.warning("%s", message)
    return True
