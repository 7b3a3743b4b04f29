"""ASGI entry point for Django Channels under uvicorn and daphne.

``/echo/`` is the synchronous ``WebsocketConsumer`` (the counterpart of a
synchronous Django view), ``/async-echo/`` the ``AsyncWebsocketConsumer``;
both behind ``AuthMiddlewareStack`` (cookies, sessions, auth: what a Django
view gets from the middleware).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import AsyncEchoConsumer, EchoConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(
            URLRouter(
                [
                    path("echo/", EchoConsumer.as_asgi()),
                    path("async-echo/", AsyncEchoConsumer.as_asgi()),
                ]
            )
        ),
    }
)
