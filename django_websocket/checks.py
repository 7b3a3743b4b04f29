"""System checks for real misconfigurations."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import conf

__all__ = ["E001", "E002", "W001", "check_settings", "register"]

MIDDLEWARE_PATH = "django_websocket.middleware.WebSocketMiddleware"

E001 = "django_websocket.E001"
E002 = "django_websocket.E002"
W001 = "django_websocket.W001"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every ``WEBSOCKET_*`` setting has a valid value; the middleware is where Django reads it."""
    errors: list[checks.CheckMessage] = []
    for name in conf.DEFAULTS:
        try:
            conf.get(name)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id=E001))
    legacy = getattr(settings, "MIDDLEWARE_CLASSES", None) or ()
    if MIDDLEWARE_PATH in legacy and MIDDLEWARE_PATH not in (settings.MIDDLEWARE or ()):
        errors.append(
            checks.Error(
                f"{MIDDLEWARE_PATH} is listed in MIDDLEWARE_CLASSES, which Django ignores "
                "since 2.0.",
                hint="Move it (and the rest of MIDDLEWARE_CLASSES) to MIDDLEWARE.",
                id=E002,
            )
        )
    return errors


def check_gevent(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """gevent imported but not monkey-patched: blocking calls would stall every connection."""
    if "gevent" not in sys.modules:
        return []
    from gevent import monkey

    if monkey.is_module_patched("socket"):
        return []
    return [
        checks.Warning(
            "gevent is imported but the standard library is not monkey-patched.",
            hint=(
                "Serve with `python -m django_websocket`, `manage.py runserver` from this app, "
                "or gunicorn -k gevent, which patch before Django loads; or call "
                "gevent.monkey.patch_all() first thing in your server script."
            ),
            id=W001,
        )
    ]


def register() -> None:
    """Register the checks with Django (called from ``AppConfig.ready``)."""
    checks.register(check_settings, checks.Tags.compatibility)
    checks.register(check_gevent, checks.Tags.compatibility)
