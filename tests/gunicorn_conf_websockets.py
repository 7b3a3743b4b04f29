"""gunicorn configuration of the shutdown tests: the hooks exactly as docs/deployment.md shows.

Used as ``gunicorn -c gunicorn_conf_websockets.py -k gevent project.wsgi``.
"""

from django_websocket.server.gunicorn_hooks import post_worker_init, worker_int

__all__ = ["graceful_timeout", "post_worker_init", "worker_int"]

graceful_timeout = 5
