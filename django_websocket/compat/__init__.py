"""Drop-in module paths for projects written against other Django WebSocket packages.

``django_websocket.compat.dwebsocket``
    dwebsocket 0.5: replace ``dwebsocket`` with
    ``django_websocket.compat.dwebsocket`` in imports and settings.

django-websocket 0.3 needs no compatibility module: this package keeps its
names (``django_websocket.accept_websocket``, ``require_websocket``,
``django_websocket.middleware.WebSocketMiddleware``, ``request.websocket``'s
``wait()``, ``read()``, ``has_messages()``, ``count_messages()``).
"""
