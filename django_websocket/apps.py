"""The Django app: registers the system checks; its ``runserver`` serves WebSockets."""

from __future__ import annotations

from django.apps import AppConfig


class DjangoWebSocketConfig(AppConfig):
    """App configuration for ``django_websocket``."""

    name = "django_websocket"
    verbose_name = "WebSockets"

    def ready(self) -> None:
        """Register the system checks, and the receiver that closes sockets on logout."""
        from . import checks, groups

        checks.register()
        assert groups.LOGOUT_CODE  # importing groups connects its user_logged_out receiver
