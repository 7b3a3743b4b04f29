"""WebSockets from ordinary, synchronous Django views under a gevent WSGI server."""

__version__ = "0.4.0.dev0"
