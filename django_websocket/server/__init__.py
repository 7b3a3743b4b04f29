"""The only part of the package that touches sockets.

It takes the connection out of a WSGI environ (:mod:`.transport`), runs the
blocking WebSocket API on top of the Sans-I/O core (:mod:`.websocket`) and
provides a gevent server handler that never writes an HTTP response after a
WebSocket (:mod:`.handler`), the server entrypoint's serving loop with its
graceful shutdown (:mod:`.serve`) and hooks for gunicorn config files
(:mod:`.gunicorn_hooks`).  It never imports Django.
"""
